/**
 * The benchmark as an SVG chart, written by hand (no dependency). Where the card is one FlashMLA
 * was measured on, the top panel is the score: per row, FlashMLA µs / ours as a bar up or down
 * from a line at 1.0 (green: faster; amber: within 3% slower; red: slower), the geomean as a
 * line. Below it, the standard suite shows per row a GB/s bar against the left axis and a TFLOPS
 * bar against the right one, FlashMLA's figures as black ticks across them and the copy ceiling
 * as a labelled line on the GB/s scale; the small-batch suite shows µs per call, ours beside
 * FlashMLA's. Rows are labelled along x, the card and date are in the title.
 */
import { formatNumber } from '../table.js';
import { type FlashMlaComparison, SLOW_RATIO } from './compare.js';
import { type BenchReport, describeTiming } from './report.js';

const GBPS_COLOR = '#4e79a7';
const TFLOPS_COLOR = '#f28e2b';
const CEILING_COLOR = '#c0392b';
const FAIL_COLOR = '#c0392b';
const FLASHMLA_COLOR = '#222222';
const FLASHMLA_BAR_COLOR = '#bab0ac';
const FASTER_COLOR = '#59a14f';
const NEAR_COLOR = '#e8b500';
const SLOWER_COLOR = '#e15759';
const GEOMEAN_COLOR = '#7b3294';
const FAILED_BAR_COLOR = '#bbbbbb';

const MARGIN = { left: 80, right: 80, bottom: 12 };
const LINE = 16;
const LEGEND_LINE = 20;
/** Rough text widths for layout: px per character of the 12 px font (bold runs wider). */
const CHAR_WIDTH = 7;
const ROW_LABEL_CHAR_WIDTH = 6.3;
const ROW_LABEL_ANGLE = 55;
const GROUP_WIDTH = 30;
const BAR_WIDTH = 11;
const PLOT_HEIGHT = 340;
const RATIO_HEIGHT = 220;
/** Between the ratio panel and the one below. */
const PANEL_GAP = 32;
/** About this many steps on each axis. */
const TICKS = 5;

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** An axis from 0 to a round maximum, in steps of 1, 2, 2.5 or 5 times a power of 10. */
export function niceAxis(maxValue: number): { max: number; step: number } {
  if (!(maxValue > 0) || !Number.isFinite(maxValue)) return { max: 1, step: 0.2 };
  const raw = maxValue / TICKS;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  return { max: step * Math.ceil(maxValue / step - 1e-9), step };
}

/**
 * The ratio axis: round bounds around 1.0 (at least 0.9 to 1.1) with room above and below the
 * bars for their value labels, in steps of 0.05, 0.1, 0.2, 0.25, 0.5 or 1.
 */
export function ratioAxis(ratios: readonly number[]): { min: number; max: number; step: number } {
  const finite = ratios.filter((r) => Number.isFinite(r) && r > 0);
  const low = Math.min(0.9, ...finite.map((r) => r - 0.05));
  const high = Math.max(1.1, ...finite.map((r) => r + 0.08));
  const step = [0.05, 0.1, 0.2, 0.25, 0.5, 1].find((s) => (high - low) / s <= 7) ?? 1;
  return {
    min: Math.max(0, step * Math.floor(low / step + 1e-9)),
    max: step * Math.ceil(high / step - 1e-9),
    step,
  };
}

/** Tick labels with as many decimals as the step has (2.5 → 1, 0.02 → 2). */
function tickLabel(value: number, step: number): string {
  let decimals = 0;
  while (decimals < 6 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6)
    decimals++;
  return formatNumber(value, decimals);
}

function ratioColor(ratio: number): string {
  return ratio >= 1 ? FASTER_COLOR : ratio >= SLOW_RATIO ? NEAR_COLOR : SLOWER_COLOR;
}

const n = (v: number) => formatNumber(v, 1);

/** Where things go: the plot's left and right edges and the x centre of each row. */
interface Frame {
  left: number;
  right: number;
  center: (row: number) => number;
}

