// The CUDA layer on a real GPU: memory, streams, events, graphs, device tensors, module loading
// and launches (with and without programmatic dependent launch), and a sticky error losing the
// context. Skips, with the reason, where probeCuda() finds no usable GPU; the launch tests also
// need nvcc on the PATH (or in $NVCC) to build their small kernels.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CudaDevice } from '../../src/cuda/device.js';
import { DeviceTensor, uploadHostTensorPreservingLayout } from '../../src/cuda/device-tensor.js';
import { CudaEvent } from '../../src/cuda/event.js';
import { captureGraph } from '../../src/cuda/graph.js';
import {
  copyDeviceToDevice,
  copyDeviceToHost,
  copyDeviceToHostSync,
  copyHostToDevice,
  copyHostToDeviceSync,
  DeviceBuffer,
  fill,
  fillSync,
  subspan,
} from '../../src/cuda/memory.js';
import { CudaModule, type LaunchConfig } from '../../src/cuda/module.js';
import { probeCuda } from '../../src/cuda/probe.js';
import { CudaStream } from '../../src/cuda/stream.js';
import { encodeTensorMapTiled, TENSOR_MAP_BYTES } from '../../src/cuda/tensor-map.js';
import { DisposedError, LimitError, StrideError } from '../../src/errors.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';

const probe = probeCuda();
const noGpu = probe.ok ? false : `no usable CUDA GPU: ${probe.reason}`;
const seed = Random.freshSeed();

function randomBytes(random: Random, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = random.nextUint32() & 0xff;
  return bytes;
}

test('device: properties, one instance per ordinal, memory info', { skip: noGpu }, () => {
  const device = CudaDevice.open(0);
  assert.equal(CudaDevice.open(0), device);
  assert.deepEqual(device.computeCapability, { major: 9, minor: 0 });
  assert.ok(device.name.length > 0);
  assert.ok(device.multiProcessorCount >= 100, `${device.multiProcessorCount} SMs`);
  assert.ok(device.maxSharedMemoryPerBlockOptin >= 227 * 1024);
  assert.ok(device.sharedMemoryPerMultiprocessor >= device.maxSharedMemoryPerBlockOptin);
  assert.ok(device.l2CacheBytes >= 40 * 1024 * 1024);
  assert.ok(CudaDevice.driverVersion() >= 13000);
  assert.ok(CudaDevice.count() >= 1);
  const { freeBytes, totalBytes } = device.memoryInfo();
  assert.ok(freeBytes > 0 && freeBytes <= totalBytes, `${freeBytes} of ${totalBytes}`);
  assert.ok(Math.abs(totalBytes - device.totalMemoryBytes) < 2 ** 30);
  device.synchronize();
  assert.equal(device.poisoned, false);
});

test('memory: random bytes survive host -> device -> device -> host', { skip: noGpu }, async () => {
  const device = CudaDevice.open(0);
  const random = new Random(seed);
  for (const length of [1, 7, 4096, 1_000_003]) {
    const source = randomBytes(random, length);
    const first = DeviceBuffer.alloc(device, length);
    const second = DeviceBuffer.alloc(device, length);
    try {
      copyHostToDeviceSync(first, source);
      copyDeviceToDevice(second, first);
      const back = new Uint8Array(length);
      copyDeviceToHostSync(back, second);
      assert.deepEqual(back, source, `length ${length}, seed ${seed}`);

      const stream = CudaStream.create(device, { nonBlocking: true });
      const again = new Uint8Array(length);
      copyDeviceToHost(again, first, stream);
      await stream.wait();
      assert.deepEqual(again, source, `async, length ${length}, seed ${seed}`);
      stream.dispose();
    } finally {
      first.dispose();
      second.dispose();
    }
  }
});

test('memory: copies honour typed-array offsets and subspans', { skip: noGpu }, () => {
  const device = CudaDevice.open(0);
  const buffer = DeviceBuffer.alloc(device, 64);
  try {
    fillSync(buffer, 8, 0);
    const words = Int32Array.from([10, 11, 12, 13, 14, 15]);
    copyHostToDeviceSync(subspan(buffer, 8, 16), words.subarray(2, 6));
    const back = new Int32Array(8);
    copyDeviceToHostSync(back.subarray(1, 7), subspan(buffer, 4, 24));
    assert.deepEqual([...back], [0, 0, 12, 13, 14, 15, 0, 0]);
    assert.throws(
      () => copyHostToDevice(subspan(buffer, 56, 8), new Uint8Array(9)),
      /at most 8 bytes/,
    );
    assert.throws(() => subspan(buffer, 60, 8), /a range inside 64 bytes/);
  } finally {
    buffer.dispose();
  }
});

