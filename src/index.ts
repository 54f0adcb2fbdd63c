/** flashmla: FlashMLA-class MLA decode attention for Node.js. */
export {
  type DecodeOptions,
  flashMlaWithKvcache,
  getMlaMetadata,
  type MetadataOptions,
} from './api/decode.js';
export { type BackendChoice, type OpenBackendOptions, openBackend } from './api/open-backend.js';
export type { Backend, BackendKind, CapturedGraph, DecodeResult } from './backend/backend.js';
export type { BackendLimits } from './backend/limits.js';
export { type MetadataTensors, MlaMetadata } from './backend/metadata.js';
export * from './config.js';
export { CudaDevice } from './cuda/device.js';
export { DeviceTensor } from './cuda/device-tensor.js';
export { CudaContextLostError, CudaError } from './cuda/errors.js';
export { CudaEvent } from './cuda/event.js';
export { type CudaProbe, probeCuda } from './cuda/probe.js';
export { CudaStream } from './cuda/stream.js';
export * from './errors.js';
export { type ErrorScales, type ReferenceResult, referenceDecode } from './reference/reference.js';
export {
  computeTileSchedule,
  fixedOverheadBlocksFor,
  numSmPartsFor,
  type TileSchedule,
} from './scheduler.js';
export { bytesPerElement, type DType } from './tensor/dtype.js';
export {
  bf16BitsToFloat32,
  float32ToBf16Bits,
  float32ToFp16Bits,
  fp16BitsToFloat32,
  roundToBf16,
  roundToFp16,
} from './tensor/half.js';
export { HostTensor } from './tensor/host-tensor.js';
export type { Tensor, TensorDevice } from './tensor/tensor.js';
export { comparePrecision, judgeDecode, type PrecisionReport } from './verify/precision.js';
