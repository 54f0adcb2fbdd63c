import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEAD_DIM_K, HEAD_DIM_V } from '../../src/config.js';
import { attendRow, referenceDecode } from '../../src/reference/reference.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';

/** A tiny problem: every q and cache value 0 unless set; unused cache rows NaN. */
function tiny(options: {
  batch?: number;
  seqlenQ?: number;
  numHeadsQ?: number;
  numHeadsKv?: number;
  lengths: number[];
  numBlocks?: number;
}) {
  const { batch = 1, seqlenQ = 1, numHeadsQ = 1, numHeadsKv = 1, lengths } = options;
  const maxBlocks = Math.max(1, ...lengths.map((l) => Math.ceil(l / 64)));
  const numBlocks = options.numBlocks ?? batch * maxBlocks;
  const q = HostTensor.zeros('bf16', [batch, seqlenQ, numHeadsQ, HEAD_DIM_K]);
  const kCache = HostTensor.full('bf16', [numBlocks, 64, numHeadsKv, HEAD_DIM_K], Number.NaN);
  const blockTable = HostTensor.full('int32', [batch, maxBlocks], 2147480000);
  const cacheSeqlens = HostTensor.fromValues('int32', [batch], lengths);
  return { q, kCache, blockTable, cacheSeqlens, softmaxScale: 1, causal: false };
}

/** Sets the cache row of token t of a sequence to zeros plus the given channels. */
function setKey(
  p: ReturnType<typeof tiny>,
  batch: number,
  t: number,
  head: number,
  channels: Record<number, number>,
) {
  const block = p.blockTable.get(batch, Math.floor(t / 64));
  for (let c = 0; c < HEAD_DIM_K; c++) p.kCache.set(channels[c] ?? 0, block, t % 64, head, c);
}

test('one key: out is its V row, lse its score', () => {
  const p = tiny({ lengths: [1] });
  p.blockTable.set(0, 0, 0);
  setKey(p, 0, 0, 0, { 0: 2, 1: -1, 511: 0.5, 575: 100 });
  p.q.set(0.25, 0, 0, 0, 0);
  const { out, lse } = referenceDecode(p);
  assert.equal(lse.get(0, 0, 0), 0.5); // 0.25 * 2
  assert.equal(out.get(0, 0, 0, 0), 2);
  assert.equal(out.get(0, 0, 0, 1), -1);
  assert.equal(out.get(0, 0, 0, 511), 0.5);
  assert.equal(out.shape[3], HEAD_DIM_V); // channel 575 is K only
});

test('two keys: softmax weights by hand', () => {
  const p = tiny({ lengths: [2] });
  p.blockTable.set(0, 0, 0);
  setKey(p, 0, 0, 0, { 1: 1 }); // score 0, V = e1
  setKey(p, 0, 1, 0, { 0: 1 }); // score 1, V = e0
  p.q.set(1, 0, 0, 0, 0);
  const { outExact, lse } = referenceDecode(p);
  const e = Math.E;
  assert.ok(Math.abs(lse.get(0, 0, 0) - Math.fround(Math.log(1 + e))) < 1e-7);
  assert.ok(Math.abs(outExact[0] - e / (1 + e)) < 1e-15);
  assert.ok(Math.abs(outExact[1] - 1 / (1 + e)) < 1e-15);
});

test('equal scores over n keys: lse = score + ln n, out = mean of V', () => {
  const p = tiny({ lengths: [130], numBlocks: 5 });
  for (const [j, block] of [4, 0, 2].entries()) p.blockTable.set(block, 0, j); // paged, out of order
  for (let t = 0; t < 130; t++) setKey(p, 0, t, 0, { 0: 1, 5: t });
  p.q.set(0.5, 0, 0, 0, 0);
  const { outExact, lse } = referenceDecode(p);
  assert.ok(Math.abs(lse.get(0, 0, 0) - Math.fround(0.5 + Math.log(130))) < 1e-6);
  assert.ok(Math.abs(outExact[5] - 64.5) < 1e-12); // mean of 0..129 (bf16-exact integers)
  assert.ok(Math.abs(outExact[0] - 1) < 1e-15);
});

