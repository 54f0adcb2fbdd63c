#!/usr/bin/env node
// Sums up an A/B log of scripts/ab-variants.sh: each row's mean time per variant over the passes,
// each variant's ratio to the first named one, and per variant the geometric mean and the worst
// of those ratios.
//   node scripts/ab-summary.mjs LOG NAME...
// A log line is "PASS NAME ROW..." where ROW is a `flashmla bench` row: "length h_q s_q varlen µs
// ..." or, for --small, "b length h_q s_q varlen µs ...".
import { readFileSync } from 'node:fs';

const [logPath, ...names] = process.argv.slice(2);
if (!logPath || names.length === 0) {
  console.error('usage: node scripts/ab-summary.mjs LOG NAME...');
  process.exit(2);
}

/** Mean µs per row key and variant, in the order rows first appear. */
const rows = new Map();
for (const line of readFileSync(logPath, 'utf8').split('\n')) {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 8 || !/^\d+$/.test(fields[0])) continue;
  const name = fields[1];
  const row = fields.slice(2);
  const keyLength = row[4] === 'no' || row[4] === 'yes' ? 5 : 4; // --small rows start with b
  const key = (keyLength === 4 ? ['128', ...row.slice(0, 4)] : row.slice(0, 5)).join(' ');
  const us = Number(row[keyLength]);
  if (!Number.isFinite(us)) continue;
  if (!rows.has(key)) rows.set(key, new Map());
  const times = rows.get(key);
  if (!times.has(name)) times.set(name, []);
  times.get(name).push(us);
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const [base, ...others] = names;
const header = ['b len h_q s_q varlen'.padEnd(24), ...names.map((n) => n.padStart(9))];
header.push(...others.map((n) => `${n}/${base}`.padStart(12)));
console.log(header.join(' '));
const ratios = new Map(others.map((n) => [n, []]));
for (const [key, times] of rows) {
  if (!times.has(base)) continue;
  const baseUs = mean(times.get(base));
  const cells = [key.padEnd(24)];
  for (const name of names)
    cells.push((times.has(name) ? mean(times.get(name)).toFixed(1) : '-').padStart(9));
  for (const name of others) {
    if (!times.has(name)) {
      cells.push('-'.padStart(12));
      continue;
    }
    const ratio = mean(times.get(name)) / baseUs;
    ratios.get(name).push(ratio);
    cells.push(`${((ratio - 1) * 100).toFixed(1).replace(/^(?!-)/, '+')}%`.padStart(12));
  }
  console.log(cells.join(' '));
}
for (const [name, rs] of ratios) {
  if (rs.length === 0) continue;
  const geomean = Math.exp(mean(rs.map(Math.log)));
  console.log(
    `${name} vs ${base}: geomean ${geomean.toFixed(4)} over ${rs.length} rows, ` +
      `from ${Math.min(...rs).toFixed(4)} to ${Math.max(...rs).toFixed(4)}`,
  );
}
