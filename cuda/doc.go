// Package cuda is the GPU side of github.com/org/vat: a CUDA device with
// cuBLAS, device memory, and the package's own kernels (kernels.cu, compiled
// to kernels.ptx by nvcc and embedded). Everything but this file is built
// only with the `cuda` build tag, which needs the CUDA toolkit (cuda.h,
// cublas_v2.h) and a GPU driver; the default build of the module never
// compiles or links any of it.
//
// Status: the device layer and kernels exist and are tested against CPU
// references on a GPU machine; the training graph does not use them yet.
package cuda
