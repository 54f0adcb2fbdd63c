/**
 * The public graph API on the GPU: a whole decode step (the schedule recomputed into existing
 * metadata, then one decode call per layer into preallocated outputs) captured once with
 * Backend.captureGraph, and replayed after new lengths are written in place, checked against the
 * float64 reference and against the same calls run without a graph.
 */
import assert from 'node:assert/strict';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import { HEAD_DIM_V } from '../../src/config.js';
import { cpuBackend } from '../../src/cpu-backend/backend.js';
import type { DeviceTensor } from '../../src/cuda/device-tensor.js';
import { CudaStream } from '../../src/cuda/stream.js';
import { OptionError } from '../../src/errors.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { judgeDecode } from '../../src/verify/precision.js';
import { generateProblem } from '../../src/verify/problems.js';
import { gpuTest, SUITE_SEED, uploadProblem } from './support.js';

gpuTest('a captured decode step replays with new lengths, as the reference says', (backend) => {
  const random = new Random(SUITE_SEED + 40);
  const batch = 5;
  const [seqlenQ, numHeadsQ, numHeadsKv] = [2, 16, 1];
  const rows = (seqlenQ * numHeadsQ) / numHeadsKv;
  // Full blocks and no spare ones: every cache row holds data, whatever lengths come later.
  const config = { batch, seqlenQ, numHeadsQ, numHeadsKv, meanLength: 512, spareBlocks: 0 };
  const hostLayers = [0, 1, 2].map(() => generateProblem({ ...config, causal: true }, random));
  const { blockTable: hostTable } = hostLayers[0];
  const capacity = hostTable.shape[1] * 64;
  const layers = hostLayers.map((layer) => ({
    q: backend.upload(layer.q),
    kCache: backend.upload(layer.kCache),
  }));
  const blockTable = backend.upload(hostTable);
  const cacheSeqlens = backend.upload(hostLayers[0].cacheSeqlens);
  const outputs = layers.map(() => ({
    out: backend.empty('bf16', [batch, seqlenQ, numHeadsQ, HEAD_DIM_V]),
    lse: backend.empty('float32', [batch, numHeadsQ, seqlenQ]),
  }));
  // Allocated before the capture; the captured step recomputes the schedule into it.
  const metadata = getMlaMetadata(cacheSeqlens, rows, numHeadsKv);
  const runStep = () => {
    getMlaMetadata(cacheSeqlens, rows, numHeadsKv, { into: metadata });
    layers.forEach((layer, i) => {
      flashMlaWithKvcache(layer.q, layer.kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata, {
        causal: true,
        ...outputs[i],
      });
    });
  };
  const step = backend.captureGraph(runStep);
  const download = () =>
    outputs.map(({ out, lse }) => ({ out: out.toHostSync(), lse: lse.toHostSync() }));

  for (const [replay, lengths] of [
    [capacity, 0, 1, 200, capacity - 1],
    [64, 65, capacity, 0, 2],
    Array.from({ length: batch }, () => random.int(0, capacity)),
  ].entries()) {
    const hostLengths = HostTensor.fromValues('int32', [batch], lengths);
    backend.write(cacheSeqlens, hostLengths);
    for (const { out, lse } of outputs) {
      (out as DeviceTensor).fillNaN();
      (lse as DeviceTensor).fillNaN();
    }
    step.replay();
    const replayed = download();
    hostLayers.forEach((layer, i) => {
      const verdict = judgeDecode(replayed[i], {
        ...layer,
        blockTable: hostTable,
        cacheSeqlens: hostLengths,
      });
      assert.ok(
        verdict.ok,
        `replay ${replay}, lengths [${lengths}], layer ${i} (seed ${SUITE_SEED}): ${verdict.summary}\n${verdict.report.failures.join('\n')}`,
      );
    });
    // The same calls without a graph give the same bits.
    runStep();
    download().forEach((direct, i) => {
      assert.deepEqual(direct.out.data, replayed[i].out.data, `replay ${replay} layer ${i} out`);
      assert.deepEqual(direct.lse.data, replayed[i].lse.data, `replay ${replay} layer ${i} lse`);
    });
  }

  step.dispose();
  metadata.dispose();
  for (const tensor of [blockTable, cacheSeqlens, ...layers.flatMap((l) => [l.q, l.kCache])])
    (tensor as DeviceTensor).dispose();
  for (const { out, lse } of outputs) {
    (out as DeviceTensor).dispose();
    (lse as DeviceTensor).dispose();
  }
});