test('memory: 8-, 16- and 32-bit fills write the pattern and nothing around it', {
  skip: noGpu,
}, () => {
  const device = CudaDevice.open(0);
  const buffer = DeviceBuffer.alloc(device, 1024);
  try {
    fillSync(buffer, 8, 0xab);
    fill(subspan(buffer, 16, 32), 16, 0x7fc0);
    fill(subspan(buffer, 64, 64), 32, 0x7fc00000);
    const bytes = new Uint8Array(1024);
    copyDeviceToHostSync(bytes, buffer);
    const halves = new Uint16Array(bytes.buffer, 16, 16);
    const words = new Uint32Array(bytes.buffer, 64, 16);
    assert.ok(halves.every((bits) => bits === 0x7fc0));
    assert.ok(words.every((bits) => bits === 0x7fc00000));
    assert.ok(bytes.subarray(0, 16).every((byte) => byte === 0xab));
    assert.ok(bytes.subarray(48, 64).every((byte) => byte === 0xab));
    assert.ok(bytes.subarray(128).every((byte) => byte === 0xab));
    assert.throws(() => fill(subspan(buffer, 1, 4), 16, 1), StrideError);
    assert.throws(() => fill(buffer, 16, 0x10000), /unsigned 16-bit/);
  } finally {
    buffer.dispose();
  }
});

test('stream and events: timing is positive, waits resolve, queries see completion', {
  skip: noGpu,
}, async () => {
  const device = CudaDevice.open(0);
  const stream = CudaStream.create(device);
  const start = CudaEvent.create(device);
  const end = CudaEvent.create(device);
  const big = DeviceBuffer.alloc(device, 512 * 1024 * 1024);
  try {
    start.record(stream);
    for (let i = 0; i < 4; i++) fill(big, 32, i, stream);
    end.record(stream);
    await end.wait();
    assert.equal(end.query(), true);
    assert.equal(stream.query(), true);
    const ms = CudaEvent.elapsedMs(start, end);
    assert.ok(ms > 0 && ms < 1000, `${ms} ms for 2 GiB of fills`);

    const untimed = CudaEvent.create(device, { timing: false });
    untimed.record(stream);
    untimed.synchronize();
    assert.throws(() => CudaEvent.elapsedMs(start, untimed), /timing/);
    untimed.dispose();

    const other = CudaStream.create(device);
    fill(big, 32, 7, stream);
    end.record(stream);
    other.waitFor(end);
    const word = new Uint32Array(1);
    copyDeviceToHost(word, subspan(big, big.bytes - 4, 4), other);
    other.synchronize();
    assert.equal(word[0], 7);
    other.dispose();
    await stream.wait();
  } finally {
    big.dispose();
    start.dispose();
    end.dispose();
    stream.dispose();
  }
});

test('graphs: a captured fill and copy replay on launch', { skip: noGpu }, () => {
  const device = CudaDevice.open(0);
  const stream = CudaStream.create(device);
  const source = DeviceBuffer.alloc(device, 4096);
  const target = DeviceBuffer.alloc(device, 4096);
  try {
    fillSync(target, 8, 0, stream);
    const graph = captureGraph(stream, () => {
      fill(source, 32, 0x01020304, stream);
      copyDeviceToDevice(target, source, stream);
    });
    const words = new Uint32Array(1024);
    copyDeviceToHostSync(words, target, stream);
    assert.ok(
      words.every((word) => word === 0),
      'capture runs nothing',
    );
    const exec = graph.instantiate();
    graph.dispose();
    exec.launch(stream);
    copyDeviceToHostSync(words, target, stream);
    assert.ok(words.every((word) => word === 0x01020304));
    exec.dispose();

    assert.throws(
      () =>
        captureGraph(stream, () => {
          throw new Error('recording failed');
        }),
      /recording failed/,
    );
    fillSync(source, 8, 1, stream);
  } finally {
    source.dispose();
    target.dispose();
    stream.dispose();
  }
});

