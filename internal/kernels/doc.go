// Package kernels holds the CPU compute kernels of github.com/org/vat:
// the float32 matrix product (gemm.go, with an AVX2/FMA micro-kernel in Go
// assembly chosen at run time and a pure-Go fallback), the convolution
// products that gather the im2col matrix while packing (gemm_im2col.go),
// batch normalization's per-channel sums and maps (batchnorm.go, AVX2 for
// whole blocks of 16 features), and the worker pool they and the ops share (parallel.go). It knows nothing of
// Gorgonia or of the ops: the root package's ops call it.
//
// Every result is a sum in a fixed order, so it does not depend on the
// number of goroutines: a seed gives the same bits on one kernel whatever
// GOMAXPROCS is.
package kernels
