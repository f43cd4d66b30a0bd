// Package cuda is the GPU side of github.com/org/vat: a CUDA device with
// cuBLAS, device memory, and the package's own kernels (kernels.cu, compiled
// to kernels.ptx by nvcc and embedded). Everything but this file is built
// only with the `cuda` build tag, which needs the CUDA toolkit (cuda.h,
// cublas_v2.h) and a GPU driver; the default build of the module never
// compiles or links any of it.
//
// The root package reaches it through Backend (backend.go), registered by
// the root's backend_cuda.go: its ops keep device mirrors of their host
// buffers and run these kernels and cuBLAS on them, so the Gorgonia graph
// is the same on both backends. Device is usable on its own: Alloc, Upload,
// Download, SgemmStridedBatched and the typed kernel entry points in
// kernels.go.
package cuda