test('device tensors: contiguous upload and download', { skip: noGpu }, async () => {
  const device = CudaDevice.open(0);
  const random = new Random(seed);
  const values = Array.from({ length: 3 * 5 * 576 }, () => random.normal());
  for (const dtype of ['bf16', 'fp16', 'float32'] as const) {
    const host = HostTensor.fromValues(dtype, [3, 5, 576], values);
    const tensor = DeviceTensor.fromHost(device, host);
    assert.deepEqual(tensor.device, { kind: 'cuda', ordinal: 0 });
    assert.deepEqual(tensor.strides, [5 * 576, 576, 1]);
    const back = await tensor.toHost();
    assert.deepEqual(back.data, host.data, `${dtype}, seed ${seed}`);
    tensor.dispose();
  }
  const ints = HostTensor.fromValues('int32', [4], [3, -1, 2147480000, 0]);
  const intTensor = DeviceTensor.fromHost(device, ints);
  assert.deepEqual([...intTensor.toHostSync().data], [3, -1, 2147480000, 0]);
  intTensor.dispose();
});

test('device tensors: padded strides and offsets survive the round trip', {
  skip: noGpu,
}, async () => {
  const device = CudaDevice.open(0);
  const random = new Random(seed);
  const shape = [2, 3, 64];
  const values = Array.from({ length: 2 * 3 * 64 }, () => random.normal());
  const padded = HostTensor.padded('bf16', shape, [2, 4, 72]);
  const dense = HostTensor.fromValues('bf16', shape, values);
  for (let b = 0; b < 2; b++) {
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 64; c++) padded.set(dense.get(b, r, c), b, r, c);
    }
  }
  const shifted = padded.view(shape, padded.strides, 8);

  for (const host of [padded, shifted]) {
    const tensor = uploadHostTensorPreservingLayout(device, host);
    assert.deepEqual(tensor.strides, [4 * 72, 72, 1]);
    assert.equal(tensor.byteOffset, host.offset * 2);
    assert.equal(tensor.isContiguous(), false);
    assert.equal(tensor.owner?.bytes, (host.offset + (1 * 288 + 2 * 72 + 63 + 1)) * 2);
    const back = await tensor.toHost();
    assert.ok(back.isContiguous());
    assert.deepEqual(back.data, host.contiguous().data, `offset ${host.offset}, seed ${seed}`);
    tensor.dispose();
  }
});

test('device tensors: NaN fills, wrapping a foreign pointer, dispose semantics', {
  skip: noGpu,
}, async () => {
  const device = CudaDevice.open(0);
  const out = DeviceTensor.empty(device, 'bf16', [4, 512]);
  out.fillNaN();
  assert.ok((await out.toHost()).data.every((bits) => bits === 0x7fc0));
  out.fill16(0x3f80);
  assert.ok(out.toHostSync().data.every((bits) => bits === 0x3f80));
  const lse = DeviceTensor.empty(device, 'float32', [4, 3]);
  lse.fillNaN();
  assert.ok(lse.toHostSync().toFloat64Array().every(Number.isNaN));
  assert.throws(() => lse.fill16(0), /bf16 or fp16/);

  const buffer = DeviceBuffer.alloc(device, 64);
  copyHostToDeviceSync(
    buffer,
    Int32Array.from({ length: 16 }, (_, i) => i * 10),
  );
  const wrapped = DeviceTensor.wrap(device, buffer.ptr, 'int32', [2, 3], [6, 1], 8);
  assert.equal(wrapped.owner, null);
  assert.equal(wrapped.ptr, buffer.ptr + 8n);
  assert.deepEqual([...wrapped.toHostSync().data], [20, 30, 40, 80, 90, 100]);
  wrapped.dispose();
  wrapped.dispose();
  assert.equal(buffer.disposed, false, 'a wrapped pointer is never freed by us');
  assert.throws(() => wrapped.ptr, DisposedError);
  assert.throws(() => wrapped.toHostSync(), DisposedError);
  await assert.rejects(wrapped.toHost(), DisposedError);
  assert.throws(() => DeviceTensor.wrap(device, buffer.ptr + 2n, 'int32', [2]), StrideError);
  buffer.dispose();
  buffer.dispose();
  assert.throws(() => buffer.ptr, DisposedError);

  out.dispose();
  out.dispose();
  assert.equal(out.owner?.disposed, true);
  assert.throws(() => out.fillNaN(), DisposedError);
  lse.dispose();
});