/** Horizontal grid lines with labels on the left, from `min` to `max` in `step`s. */
function leftTicks(
  parts: string[],
  frame: Frame,
  axis: { min: number; max: number; step: number },
  y: (v: number) => number,
  color: string,
): void {
  for (let i = 0; axis.min + i * axis.step <= axis.max + 1e-9; i++) {
    const value = axis.min + axis.step * i;
    parts.push(
      `<line x1="${frame.left}" y1="${n(y(value))}" x2="${frame.right}" y2="${n(y(value))}" stroke="#e3e3e3"/>`,
      `<text x="${frame.left - 8}" y="${n(y(value))}" dy="4" text-anchor="end" fill="${color}">${tickLabel(value, axis.step)}</text>`,
    );
  }
}

function box(parts: string[], frame: Frame, top: number, bottom: number): void {
  parts.push(
    `<line x1="${frame.left}" y1="${top}" x2="${frame.left}" y2="${bottom}" stroke="#333333"/>`,
    `<line x1="${frame.right}" y1="${top}" x2="${frame.right}" y2="${bottom}" stroke="#333333"/>`,
    `<line x1="${frame.left}" y1="${bottom}" x2="${frame.right}" y2="${bottom}" stroke="#333333"/>`,
  );
}

/** A label on a white box, so bars behind it do not hide it. */
function boxedLabel(
  parts: string[],
  className: string,
  x: number,
  y: number,
  text: string,
  color: string,
  anchor: 'start' | 'end',
): void {
  const width = text.length * 7 + 8;
  const boxX = anchor === 'start' ? x - 4 : x - width + 4;
  parts.push(
    `<rect x="${n(boxX)}" y="${n(y - 13)}" width="${width}" height="16" fill="#ffffff" fill-opacity="0.85"/>`,
    `<text class="${className}" x="${n(x)}" y="${n(y)}" text-anchor="${anchor}" fill="${color}" font-weight="bold">${escapeXml(text)}</text>`,
  );
}