gpuTest(
  'while capturing, a call naming another stream is refused and the capture dropped',
  (backend) => {
    const lengths = backend.upload(HostTensor.fromValues('int32', [2], [10, 20]));
    const metadata = getMlaMetadata(lengths, 16, 1);
    const other = CudaStream.create(backend.device);
    assert.throws(
      () =>
        backend.captureGraph(() => {
          getMlaMetadata(lengths, 16, 1, { into: metadata, stream: other });
        }),
      (e: unknown) => e instanceof OptionError && e.argument === 'stream',
    );
    // The backend's stream is usable again: the capture was ended and dropped.
    getMlaMetadata(lengths, 16, 1, { into: metadata });
    backend.synchronize();
    other.dispose();
    metadata.dispose();
    (lengths as DeviceTensor).dispose();
  },
);

gpuTest(
  'while capturing, allocating (metadata without into, a decode without out/lse) or writing is refused',
  (backend) => {
    const problem = uploadProblem(
      backend,
      generateProblem(
        { batch: 2, seqlenQ: 1, numHeadsQ: 4, numHeadsKv: 1, meanLength: 70 },
        new Random(SUITE_SEED + 41),
      ),
    );
    const { q, kCache, blockTable, cacheSeqlens } = problem;
    const metadata = getMlaMetadata(cacheSeqlens, 4, 1);
    const refused = (record: () => void, argument: string) =>
      assert.throws(
        () => backend.captureGraph(record),
        (e: unknown) => e instanceof OptionError && e.argument === argument,
      );
    refused(() => getMlaMetadata(cacheSeqlens, 4, 1), 'into');
    refused(
      () => flashMlaWithKvcache(q, kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata),
      'out',
    );
    refused(
      () => backend.write(cacheSeqlens, HostTensor.fromValues('int32', [2], [1, 2])),
      'target',
    );
    metadata.dispose();
    problem.dispose();
  },
);

gpuTest(
  'capturing on a stream of its own takes metadata made on that stream (its split workspace)',
  (backend) => {
    const problem = uploadProblem(
      backend,
      generateProblem(
        { batch: 3, seqlenQ: 1, numHeadsQ: 16, numHeadsKv: 1, meanLength: 300 },
        new Random(SUITE_SEED + 42),
      ),
    );
    const { q, kCache, blockTable, cacheSeqlens } = problem;
    const stream = CudaStream.create(backend.device);
    const out = backend.empty('bf16', [3, 1, 16, HEAD_DIM_V]);
    const lse = backend.empty('float32', [3, 16, 1]);
    const elsewhere = getMlaMetadata(cacheSeqlens, 16, 1);
    backend.synchronize(); // the uploads, before work on the other stream reads them
    const decodeWith = (metadata: typeof elsewhere) => () => {
      flashMlaWithKvcache(q, kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata, {
        out,
        lse,
      });
    };
    // The default stream's workspace cannot serve the capturing stream, which has none yet and
    // cannot allocate one while capturing.
    assert.throws(
      () => backend.captureGraph(decodeWith(elsewhere), { stream }),
      (e: unknown) => e instanceof OptionError && e.argument === 'metadata',
    );
    const metadata = getMlaMetadata(cacheSeqlens, 16, 1, { stream });
    const step = backend.captureGraph(decodeWith(metadata), { stream });
    out.fillNaN(stream);
    step.replay();
    const replayed = out.toHostSync(stream);
    flashMlaWithKvcache(q, kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata, {
      out,
      lse,
      stream,
    });
    assert.deepEqual(out.toHostSync(stream).data, replayed.data, 'the replay gives the same bits');
    step.dispose();
    for (const resource of [metadata, elsewhere, out, lse]) resource.dispose();
    stream.dispose();
    problem.dispose();
  },
);

gpuTest('the GPU refuses exactly the shapes the CPU backend refuses', (backend) => {
  assert.deepEqual(backend.limits, cpuBackend.limits);
});
