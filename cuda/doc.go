// Package cuda is the GPU side of github.com/org/vat: a CUDA device with
// cuBLAS, device memory, and the package's own kernels (kernels.cu, compiled
// to kernels.ptx by nvcc and embedded). Everything but this file is built
// only with the `cuda` build tag, which needs the CUDA toolkit (cuda.h,
// cublas_v2.h) and a GPU driver; the default build of the module never
// compiles or links any of it.
//
// Status: the device layer and kernels exist and are tested against CPU
// references on a GPU machine (H200, CUDA 13); the training graph does not
// use them yet.
//
// The plan for wiring them in: the root package's ops reach the GPU through
// a small backend interface chosen in one tagged registration file, and a
// tensor's data can live on the device, with a host copy synchronized only
// where host code reads it (the trainer's scalar losses, Model.Params, the
// optimizer when it runs on the CPU). The graph stays the same Gorgonia
// graph; only our ops' Do methods change device.
package cuda
