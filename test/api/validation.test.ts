/**
 * Every bad input of TESTING.md that host tensors can have: a typed error naming the argument,
 * thrown before anything runs (the preallocated outputs stay NaN).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import { HEAD_DIM_V } from '../../src/config.js';
import {
  DeviceMismatchError,
  DtypeError,
  type FlashMlaError,
  LimitError,
  MetadataMismatchError,
  OptionError,
  ShapeError,
  StrideError,
  ValueError,
} from '../../src/errors.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { generateProblem } from '../../src/verify/problems.js';

type Args = {
  q: Tensor;
  kCache: Tensor;
  blockTable: Tensor;
  cacheSeqlens: Tensor;
  headDimV: number;
  tileSchedulerMetadata: Tensor;
  numSplits: Tensor;
  options: Record<string, unknown>;
};

function goodArgs(): Args & { out: HostTensor; lse: HostTensor } {
  const p = generateProblem(
    { batch: 2, seqlenQ: 2, numHeadsQ: 4, numHeadsKv: 2, meanLength: 70 },
    new Random(5),
  );
  const metadata = getMlaMetadata(p.cacheSeqlens, 4, 2);
  const out = HostTensor.full('bf16', [2, 2, 4, HEAD_DIM_V], Number.NaN);
  const lse = HostTensor.full('float32', [2, 4, 2], Number.NaN);
  return {
    q: p.q,
    kCache: p.kCache,
    blockTable: p.blockTable,
    cacheSeqlens: p.cacheSeqlens,
    headDimV: HEAD_DIM_V,
    tileSchedulerMetadata: metadata.tileSchedulerMetadata,
    numSplits: metadata.numSplits,
    options: { out, lse },
    out,
    lse,
  };
}

function call(args: Args) {
  return flashMlaWithKvcache(
    args.q,
    args.kCache,
    args.blockTable,
    args.cacheSeqlens,
    args.headDimV,
    args.tileSchedulerMetadata,
    args.numSplits,
    args.options,
  );
}

/** Asserts the call throws `kind` naming `argument`, and that the outputs were not touched. */
function rejects(
  change: (args: Args) => void,
  kind: new (...a: never[]) => FlashMlaError,
  argument: string,
  code: string,
): void {
  const args = goodArgs();
  const { out, lse } = args;
  change(args);
  assert.throws(
    () => call(args),
    (error: unknown) => {
      assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`);
      const e = error as FlashMlaError & { argument?: string };
      assert.equal(e.code, code);
      assert.equal(e.argument, argument, e.message);
      assert.ok(e.message.startsWith(`${argument}: expected `), e.message);
      return true;
    },
  );
  assert.ok(Array.from(out.toFloat64Array()).every(Number.isNaN), 'nothing ran: out untouched');
  assert.ok(Array.from(lse.toFloat64Array()).every(Number.isNaN), 'nothing ran: lse untouched');
}

const retype = (t: Tensor, dtype: 'bf16' | 'fp16' | 'float32' | 'int32'): HostTensor => {
  const h = t as HostTensor;
  const data =
    dtype === 'float32'
      ? new Float32Array(h.data.length)
      : dtype === 'int32'
        ? new Int32Array(h.data.length)
        : new Uint16Array(h.data.length);
  return new HostTensor(dtype, data, h.shape, h.strides, h.offset);
};
const reshape = (t: Tensor, shape: number[]) => HostTensor.zeros(t.dtype, shape);

test('the good arguments run (the baseline every case below changes one thing of)', () => {
  const args = goodArgs();
  call(args);
  assert.ok(Array.from(args.out.toFloat64Array()).every(Number.isFinite));
});

test('dtypes: q not bf16/fp16, kCache unlike q, int32 tensors that are not int32', () => {
  rejects((a) => (a.q = retype(a.q, 'float32')), DtypeError, 'q', 'ERR_DTYPE');
  rejects((a) => (a.kCache = retype(a.kCache, 'fp16')), DtypeError, 'kCache', 'ERR_DTYPE');
  rejects(
    (a) => (a.blockTable = retype(a.blockTable, 'float32')),
    DtypeError,
    'blockTable',
    'ERR_DTYPE',
  );
  rejects(
    (a) => (a.cacheSeqlens = retype(a.cacheSeqlens, 'float32')),
    DtypeError,
    'cacheSeqlens',
    'ERR_DTYPE',
  );
  rejects(
    (a) => (a.options.out = HostTensor.zeros('fp16', [2, 2, 4, HEAD_DIM_V])),
    DtypeError,
    'out',
    'ERR_DTYPE',
  );
  rejects(
    (a) => (a.options.lse = HostTensor.zeros('bf16', [2, 4, 2])),
    DtypeError,
    'lse',
    'ERR_DTYPE',
  );
});

test('not a tensor at all', () => {
  rejects((a) => (a.q = [1, 2, 3] as unknown as Tensor), ShapeError, 'q', 'ERR_SHAPE');
  rejects((a) => (a.blockTable = null as unknown as Tensor), ShapeError, 'blockTable', 'ERR_SHAPE');
});

test('mixing host and device tensors', () => {
  const fakeDevice = (t: Tensor): Tensor => ({
    ...(t as HostTensor),
    dtype: t.dtype,
    shape: t.shape,
    strides: t.strides,
    device: { kind: 'cuda', ordinal: 0 },
    toHost: t.toHost,
    toHostSync: t.toHostSync,
  });
  rejects(
    (a) => (a.kCache = fakeDevice(a.kCache)),
    DeviceMismatchError,
    'kCache',
    'ERR_DEVICE_MISMATCH',
  );
  rejects(
    (a) => (a.cacheSeqlens = fakeDevice(a.cacheSeqlens)),
    DeviceMismatchError,
    'cacheSeqlens',
    'ERR_DEVICE_MISMATCH',
  );
  rejects(
    (a) => (a.options.out = fakeDevice(a.options.out as Tensor)),
    DeviceMismatchError,
    'out',
    'ERR_DEVICE_MISMATCH',
  );
});

test('strides: non-contiguous last dims, non-contiguous cacheSeqlens, misaligned outer strides', () => {
  const transposeLast = (t: Tensor) => {
    const h = t as HostTensor;
    const n = h.shape.length;
    const strides = [...h.strides];
    strides[n - 1] = 2;
    return new HostTensor(
      h.dtype,
      new (h.data.constructor as Uint16ArrayConstructor)(h.data.length * 2),
      h.shape,
      strides.map((s, i) => (i < n - 1 ? s * 2 : 2)),
    );
  };
  rejects((a) => (a.q = transposeLast(a.q)), StrideError, 'q', 'ERR_STRIDE');
  rejects((a) => (a.kCache = transposeLast(a.kCache)), StrideError, 'kCache', 'ERR_STRIDE');
  rejects(
    (a) => (a.blockTable = transposeLast(a.blockTable)),
    StrideError,
    'blockTable',
    'ERR_STRIDE',
  );
  rejects(
    (a) => (a.cacheSeqlens = new HostTensor('int32', new Int32Array(4), [2], [2])),
    StrideError,
    'cacheSeqlens',
    'ERR_STRIDE',
  );
  const misaligned = (t: Tensor, dim: number, pad: number) => {
    const h = t as HostTensor;
    const padded = [...h.shape];
    padded[dim] += 0;
    padded[h.shape.length - 1] += pad;
    return HostTensor.padded(h.dtype, h.shape, padded);
  };
  rejects((a) => (a.q = misaligned(a.q, 2, 4)), StrideError, 'q', 'ERR_STRIDE');
  rejects((a) => (a.kCache = misaligned(a.kCache, 2, 2)), StrideError, 'kCache', 'ERR_STRIDE');
  rejects(
    (a) => (a.options.lse = new HostTensor('float32', new Float32Array(32), [2, 4, 2], [16, 4, 1])),
    StrideError,
    'lse',
    'ERR_STRIDE',
  );
});

test('sizes that overflow the kernels index types', () => {
  const huge = (t: Tensor, shape: number[], strides: number[]): Tensor => ({
    dtype: t.dtype,
    shape,
    strides,
    device: t.device,
    toHost: t.toHost,
    toHostSync: t.toHostSync,
  });
  rejects(
    (a) => (a.kCache = huge(a.kCache, [2 ** 31, 64, 2, 576], [64 * 2 * 576, 2 * 576, 576, 1])),
    LimitError,
    'kCache',
    'ERR_LIMIT',
  );
  rejects(
    (a) => (a.q = huge(a.q, [2, 2, 4, 576], [2 ** 53, 4 * 576, 576, 1])),
    LimitError,
    'q',
    'ERR_LIMIT',
  );
});

test('shapes: head dims, block size, h_kv dividing h_q, b, and mismatches between arguments', () => {
  rejects((a) => (a.q = reshape(a.q, [2, 2, 4, 512])), ShapeError, 'q', 'ERR_SHAPE');
  rejects((a) => (a.headDimV = 576), ShapeError, 'headDimV', 'ERR_SHAPE');
  rejects(
    (a) => (a.kCache = reshape(a.kCache, [a.kCache.shape[0], 32, 2, 576])),
    ShapeError,
    'kCache',
    'ERR_SHAPE',
  );
  rejects(
    (a) => (a.kCache = reshape(a.kCache, [a.kCache.shape[0], 64, 2, 512])),
    ShapeError,
    'kCache',
    'ERR_SHAPE',
  );
  rejects(
    (a) => (a.kCache = reshape(a.kCache, [a.kCache.shape[0], 64, 3, 576])),
    ShapeError,
    'q',
    'ERR_SHAPE',
  );
  rejects((a) => (a.q = reshape(a.q, [3, 2, 4, 576])), ShapeError, 'q', 'ERR_SHAPE');
  rejects(
    (a) => (a.blockTable = reshape(a.blockTable, [3, 4])),
    ShapeError,
    'blockTable',
    'ERR_SHAPE',
  );
  rejects(
    (a) => (a.cacheSeqlens = HostTensor.zeros('int32', [0])),
    ShapeError,
    'cacheSeqlens',
    'ERR_SHAPE',
  );
  rejects((a) => (a.q = reshape(a.q, [2, 0, 4, 576])), ShapeError, 'q', 'ERR_SHAPE');
  rejects((a) => (a.q = reshape(a.q, [2, 2, 4, 576, 1])), ShapeError, 'q', 'ERR_SHAPE');
  rejects(
    (a) => (a.blockTable = reshape(a.blockTable, [2])),
    ShapeError,
    'blockTable',
    'ERR_SHAPE',
  );
  rejects(
    (a) => (a.options.out = HostTensor.zeros('bf16', [2, 2, 4, 576])),
    ShapeError,
    'out',
    'ERR_SHAPE',
  );
  rejects(
    (a) => (a.options.lse = HostTensor.zeros('float32', [2, 2, 4])),
    ShapeError,
    'lse',
    'ERR_SHAPE',
  );
});

test('values: negative lengths, lengths past the table, used block ids outside the cache', () => {
  rejects(
    (a) => (a.cacheSeqlens as HostTensor).set(-1, 1),
    ValueError,
    'cacheSeqlens[1]',
    'ERR_VALUE',
  );
  rejects(
    (a) => (a.cacheSeqlens as HostTensor).set(a.blockTable.shape[1] * 64 + 1, 0),
    ValueError,
    'cacheSeqlens[0]',
    'ERR_VALUE',
  );
  rejects(
    (a) => (a.blockTable as HostTensor).set(a.kCache.shape[0], 0, 0),
    ValueError,
    'blockTable[0][0]',
    'ERR_VALUE',
  );
  rejects(
    (a) => (a.blockTable as HostTensor).set(-1, 1, 0),
    ValueError,
    'blockTable[1][0]',
    'ERR_VALUE',
  );
});

test('entries past a sequence are padding, not errors', () => {
  const args = goodArgs();
  const lengths = args.cacheSeqlens as HostTensor;
  lengths.set(1, 0);
  const metadata = getMlaMetadata(lengths, 4, 2);
  args.tileSchedulerMetadata = metadata.tileSchedulerMetadata;
  args.numSplits = metadata.numSplits;
  for (let j = 1; j < args.blockTable.shape[1]; j++)
    (args.blockTable as HostTensor).set(-123456, 0, j);
  call(args);
  assert.ok(Array.from(args.out.toFloat64Array()).every(Number.isFinite));
});

test('options: softmaxScale not finite or <= 0, causal not boolean', () => {
  for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '0.1']) {
    rejects((a) => (a.options.softmaxScale = bad), OptionError, 'softmaxScale', 'ERR_OPTION');
  }
  rejects((a) => (a.options.causal = 1), OptionError, 'causal', 'ERR_OPTION');
});

test('metadata made for another batch size or head layout, or not by getMlaMetadata', () => {
  const other = (lengths: number[], rows: number, heads: number) =>
    getMlaMetadata(HostTensor.fromValues('int32', [lengths.length], lengths), rows, heads);
  rejects(
    (a) => {
      const m = other([70, 70, 70], 4, 2);
      a.tileSchedulerMetadata = m.tileSchedulerMetadata;
      a.numSplits = m.numSplits;
    },
    MetadataMismatchError,
    'numSplits',
    'ERR_METADATA_MISMATCH',
  );
  rejects(
    (a) => {
      const m = other([70, 70], 8, 1);
      a.tileSchedulerMetadata = m.tileSchedulerMetadata;
      a.numSplits = m.numSplits;
    },
    MetadataMismatchError,
    'tileSchedulerMetadata',
    'ERR_METADATA_MISMATCH',
  );
  rejects(
    (a) => {
      a.numSplits = other([70, 70], 4, 2).numSplits;
    },
    MetadataMismatchError,
    'numSplits',
    'ERR_METADATA_MISMATCH',
  );
  rejects(
    (a) => {
      a.tileSchedulerMetadata = (a.tileSchedulerMetadata as HostTensor).contiguous();
    },
    MetadataMismatchError,
    'tileSchedulerMetadata',
    'ERR_METADATA_MISMATCH',
  );
});

test('getMlaMetadata checks its own arguments', () => {
  const lengths = HostTensor.fromValues('int32', [2], [5, 6]);
  assert.throws(
    () => getMlaMetadata(lengths, 0, 1),
    (e: unknown) => e instanceof OptionError && e.argument === 'numQRowsPerKvHead',
  );
  assert.throws(
    () => getMlaMetadata(lengths, 4, 1.5),
    (e: unknown) => e instanceof OptionError && e.argument === 'numHeadsK',
  );
  assert.throws(() => getMlaMetadata(HostTensor.zeros('float32', [2]), 4, 1), DtypeError);
  assert.throws(() => getMlaMetadata(HostTensor.zeros('int32', [2, 1]), 4, 1), ShapeError);
});

test('not errors: L = 0, causal with s_q > L, NaN in q', () => {
  const args = goodArgs();
  (args.q as HostTensor).set(Number.NaN, 0, 0, 0, 3);
  args.options.causal = true;
  call(args);
  assert.ok(Number.isNaN(args.lse.get(0, 0, 0)));
});
