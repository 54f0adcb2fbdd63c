export {
  type ComputeCapability,
  CudaDevice,
  cudaDeviceCount,
  cudaDriverVersion,
  type DeviceProperties,
  readDeviceProperties,
} from './device.js';
export { DeviceTensor, uploadHostTensorPreservingLayout } from './device-tensor.js';
export {
  type DevicePointer,
  formatDriverVersion,
  type Handle,
  REQUIRED_DRIVER_VERSION,
} from './driver.js';
export {
  assertSameDevice,
  CudaContextLostError,
  CudaError,
  type CudaFailure,
  describeCudaFailure,
  isStickyCudaResult,
} from './errors.js';
export { CudaEvent, type EventOptions } from './event.js';
export { beginCapture, CudaGraph, CudaGraphExec, captureGraph, endCapture } from './graph.js';
export {
  copyDeviceToDevice,
  copyDeviceToDeviceSync,
  copyDeviceToHost,
  copyDeviceToHostSync,
  copyHostToDevice,
  copyHostToDeviceSync,
  DeviceBuffer,
  type DeviceSpan,
  type FillWidth,
  fill,
  fillSync,
  subspan,
} from './memory.js';
export {
  CudaFunction,
  CudaModule,
  type Dim3,
  type FunctionAttributes,
  LAUNCH_LIMITS,
  type LaunchConfig,
  validateLaunchConfig,
} from './module.js';
export { type CudaProbe, probeCuda, REQUIRED_COMPUTE_CAPABILITY } from './probe.js';
export { CudaStream, type StreamOptions } from './stream.js';
export {
  encodeTensorMapTiled,
  TENSOR_MAP_BYTES,
  type TensorMapDtype,
  type TensorMapInterleave,
  type TensorMapL2Promotion,
  type TensorMapOobFill,
  type TensorMapSwizzle,
  type TensorMapTiledOptions,
  validateTensorMapTiled,
} from './tensor-map.js';