test('tensor maps: a K-cache tile descriptor encodes to 128 bytes', { skip: noGpu }, () => {
  const device = CudaDevice.open(0);
  const cache = DeviceBuffer.alloc(device, 576 * 2 * 64 * 4);
  try {
    const map = encodeTensorMapTiled(device, {
      dtype: 'bf16',
      globalAddress: cache.ptr,
      globalDims: [576, 64 * 4],
      globalStridesBytes: [576 * 2],
      boxDims: [64, 64],
      swizzle: '128B',
      l2Promotion: '256B',
    });
    assert.equal(map.byteLength, TENSOR_MAP_BYTES);
    assert.ok(map.some((byte) => byte !== 0));
    assert.throws(
      () =>
        encodeTensorMapTiled(device, {
          dtype: 'bf16',
          globalAddress: cache.ptr + 2n,
          globalDims: [576, 256],
          globalStridesBytes: [1152],
          boxDims: [64, 64],
          swizzle: '128B',
        }),
      StrideError,
    );
  } finally {
    cache.dispose();
  }
});

const KERNELS = `
struct AffineParams { int* out; int count; int base; int step; int reserved; };

// Writes base + step * i through dynamic shared memory, so the launch's sharedBytes matter.
extern "C" __global__ void fill_affine(const __grid_constant__ AffineParams p) {
  extern __shared__ int stage[];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  stage[threadIdx.x] = p.base + p.step * i;
  __syncthreads();
  if (i < p.count) p.out[i] = stage[threadIdx.x];
}

// Adds base after the previous kernel on the stream (programmatic dependent launch).
extern "C" __global__ void add_after_previous(const __grid_constant__ AffineParams p) {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < p.count) p.out[i] += p.base;
}

struct FlagParams { int* flag; int* result; };

__device__ unsigned long long nanoseconds() {
  unsigned long long now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  return now;
}

// Lets dependents start, then waits up to 200 ms for one of them to raise the flag: result 1
// means the next kernel ran while this one was still running.
extern "C" __global__ void wait_for_flag(const __grid_constant__ FlagParams p) {
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  unsigned long long start = nanoseconds();
  while (*reinterpret_cast<volatile int*>(p.flag) == 0) {
    if (nanoseconds() - start > 200000000ull) { *p.result = 0; return; }
  }
  *p.result = 1;
}

extern "C" __global__ void raise_flag(const __grid_constant__ FlagParams p) {
  *reinterpret_cast<volatile int*>(p.flag) = 1;
}

extern "C" __global__ void store_to_null(int* unused) {
  *reinterpret_cast<volatile int*>(16) = 1;
}
`;

/** Builds the test kernels into a cubin, or says why it cannot. */
function buildKernels(): { cubin: Uint8Array } | { skip: string } {
  const nvcc = process.env.NVCC ?? 'nvcc';
  const dir = mkdtempSync(join(tmpdir(), 'flashmla-driver-test-'));
  const source = join(dir, 'kernels.cu');
  const cubin = join(dir, 'kernels.cubin');
  writeFileSync(source, KERNELS);
  const built = spawnSync(nvcc, ['-arch=sm_90a', '-cubin', '-o', cubin, source], {
    encoding: 'utf8',
  });
  if (built.error !== undefined) return { skip: `nvcc not found (${built.error.message})` };
  if (built.status !== 0) return { skip: `nvcc failed: ${built.stderr}` };
  return { cubin: new Uint8Array(readFileSync(cubin)) };
}

const kernels = noGpu === false ? buildKernels() : { skip: noGpu };
const noKernels = 'skip' in kernels ? kernels.skip : false;

function affineParams(out: bigint, count: number, base: number, step: number): Uint8Array {
  const params = new Uint8Array(24);
  const view = new DataView(params.buffer);
  view.setBigUint64(0, out, true);
  view.setInt32(8, count, true);
  view.setInt32(12, base, true);
  view.setInt32(16, step, true);
  return params;
}

test('modules: load a cubin, read attributes, launch with and without PDL', {
  skip: noKernels,
}, () => {
  assert.ok('cubin' in kernels);
  const device = CudaDevice.open(0);
  const module = CudaModule.load(device, kernels.cubin);
  const out = DeviceTensor.empty(device, 'int32', [100_000]);
  try {
    const fillAffine = module.getFunction('fill_affine');
    assert.equal(module.getFunction('fill_affine'), fillAffine);
    const attributes = fillAffine.attributes();
    assert.ok(attributes.numRegs > 0 && attributes.maxThreadsPerBlock >= 256);
    assert.equal(attributes.localSizeBytes, 0);

    const sharedBytes = 100 * 1024;
    assert.throws(
      () => fillAffine.setMaxDynamicSharedMemory(device.maxSharedMemoryPerBlockOptin + 1),
      LimitError,
    );
    fillAffine.setMaxDynamicSharedMemory(sharedBytes);
    assert.equal(fillAffine.attributes().maxDynamicSharedSizeBytes, sharedBytes);
    const count = out.numel;
    const grid = [Math.ceil(count / 256), 1, 1] as const;
    fillAffine.launch({
      grid,
      block: [256, 1, 1],
      sharedBytes,
      params: affineParams(out.ptr, count, 5, 3),
    });
    module.getFunction('add_after_previous').launch({
      grid,
      block: [256, 1, 1],
      params: affineParams(out.ptr, count, 1000, 0),
      programmaticDependentLaunch: true,
    });
    const values = out.toHostSync().data;
    for (const i of [0, 1, 255, 256, count - 1])
      assert.equal(values[i], 1005 + 3 * i, `element ${i}`);
    assert.ok(values.every((value, i) => value === 1005 + 3 * i));
    assert.throws(
      () =>
        fillAffine.launch({ grid: [1, 70000, 1], block: [1, 1, 1], params: new Uint8Array(24) }),
      LimitError,
    );
  } finally {
    out.dispose();
    module.dispose();
  }
  assert.throws(() => module.getFunction('fill_affine'), DisposedError);
});

