// Package cuda is the GPU side of github.com/org/vat: a CUDA device with
// cuBLAS, cuDNN (dnn.go: convolutions and max-pooling through cuDNN 9's
// descriptor API, one plan per shape), device memory, and the package's own
// kernels (kernels.cu, embedded and compiled by NVRTC for the GPU at hand
// when it is opened, nvrtc.go): im2col
// and col2im, bias and ReLU, pooling, L2 normalization, batch
// normalization, the softmax losses, the Adadelta and Adam updates, and
// the random draws (dropout masks bit for bit as on the CPU, normals from
// Philox4x32-10). internal/cudaemu runs the same kernels.cu on the CPU for
// the tests of machines without a GPU.
// Everything but this file is built only with the `cuda` build tag, which
// needs the CUDA toolkit and cuDNN (cuda.h, cublas_v2.h, cudnn.h) and a GPU
// driver; the default build of the module never compiles or links any of
// it. scripts/vet-cuda.sh type-checks the tagged build against stub
// headers on machines without them.
//
// The root package reaches it through Backend (internal/backend), registered by
// the root's backend_cuda.go: its ops keep device mirrors of their host
// buffers and run these kernels and cuBLAS on them, so the Gorgonia graph
// is the same on both backends. Device is usable on its own: Alloc, Upload,
// Download, SgemmStridedBatched and the typed kernel entry points in
// kernels.go.
package cuda