test('causal masking is bottom-right aligned; s_q = 1 is unmasked', () => {
  const p = tiny({ seqlenQ: 3, lengths: [2] });
  p.blockTable.set(0, 0, 0);
  setKey(p, 0, 0, 0, { 0: 1 });
  setKey(p, 0, 1, 0, { 1: 1 });
  p.causal = true;
  const { out, lse } = referenceDecode(p);
  // L = 2, s_q = 3: row 0 attends j <= -1 (nothing), row 1 j <= 0, row 2 j <= 1.
  assert.equal(lse.get(0, 0, 0), Number.POSITIVE_INFINITY);
  for (let c = 0; c < HEAD_DIM_V; c++) assert.equal(out.get(0, 0, 0, c), 0);
  assert.equal(lse.get(0, 0, 1), 0);
  assert.equal(out.get(0, 1, 0, 0), 1);
  assert.equal(out.get(0, 1, 0, 1), 0);
  assert.ok(Math.abs(lse.get(0, 0, 2) - Math.fround(Math.log(2))) < 1e-7);
  assert.equal(out.get(0, 2, 0, 0), 0.5);
  assert.equal(out.get(0, 2, 0, 1), 0.5);

  const single = tiny({ seqlenQ: 1, lengths: [2] });
  single.blockTable.set(0, 0, 0);
  setKey(single, 0, 0, 0, { 0: 1 });
  setKey(single, 0, 1, 0, { 1: 1 });
  const plain = referenceDecode(single);
  single.causal = true;
  const masked = referenceDecode(single);
  assert.deepEqual(masked.outExact, plain.outExact);
});

test('query heads read their group KV head', () => {
  const p = tiny({ numHeadsQ: 4, numHeadsKv: 2, lengths: [1] });
  p.blockTable.set(0, 0, 0);
  setKey(p, 0, 0, 0, { 0: 7 });
  setKey(p, 0, 0, 1, { 0: -3 });
  const { out } = referenceDecode(p);
  assert.deepEqual(
    [0, 1, 2, 3].map((h) => out.get(0, 0, h, 0)),
    [7, 7, -3, -3],
  );
});

test('empty sequences give out 0 and lse +inf; NaN in unattended rows never leaks', () => {
  const p = tiny({ batch: 2, lengths: [0, 3], numBlocks: 2 });
  p.blockTable.set(1, 1, 0);
  for (let t = 0; t < 3; t++) setKey(p, 1, t, 0, { 0: t, 3: 1 });
  p.q.set(1, 1, 0, 0, 0);
  const { out, lse } = referenceDecode(p);
  assert.equal(lse.get(0, 0, 0), Number.POSITIVE_INFINITY);
  assert.equal(out.get(0, 0, 0, 0), 0);
  assert.ok(Number.isFinite(lse.get(1, 0, 0)));
  for (let c = 0; c < HEAD_DIM_V; c++) assert.ok(Number.isFinite(out.get(1, 0, 0, c)));
  assert.equal(out.get(1, 0, 0, 3), 1);
});

test('NaN in q propagates to its row only', () => {
  const p = tiny({ numHeadsQ: 2, lengths: [1] });
  p.blockTable.set(0, 0, 0);
  setKey(p, 0, 0, 0, { 0: 1 });
  p.q.set(Number.NaN, 0, 0, 1, 7);
  const { out, lse } = referenceDecode(p);
  assert.ok(Number.isNaN(lse.get(0, 1, 0)));
  assert.ok(Number.isNaN(out.get(0, 0, 1, 0)));
  assert.equal(out.get(0, 0, 0, 0), 1);
});

