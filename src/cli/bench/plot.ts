/**
 * The benchmark as an SVG chart, written by hand (no dependency): per row, a GB/s bar against
 * the left axis and a TFLOPS bar against the right one, the copy ceiling as a labelled line on
 * the GB/s scale, rows labelled along x, the card and date in the title.
 */
import { formatNumber } from '../table.js';
import type { BenchReport } from './report.js';

const GBPS_COLOR = '#4e79a7';
const TFLOPS_COLOR = '#f28e2b';
const CEILING_COLOR = '#c0392b';
const FAIL_COLOR = '#c0392b';

const MARGIN = { left: 80, right: 80, top: 96, bottom: 136 };
const GROUP_WIDTH = 30;
const BAR_WIDTH = 11;
const PLOT_HEIGHT = 340;
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

/** Tick labels with as many decimals as the step has (2.5 → 1, 0.02 → 2). */
function tickLabel(value: number, step: number): string {
  let decimals = 0;
  while (decimals < 6 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6)
    decimals++;
  return formatNumber(value, decimals);
}

export function renderBenchSvg(report: BenchReport): string {
  const rows = report.rows;
  const ceiling = report.copyCeiling?.gbps ?? null;
  const plotWidth = Math.max(rows.length * GROUP_WIDTH, 720);
  const width = MARGIN.left + plotWidth + MARGIN.right;
  const height = MARGIN.top + PLOT_HEIGHT + MARGIN.bottom;
  const top = MARGIN.top;
  const bottom = MARGIN.top + PLOT_HEIGHT;
  const left = MARGIN.left;
  const right = MARGIN.left + plotWidth;

  const gbpsAxis = niceAxis(Math.max(ceiling ?? 0, ...rows.map((r) => r.gbps)) * 1.05);
  const tflopsAxis = niceAxis(Math.max(...rows.map((r) => r.tflops), 0) * 1.05);
  const yGbps = (v: number) => bottom - (v / gbpsAxis.max) * PLOT_HEIGHT;
  const yTflops = (v: number) => bottom - (v / tflopsAxis.max) * PLOT_HEIGHT;
  const n = (v: number) => formatNumber(v, 1);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="${width / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${escapeXml(`flashmla decode: ${report.card}, ${report.date}`)}</text>`,
    `<text class="subtitle" x="${width / 2}" y="48" text-anchor="middle" fill="#555555">${escapeXml(subtitle(report))}</text>`,
  );

  // Grid lines follow the left axis; the right axis has its own ticks (its steps differ).
  for (let i = 0; i * gbpsAxis.step <= gbpsAxis.max + 1e-9; i++) {
    const gbps = gbpsAxis.step * i;
    const y = n(yGbps(gbps));
    parts.push(
      `<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#e3e3e3"/>`,
      `<text x="${left - 8}" y="${y}" dy="4" text-anchor="end" fill="${GBPS_COLOR}">${tickLabel(gbps, gbpsAxis.step)}</text>`,
    );
  }
  for (let i = 0; i * tflopsAxis.step <= tflopsAxis.max + 1e-9; i++) {
    const tflops = tflopsAxis.step * i;
    const y = n(yTflops(tflops));
    parts.push(
      `<line x1="${right}" y1="${y}" x2="${right + 5}" y2="${y}" stroke="#333333"/>`,
      `<text x="${right + 8}" y="${y}" dy="4" text-anchor="start" fill="${TFLOPS_COLOR}">${tickLabel(tflops, tflopsAxis.step)}</text>`,
    );
  }
  parts.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#333333"/>`,
    `<line x1="${right}" y1="${top}" x2="${right}" y2="${bottom}" stroke="#333333"/>`,
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#333333"/>`,
    `<text class="axis-title" transform="translate(${left - 56} ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle" fill="${GBPS_COLOR}" font-weight="bold">GB/s</text>`,
    `<text class="axis-title" transform="translate(${right + 60} ${(top + bottom) / 2}) rotate(90)" text-anchor="middle" fill="${TFLOPS_COLOR}" font-weight="bold">TFLOPS</text>`,
  );

  // The bars, and each row's label below its pair, slanted so 48 of them fit.
  const groupWidth = plotWidth / Math.max(rows.length, 1);
  for (const [i, row] of rows.entries()) {
    const center = left + groupWidth * (i + 0.5);
    const gbpsTop = yGbps(row.gbps);
    const tflopsTop = yTflops(row.tflops);
    parts.push(
      `<rect class="bar-gbps" x="${n(center - BAR_WIDTH - 1)}" y="${n(gbpsTop)}" width="${BAR_WIDTH}" height="${n(bottom - gbpsTop)}" fill="${GBPS_COLOR}"><title>${escapeXml(`${row.label}: ${formatNumber(row.gbps, 0)} GB/s`)}</title></rect>`,
      `<rect class="bar-tflops" x="${n(center + 1)}" y="${n(tflopsTop)}" width="${BAR_WIDTH}" height="${n(bottom - tflopsTop)}" fill="${TFLOPS_COLOR}"><title>${escapeXml(`${row.label}: ${formatNumber(row.tflops, 1)} TFLOPS`)}</title></rect>`,
      `<text class="row-label" transform="translate(${n(center + 4)} ${bottom + 10}) rotate(-55)" text-anchor="end" font-size="11" fill="${row.ok ? '#333333' : FAIL_COLOR}">${escapeXml(row.ok ? row.label : `${row.label} FAIL`)}</text>`,
    );
  }

  if (ceiling !== null) {
    // The label sits at the left end on a white box: the long rows' bars can reach the line.
    const y = yGbps(ceiling);
    const label = `copy ceiling ${formatNumber(ceiling, 0)} GB/s`;
    parts.push(
      `<line class="ceiling" x1="${left}" y1="${n(y)}" x2="${right}" y2="${n(y)}" stroke="${CEILING_COLOR}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
      `<rect x="${left + 4}" y="${n(y - 20)}" width="${label.length * 7 + 8}" height="16" fill="#ffffff" fill-opacity="0.85"/>`,
      `<text class="ceiling-label" x="${left + 8}" y="${n(y - 7)}" text-anchor="start" fill="${CEILING_COLOR}" font-weight="bold">${escapeXml(label)}</text>`,
    );
  }

  // Legend, one line under the subtitle.
  const legendY = 72;
  const legend: [string, string][] = [
    [GBPS_COLOR, 'GB/s (left axis)'],
    [TFLOPS_COLOR, 'TFLOPS (right axis)'],
  ];
  let x = left;
  for (const [color, text] of legend) {
    parts.push(
      `<rect class="legend" x="${x}" y="${legendY - 10}" width="12" height="12" fill="${color}"/>`,
      `<text x="${x + 18}" y="${legendY}">${escapeXml(text)}</text>`,
    );
    x += 170;
  }
  if (ceiling !== null) {
    parts.push(
      `<line x1="${x}" y1="${legendY - 4}" x2="${x + 24}" y2="${legendY - 4}" stroke="${CEILING_COLOR}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
      `<text x="${x + 30}" y="${legendY}">copy ceiling (GB/s, same run)</text>`,
    );
  }
  parts.push(
    `<text x="${left}" y="${height - 12}" fill="#555555">rows: mean cache length / h_q / s_q, /v = variable lengths; ${escapeXml(report.backend)}</text>`,
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function subtitle(report: BenchReport): string {
  const { matrix, repeats, warmup, seed } = report.settings;
  return `b = ${matrix.batch}, h_kv = ${matrix.numHeadsKv}, ${matrix.causal ? 'causal' : 'not causal'}, ${matrix.dtype}; median of ${repeats} call${repeats === 1 ? '' : 's'} after ${warmup} warm-up; lengths seed ${seed}`;
}
