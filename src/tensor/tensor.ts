import { ShapeError } from '../errors.js';
import type { DType } from './dtype.js';
import type { HostTensor } from './host-tensor.js';

/**
 * What every tensor has, wherever it lives (DLPack's vocabulary): an element type, a shape and
 * element strides. Host tensors hold a typed array; device tensors a device pointer.
 */
export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Strides in elements, one per dimension. */
  readonly strides: readonly number[];
  /** 'host', or the CUDA device it lives on. */
  readonly device: TensorDevice;
  /** Copies the tensor to the host (a host tensor resolves to itself). */
  toHost(): Promise<HostTensor>;
  /** Synchronous twin of toHost(). */
  toHostSync(): HostTensor;
}

export type TensorDevice =
  | { readonly kind: 'host' }
  | { readonly kind: 'cuda'; readonly ordinal: number };

export const HOST: TensorDevice = Object.freeze({ kind: 'host' });

export function describeDevice(device: TensorDevice): string {
  return device.kind === 'host' ? 'host' : `cuda:${device.ordinal}`;
}

export function sameDevice(a: TensorDevice, b: TensorDevice): boolean {
  return a.kind === b.kind && (a.kind === 'host' || (b.kind === 'cuda' && a.ordinal === b.ordinal));
}

/**
 * Throws ShapeError unless `shape` is an array of non-negative integers whose product is a safe
 * integer (callers from JavaScript can pass anything).
 */
export function checkShape(argument: string, shape: unknown): asserts shape is readonly number[] {
  const sizes = Array.isArray(shape) ? (shape as unknown[]) : null;
  if (
    sizes === null ||
    !sizes.every((size) => Number.isSafeInteger(size) && (size as number) >= 0)
  ) {
    throw new ShapeError(
      argument,
      'an array of non-negative integer sizes',
      sizes === null ? String(shape) : `[${sizes.map(String).join(', ')}]`,
    );
  }
  if (!Number.isSafeInteger(numel(sizes as number[]))) {
    throw new ShapeError(
      argument,
      `at most ${Number.MAX_SAFE_INTEGER} elements`,
      formatShape(sizes as number[]),
    );
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const size of shape) n *= size;
  return n;
}

/** Row-major (C-contiguous) element strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let dim = shape.length - 1; dim >= 0; dim--) {
    strides[dim] = stride;
    stride *= shape[dim];
  }
  return strides;
}

export function isContiguous(tensor: Pick<Tensor, 'shape' | 'strides'>): boolean {
  let expected = 1;
  for (let dim = tensor.shape.length - 1; dim >= 0; dim--) {
    if (tensor.shape[dim] !== 1 && tensor.strides[dim] !== expected) return false;
    expected *= tensor.shape[dim];
  }
  return true;
}

/**
 * The number of elements a strided view spans, from its first element to one past its last:
 * the size of the storage it needs.
 */
export function storageSpan(shape: readonly number[], strides: readonly number[]): number {
  if (shape.some((size) => size === 0)) return 0;
  let last = 0;
  for (let dim = 0; dim < shape.length; dim++) last += (shape[dim] - 1) * strides[dim];
  return last + 1;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