test('error scales: A is the softmax-weighted |V|, B the largest score magnitude, 0 where nothing is attended', () => {
  const p = tiny({ seqlenQ: 2, numHeadsQ: 2, lengths: [2] });
  p.blockTable.set(0, 0, 0);
  setKey(p, 0, 0, 0, { 1: -2, 2: 3 }); // ‖k‖ = sqrt(13)
  setKey(p, 0, 1, 0, { 0: 1, 2: -1 }); // ‖k‖ = sqrt(2)
  p.q.set(1, 0, 0, 0, 0); // head 0 of row 0: scores 0 and 1
  p.q.set(0.5, 0, 1, 1, 2); // head 1 of row 1: scores 1.5 and -0.5
  p.softmaxScale = 0.5;
  p.causal = true; // row 0 attends key 0 only
  const { outExact, lse, errorScales } = referenceDecode(p, { errorScales: true });
  const { absWeightedV: a, scoreMagnitude: b } = errorScales;
  const at = (s: number, h: number, c: number) => (s * 2 + h) * HEAD_DIM_V + c;
  // Row 0 attends key 0 alone: A = |V_0|, whatever the scores.
  assert.deepEqual([a[at(0, 0, 0)], a[at(0, 0, 1)], a[at(0, 0, 2)]], [0, 2, 3]);
  // Row 1, head 1: scores 0.75 and -0.25, P = softmax.
  const p0 = 1 / (1 + Math.exp(-1));
  const p1 = 1 - p0;
  assert.ok(Math.abs(a[at(1, 1, 1)] - p0 * 2) < 1e-15);
  assert.ok(Math.abs(a[at(1, 1, 2)] - (p0 * 3 + p1 * 1)) < 1e-15);
  assert.ok(Math.abs(a[at(1, 1, 0)] - p1) < 1e-15);
  assert.ok(a[at(1, 1, 2)] > Math.abs(outExact[at(1, 1, 2)]), 'A bounds |out| when V changes sign');
  // B = scale·‖q‖·max ‖k‖ over the attended keys: row 0 sees only key 0.
  assert.ok(Math.abs(b[0 * 2 + 0] - 0.5 * 1 * Math.sqrt(13)) < 1e-15); // lse [b, h, s]: h 0, s 0
  assert.ok(Math.abs(b[1 * 2 + 1] - 0.5 * 0.5 * Math.sqrt(13)) < 1e-15); // h 1, s 1
  assert.equal(b[1 * 2 + 0], 0, 'q = 0: no score magnitude');
  assert.ok(Number.isFinite(lse.get(0, 1, 1)));

  // A row with nothing to attend has A = B = 0.
  const empty = tiny({ lengths: [0] });
  const scales = referenceDecode(empty, { errorScales: true }).errorScales;
  assert.ok(scales.absWeightedV.every((x) => x === 0));
  assert.equal(scales.scoreMagnitude[0], 0);
  assert.equal(referenceDecode(empty).errorScales, undefined, 'only computed when asked for');
});

/** attendRow's arithmetic one key at a time, as the rule states it: the spec of its fast form. */
function attendRowOneKeyAtATime(
  query: Float64Array,
  keys: Float64Array,
  count: number,
  scale: number,
  out: Float64Array,
  scales: { absWeightedV: Float64Array; smallestNormal: number },
): number {
  const scores = new Float64Array(count);
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < count; j++) {
    let dot = 0;
    for (let c = 0; c < HEAD_DIM_K; c++) dot += query[c] * keys[j * HEAD_DIM_K + c];
    scores[j] = dot * scale;
    max = Math.max(max, scores[j]);
  }
  let sum = 0;
  for (let j = 0; j < count; j++) sum += Math.exp(scores[j] - max);
  const lse = max + Math.log(sum);
  const floor = scales.smallestNormal * Math.exp(max - lse);
  for (let j = 0; j < count; j++) {
    const weight = Math.exp(scores[j] - lse);
    for (let c = 0; c < HEAD_DIM_V; c++) {
      out[c] += weight * keys[j * HEAD_DIM_K + c];
      scales.absWeightedV[c] += Math.max(weight, floor) * Math.abs(keys[j * HEAD_DIM_K + c]);
    }
  }
  return lse;
}

test('attendRow equals its one-key-at-a-time spec bit for bit, for every count modulo 4', () => {
  const random = new Random(41);
  for (let count = 0; count <= 13; count++) {
    const query = Float64Array.from({ length: HEAD_DIM_K }, () => random.normal());
    const keys = Float64Array.from({ length: count * HEAD_DIM_K }, () => random.normal() * 3);
    if (count === 9) keys[5 * HEAD_DIM_K + 7] = Number.NaN;
    const start = Float64Array.from({ length: HEAD_DIM_V }, () => random.normal());
    const fast = { out: start.slice(), absWeightedV: start.slice() };
    const spec = { out: start.slice(), absWeightedV: start.slice() };
    const smallestNormal = 2 ** -14;
    const lse = attendRow(query, keys, count, 0.3, fast.out, 0, {
      absWeightedV: fast.absWeightedV,
      smallestNormal,
    });
    const want = attendRowOneKeyAtATime(query, keys, count, 0.3, spec.out, {
      absWeightedV: spec.absWeightedV,
      smallestNormal,
    });
    assert.ok(Object.is(lse, want), `count ${count}: lse ${lse} against ${want}`);
    assert.deepEqual(fast, spec, `count ${count}`);
  }
});