test('programmatic dependent launch lets the next kernel start early', { skip: noKernels }, () => {
  assert.ok('cubin' in kernels);
  const device = CudaDevice.open(0);
  const module = CudaModule.load(device, kernels.cubin);
  const words = DeviceTensor.empty(device, 'int32', [2]);
  try {
    const params = new Uint8Array(16);
    const view = new DataView(params.buffer);
    view.setBigUint64(0, words.ptr, true);
    view.setBigUint64(8, words.ptr + 4n, true);
    const one: LaunchConfig = { grid: [1, 1, 1], block: [32, 1, 1], params };
    const overlapped = (programmaticDependentLaunch: boolean): number => {
      fill(words.storage(), 32, 0);
      module.getFunction('wait_for_flag').launch(one);
      module.getFunction('raise_flag').launch({ ...one, programmaticDependentLaunch });
      return words.toHostSync().data[1];
    };
    assert.equal(overlapped(false), 0, 'without the attribute the second kernel waits');
    assert.equal(overlapped(true), 1, 'with it the second kernel runs alongside the first');
  } finally {
    words.dispose();
    module.dispose();
  }
});

test('a sticky error loses the context: later calls throw CudaContextLostError at once', {
  skip: noKernels,
}, () => {
  assert.ok('cubin' in kernels);
  // A lost context stays lost for the whole process, so this runs in a child process.
  const dir = mkdtempSync(join(tmpdir(), 'flashmla-sticky-'));
  const cubinPath = join(dir, 'kernels.cubin');
  writeFileSync(cubinPath, kernels.cubin);
  const cuda = (name: string) =>
    JSON.stringify(fileURLToPath(new URL(`../../src/cuda/${name}.js`, import.meta.url)));
  const script = `
    import { readFileSync } from 'node:fs';
    const { CudaDevice } = await import(${cuda('device')});
    const { DeviceBuffer } = await import(${cuda('memory')});
    const { CudaModule } = await import(${cuda('module')});
    const device = CudaDevice.open(0);
    const module = CudaModule.load(device, new Uint8Array(readFileSync(${JSON.stringify(cubinPath)})));
    const params = new Uint8Array(8);
    module.getFunction('store_to_null').launch({ grid: [1, 1, 1], block: [1, 1, 1], params });
    const report = {};
    try { device.synchronize(); } catch (error) { report.first = [error.name, error.code, error.resultName, error.call]; }
    report.poisoned = device.poisoned;
    try { DeviceBuffer.alloc(device, 16); } catch (error) { report.later = [error.name, error.code, error.resultName, error.call, error.message]; }
    module.dispose();
    device.dispose();
    console.log(JSON.stringify(report));
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  assert.equal(child.status, 0, child.stderr);
  const report = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}');
  assert.deepEqual(report.first, [
    'CudaContextLostError',
    'ERR_CUDA_CONTEXT_LOST',
    'CUDA_ERROR_ILLEGAL_ADDRESS',
    'cuCtxSynchronize',
  ]);
  assert.equal(report.poisoned, true);
  assert.deepEqual(report.later.slice(0, 4), [
    'CudaContextLostError',
    'ERR_CUDA_CONTEXT_LOST',
    'CUDA_ERROR_ILLEGAL_ADDRESS',
    'cuMemAllocFromPoolAsync',
  ]);
  assert.match(
    report.later[4],
    /cuMemAllocFromPoolAsync was not run: the CUDA context of cuda:0 is lost: cuCtxSynchronize failed/,
  );
});