/** The score panel: FlashMLA µs / ours per row, bars from the line at 1.0, the geomean. */
function ratioPanel(
  parts: string[],
  frame: Frame,
  top: number,
  report: BenchReport,
  comparison: Extract<FlashMlaComparison, { available: true }>,
): void {
  const bottom = top + RATIO_HEIGHT;
  const ratios = comparison.rows.flatMap((row) => (row === null ? [] : [row.ratio]));
  const { geomean } = comparison.summary;
  const axis = ratioAxis(geomean === null ? ratios : [...ratios, geomean]);
  const y = (v: number) => bottom - ((v - axis.min) / (axis.max - axis.min)) * RATIO_HEIGHT;
  leftTicks(parts, frame, axis, y, '#333333');
  box(parts, frame, top, bottom);
  const { compared, belowSlowRatio } = comparison.summary;
  const score =
    geomean === null
      ? ''
      : `: geomean ${formatNumber(geomean, 2)}× over ${compared} rows, ${belowSlowRatio} below ${formatNumber(SLOW_RATIO, 2)}×`;
  parts.push(
    `<text class="panel-title" x="${frame.left}" y="${top - 10}" font-weight="bold">${escapeXml(`vs FlashMLA: FlashMLA µs / ours, above 1 we are faster${score}`)}</text>`,
    `<text class="axis-title" transform="translate(${frame.left - 56} ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle" font-weight="bold">FlashMLA µs / ours</text>`,
    `<text x="${frame.right + 8}" y="${top + 14}" fill="${FASTER_COLOR}" font-weight="bold">faster ↑</text>`,
    `<text x="${frame.right + 8}" y="${bottom - 6}" fill="${SLOWER_COLOR}" font-weight="bold">slower ↓</text>`,
    `<line class="slow-line" x1="${frame.left}" y1="${n(y(SLOW_RATIO))}" x2="${frame.right}" y2="${n(y(SLOW_RATIO))}" stroke="#999999" stroke-dasharray="3 3"/>`,
  );
  const barWidth = Math.min(22, (frame.center(1) - frame.center(0)) * 0.7);
  const one = y(1);
  for (const [i, row] of comparison.rows.entries()) {
    const x = frame.center(i);
    if (row === null) {
      parts.push(
        `<text class="ratio-missing" x="${n(x)}" y="${n(one - 4)}" text-anchor="middle" font-size="10" fill="#999999">n/a</text>`,
      );
      continue;
    }
    const end = y(row.ratio);
    const label = formatNumber(row.ratio, 2);
    const { ok } = report.rows[i];
    // A row that failed its check is no score: grey, and out of the geomean.
    const tip = `${report.rows[i].label}: FlashMLA ${formatNumber(row.flashmlaUs, 1)} µs, ours ${formatNumber(report.rows[i].medianUs, 1)} µs: ${label}×${ok ? '' : '; failed its check, left out of the geomean'}`;
    parts.push(
      `<rect class="bar-ratio" x="${n(x - barWidth / 2)}" y="${n(Math.min(end, one))}" width="${n(barWidth)}" height="${n(Math.abs(end - one))}" fill="${ok ? ratioColor(row.ratio) : FAILED_BAR_COLOR}"><title>${escapeXml(tip)}</title></rect>`,
      `<text class="ratio-label" x="${n(x)}" y="${n(row.ratio >= 1 ? end - 4 : end + 11)}" text-anchor="middle" font-size="10">${label}</text>`,
    );
  }
  parts.push(
    `<line class="parity" x1="${frame.left}" y1="${n(one)}" x2="${frame.right}" y2="${n(one)}" stroke="#333333" stroke-width="1.5"/>`,
  );
  if (geomean !== null) {
    // The line crosses the bars; its value stands in the right margin, clear of them.
    const gy = y(geomean);
    parts.push(
      `<line class="geomean" x1="${frame.left}" y1="${n(gy)}" x2="${frame.right}" y2="${n(gy)}" stroke="${GEOMEAN_COLOR}" stroke-width="1.5" stroke-dasharray="8 3 2 3"/>`,
      `<text class="geomean-label" x="${frame.right + 8}" y="${n(gy - 3)}" fill="${GEOMEAN_COLOR}" font-weight="bold">geomean</text>`,
      `<text class="geomean-value" x="${frame.right + 8}" y="${n(gy + 12)}" fill="${GEOMEAN_COLOR}" font-weight="bold">${formatNumber(geomean, 2)}×</text>`,
    );
  }
}

