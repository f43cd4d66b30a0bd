package ops

import "sync/atomic"

// productFLOPs counts the floating-point operations of the matrix products
// that the convolution and dense ops (and their gradients) have run, two
// per multiply-add: a step's useful work, against which its time is
// measured (BenchmarkEfficiency).
var productFLOPs atomic.Uint64

// countFLOPs adds the products of an m×k by k×n matrix product, count times.
func countFLOPs(count, m, n, k int) { productFLOPs.Add(uint64(2 * count * m * n * k)) }

// ProductFLOPs returns the floating-point operations of every matrix product
// the package's ops have run in this process (two per multiply-add).
func ProductFLOPs() uint64 { return productFLOPs.Load() }
