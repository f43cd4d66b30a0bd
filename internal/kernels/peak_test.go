package kernels

import (
	"fmt"
	"testing"
)

// BenchmarkSgemm1024 times the 1024³ product on one goroutine (par=false)
// and on all cores (par=true) and reports GFLOP/s: the figure to set beside
// OpenBLAS's (pytorch_vat.py --sgemm 1024) on the same machine and threads.
//
//	go test -run '^$' -bench Sgemm1024 ./internal/kernels
func BenchmarkSgemm1024(b *testing.B) {
	for _, par := range []bool{false, true} {
		b.Run(fmt.Sprintf("par=%v", par), func(b *testing.B) {
			const d = 1024
			a, bm, c := make([]float32, d*d), make([]float32, d*d), make([]float32, d*d)
			for i := range a {
				a[i], bm[i] = float32(i%7)*0.1, float32(i%5)*0.1
			}
			for i := 0; i < b.N; i++ {
				if par {
					SgemmParallel(false, false, d, d, d, a, d, bm, d, 0, c, d)
				} else {
					Sgemm(false, false, d, d, d, a, d, bm, d, 0, c, d)
				}
			}
			b.ReportMetric(2*d*d*d*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemmDense times the products of a dense layer of 784 → 1200
// inputs on a batch of 250 (the semi-supervised step's unlabeled batch):
// forward X·W, input gradient dY·Wᵀ and weight gradient Xᵀ·dY, on all
// cores, in GFLOP/s.
//
//	go test -run '^$' -bench SgemmDense ./internal/kernels
func BenchmarkSgemmDense(b *testing.B) {
	const m, k, n = 250, 784, 1200
	x, w, dy := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	for i := range w {
		w[i] = float32(i%7) * 0.1
	}
	for i := range x {
		x[i] = float32(i%5) * 0.1
	}
	for i := range dy {
		dy[i] = float32(i%3) * 0.1
	}
	y, dx, dw := make([]float32, m*n), make([]float32, m*k), make([]float32, k*n)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"forward", func() { SgemmParallel(false, false, m, n, k, x, k, w, n, 0, y, n) }},
		{"input-grad", func() { SgemmParallel(false, true, m, k, n, dy, n, w, n, 0, dx, k) }},
		{"weight-grad", func() { SgemmParallel(true, false, k, n, m, x, k, dy, n, 0, dw, n) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				tc.f()
			}
			b.ReportMetric(2*m*n*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