/** GB/s (left axis) and TFLOPS (right axis) per row, FlashMLA's as ticks, the copy ceiling. */
function throughputPanel(
  parts: string[],
  frame: Frame,
  top: number,
  report: BenchReport,
  flashmlaUs: (number | null)[],
): void {
  const bottom = top + PLOT_HEIGHT;
  const rows = report.rows;
  const ceiling = report.copyCeiling?.gbps ?? null;
  // FlashMLA's rates on the same lengths: the same bytes and FLOPs over its time.
  const reference = rows.map((row, i) => {
    const us = flashmlaUs[i];
    return us === null ? null : { gbps: row.bytes / us / 1e3, tflops: row.flops / us / 1e6 };
  });
  const known = reference.filter((r) => r !== null);
  const gbpsAxis = niceAxis(
    Math.max(ceiling ?? 0, ...rows.map((r) => r.gbps), ...known.map((r) => r.gbps)) * 1.05,
  );
  const tflopsAxis = niceAxis(
    Math.max(0, ...rows.map((r) => r.tflops), ...known.map((r) => r.tflops)) * 1.05,
  );
  const yGbps = (v: number) => bottom - (v / gbpsAxis.max) * PLOT_HEIGHT;
  const yTflops = (v: number) => bottom - (v / tflopsAxis.max) * PLOT_HEIGHT;

  // Grid lines follow the left axis; the right axis has its own ticks (its steps differ).
  leftTicks(parts, frame, { min: 0, ...gbpsAxis }, yGbps, GBPS_COLOR);
  for (let i = 0; i * tflopsAxis.step <= tflopsAxis.max + 1e-9; i++) {
    const tflops = tflopsAxis.step * i;
    const y = n(yTflops(tflops));
    parts.push(
      `<line x1="${frame.right}" y1="${y}" x2="${frame.right + 5}" y2="${y}" stroke="#333333"/>`,
      `<text x="${frame.right + 8}" y="${y}" dy="4" text-anchor="start" fill="${TFLOPS_COLOR}">${tickLabel(tflops, tflopsAxis.step)}</text>`,
    );
  }
  box(parts, frame, top, bottom);
  parts.push(
    `<text class="axis-title" transform="translate(${frame.left - 56} ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle" fill="${GBPS_COLOR}" font-weight="bold">GB/s</text>`,
    `<text class="axis-title" transform="translate(${frame.right + 60} ${(top + bottom) / 2}) rotate(90)" text-anchor="middle" fill="${TFLOPS_COLOR}" font-weight="bold">TFLOPS</text>`,
  );
  for (const [i, row] of rows.entries()) {
    const center = frame.center(i);
    const gbpsTop = yGbps(row.gbps);
    const tflopsTop = yTflops(row.tflops);
    parts.push(
      `<rect class="bar-gbps" x="${n(center - BAR_WIDTH - 1)}" y="${n(gbpsTop)}" width="${BAR_WIDTH}" height="${n(bottom - gbpsTop)}" fill="${GBPS_COLOR}"><title>${escapeXml(`${row.label}: ${formatNumber(row.gbps, 0)} GB/s`)}</title></rect>`,
      `<rect class="bar-tflops" x="${n(center + 1)}" y="${n(tflopsTop)}" width="${BAR_WIDTH}" height="${n(bottom - tflopsTop)}" fill="${TFLOPS_COLOR}"><title>${escapeXml(`${row.label}: ${formatNumber(row.tflops, 1)} TFLOPS`)}</title></rect>`,
    );
    const ref = reference[i];
    if (ref !== null) {
      parts.push(
        `<line class="ref-gbps" x1="${n(center - BAR_WIDTH - 3)}" y1="${n(yGbps(ref.gbps))}" x2="${n(center + 1)}" y2="${n(yGbps(ref.gbps))}" stroke="${FLASHMLA_COLOR}" stroke-width="2.5"><title>${escapeXml(`${row.label}: FlashMLA ${formatNumber(ref.gbps, 0)} GB/s`)}</title></line>`,
        `<line class="ref-tflops" x1="${n(center - 1)}" y1="${n(yTflops(ref.tflops))}" x2="${n(center + BAR_WIDTH + 3)}" y2="${n(yTflops(ref.tflops))}" stroke="${FLASHMLA_COLOR}" stroke-width="2.5"><title>${escapeXml(`${row.label}: FlashMLA ${formatNumber(ref.tflops, 1)} TFLOPS`)}</title></line>`,
      );
    }
  }
  if (ceiling !== null) {
    // The label sits at the left end on a white box: the long rows' bars can reach the line.
    const y = yGbps(ceiling);
    parts.push(
      `<line class="ceiling" x1="${frame.left}" y1="${n(y)}" x2="${frame.right}" y2="${n(y)}" stroke="${CEILING_COLOR}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
    );
    boxedLabel(
      parts,
      'ceiling-label',
      frame.left + 8,
      y - 7,
      `copy ceiling ${formatNumber(ceiling, 0)} GB/s`,
      CEILING_COLOR,
      'start',
    );
  }
}

/** µs per call per row: ours, and FlashMLA's beside it where it has a figure. */
function latencyPanel(
  parts: string[],
  frame: Frame,
  top: number,
  report: BenchReport,
  flashmlaUs: (number | null)[],
): void {
  const bottom = top + PLOT_HEIGHT;
  const rows = report.rows;
  const axis = niceAxis(
    Math.max(0, ...rows.map((r) => r.medianUs), ...flashmlaUs.map((us) => us ?? 0)) * 1.05,
  );
  const y = (v: number) => bottom - (v / axis.max) * PLOT_HEIGHT;
  leftTicks(parts, frame, { min: 0, ...axis }, y, '#333333');
  box(parts, frame, top, bottom);
  parts.push(
    `<text class="axis-title" transform="translate(${frame.left - 56} ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle" font-weight="bold">µs per call (lower is better)</text>`,
  );
  for (const [i, row] of rows.entries()) {
    const center = frame.center(i);
    const ours = y(row.medianUs);
    parts.push(
      `<rect class="bar-us" x="${n(center - BAR_WIDTH - 1)}" y="${n(ours)}" width="${BAR_WIDTH}" height="${n(bottom - ours)}" fill="${GBPS_COLOR}"><title>${escapeXml(`${row.label}: ${formatNumber(row.medianUs, 1)} µs`)}</title></rect>`,
    );
    const us = flashmlaUs[i];
    if (us !== null) {
      const theirs = y(us);
      parts.push(
        `<rect class="bar-flashmla-us" x="${n(center + 1)}" y="${n(theirs)}" width="${BAR_WIDTH}" height="${n(bottom - theirs)}" fill="${FLASHMLA_BAR_COLOR}"><title>${escapeXml(`${row.label}: FlashMLA ${formatNumber(us, 1)} µs`)}</title></rect>`,
      );
    }
  }
}

interface LegendEntry {
  /** The mark, drawn with its left edge at x = 0 and centred on the line at y = 0. */
  mark: string;
  text: string;
}

function legendEntries(report: BenchReport, compared: boolean): LegendEntry[] {
  const square = (color: string) =>
    `<rect class="legend" x="0" y="-7" width="12" height="12" fill="${color}"/>`;
  const dash = (color: string, width: number, dashes: string) =>
    `<line x1="0" y1="-1" x2="24" y2="-1" stroke="${color}" stroke-width="${width}"${dashes ? ` stroke-dasharray="${dashes}"` : ''}/>`;
  const entries: LegendEntry[] = [];
  if (compared) {
    entries.push(
      { mark: square(FASTER_COLOR), text: 'faster than FlashMLA' },
      { mark: square(NEAR_COLOR), text: `${formatNumber(SLOW_RATIO, 2)}–1.00×` },
      { mark: square(SLOWER_COLOR), text: `below ${formatNumber(SLOW_RATIO, 2)}×` },
      { mark: dash(GEOMEAN_COLOR, 1.5, '8 3 2 3'), text: 'geomean' },
    );
  }
  if (report.settings.suite === 'small') {
    entries.push({ mark: square(GBPS_COLOR), text: 'ours, µs per call' });
    if (compared) entries.push({ mark: square(FLASHMLA_BAR_COLOR), text: 'FlashMLA, µs per call' });
    return entries;
  }
  entries.push(
    { mark: square(GBPS_COLOR), text: 'GB/s (left axis)' },
    { mark: square(TFLOPS_COLOR), text: 'TFLOPS (right axis)' },
  );
  if (compared)
    entries.push({ mark: dash(FLASHMLA_COLOR, 2.5, ''), text: "FlashMLA's GB/s, TFLOPS" });
  if (report.copyCeiling !== null)
    entries.push({ mark: dash(CEILING_COLOR, 1.5, '6 4'), text: 'copy ceiling (GB/s, same run)' });
  return entries;
}

/** Words of `text` in lines of at most `maxChars` characters (a longer word stands alone). */
export function wrapText(text: string, maxChars: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > maxChars) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

/** Lays the legend out from (`left`, `y`), wrapping before `right`; returns the last line's y. */
function drawLegend(
  parts: string[],
  entries: LegendEntry[],
  left: number,
  right: number,
  y: number,
): number {
  let x = left;
  for (const { mark, text } of entries) {
    const width = 30 + text.length * CHAR_WIDTH;
    if (x > left && x + width > right) {
      x = left;
      y += LEGEND_LINE;
    }
    parts.push(
      `<g transform="translate(${x} ${y - 4})">${mark}</g>`,
      `<text x="${x + 30}" y="${y}">${escapeXml(text)}</text>`,
    );
    x += width + 18;
  }
  return y;
}

export function renderBenchSvg(report: BenchReport): string {
  const rows = report.rows;
  const small = report.settings.suite === 'small';
  const comparison = report.comparison.available ? report.comparison : null;
  const flashmlaUs = rows.map((_, i) => comparison?.rows[i]?.flashmlaUs ?? null);
  const plotWidth = Math.max(rows.length * GROUP_WIDTH, 720);
  const left = MARGIN.left;
  const right = MARGIN.left + plotWidth;
  const width = MARGIN.left + plotWidth + MARGIN.right;
  const groupWidth = plotWidth / Math.max(rows.length, 1);
  const frame: Frame = { left, right, center: (i) => left + groupWidth * (i + 0.5) };

  const maxChars = Math.floor((width - 40) / CHAR_WIDTH);
  const parts: string[] = [];
  const subtitleLines = wrapText(subtitle(report), maxChars);
  subtitleLines.forEach((line, i) => {
    parts.push(
      `<text class="subtitle" x="${width / 2}" y="${48 + i * LINE}" text-anchor="middle" fill="#555555">${escapeXml(line)}</text>`,
    );
  });
  const legendTop = 48 + (subtitleLines.length - 1) * LINE + 24;
  const legendBottom = drawLegend(
    parts,
    legendEntries(report, comparison !== null),
    left,
    right,
    legendTop,
  );
  // The ratio panel's title sits above it.
  const top = legendBottom + (comparison ? 40 : 24);
  const mainTop = comparison ? top + RATIO_HEIGHT + PANEL_GAP : top;
  const bottom = mainTop + PLOT_HEIGHT;
  if (comparison) ratioPanel(parts, frame, top, report, comparison);
  if (small) latencyPanel(parts, frame, mainTop, report, flashmlaUs);
  else throughputPanel(parts, frame, mainTop, report, flashmlaUs);

  // Each row's label below the lowest panel, slanted so 48 of them fit.
  const labels = rows.map((row) => (row.ok ? row.label : `${row.label} FAIL`));
  for (const [i, row] of rows.entries()) {
    parts.push(
      `<text class="row-label" transform="translate(${n(frame.center(i) + 4)} ${bottom + 10}) rotate(-${ROW_LABEL_ANGLE})" text-anchor="end" font-size="11" fill="${row.ok ? '#333333' : FAIL_COLOR}">${escapeXml(labels[i])}</text>`,
    );
  }
  const longest = Math.max(0, ...labels.map((label) => label.length));
  const labelDepth = longest * ROW_LABEL_CHAR_WIDTH * Math.sin((ROW_LABEL_ANGLE * Math.PI) / 180);

  const rowsKey = small
    ? 'rows: b<batch> / mean cache length / h_q / s_q, /v = variable lengths'
    : 'rows: mean cache length / h_q / s_q, /v = variable lengths';
  const source = report.comparison.available
    ? `vs FlashMLA: ${report.comparison.reference.kernel}, measured on ${report.comparison.reference.card} on ${report.comparison.reference.date} on these lengths, timed as this run`
    : `vs FlashMLA: not shown: ${report.comparison.reason}`;
  const kernel = report.decodeKernel === null ? '' : `, decode kernel ${report.decodeKernel}`;
  const footer = [`${rowsKey}; ${report.backend}${kernel}`, source].flatMap((text) =>
    wrapText(text, maxChars),
  );
  const footerTop = bottom + 10 + labelDepth + 20;
  footer.forEach((line, i) => {
    parts.push(
      `<text class="footer" x="${left}" y="${n(footerTop + i * LINE)}" fill="#555555">${escapeXml(line)}</text>`,
    );
  });
  const height = Math.ceil(footerTop + (footer.length - 1) * LINE + MARGIN.bottom);
  parts.unshift(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="${width / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${escapeXml(`flashmla decode${small ? ', small batches' : ''}: ${report.card}, ${report.date}`)}</text>`,
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function subtitle(report: BenchReport): string {
  const { settings } = report;
  const { matrix } = settings;
  const batch =
    settings.suite === 'small'
      ? `b = ${settings.matrix.batches.join(', ')}`
      : `b = ${settings.matrix.batch}`;
  return `${batch}, h_kv = ${matrix.numHeadsKv}, ${matrix.causal ? 'causal' : 'not causal'}, ${matrix.dtype}; ${describeTiming(settings)}; lengths seed ${settings.seed}`;
}
