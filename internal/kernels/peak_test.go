package kernels

import (
	"fmt"
	"testing"
	"time"
)

// peerGroup is the number of 1024³ products in one timed group of
// pytorch_vat.py --sgemm 1024 (int(2e10 / (2·1024³))).
const peerGroup = 9

// BenchmarkSgemm1024 times the 1024³ product on one goroutine (par=false)
// and on all cores (par=true) and reports GFLOP/s: the figure to set beside
// OpenBLAS's (pytorch_vat.py --sgemm 1024) on the same machine and threads.
//
//	go test -run '^$' -bench Sgemm1024 -benchtime 45x ./internal/kernels
func BenchmarkSgemm1024(b *testing.B) {
	for _, par := range []bool{false, true} {
		b.Run(fmt.Sprintf("par=%v", par), func(b *testing.B) {
			const d = 1024
			a, bm, c := make([]float32, d*d), make([]float32, d*d), make([]float32, d*d)
			for i := range a {
				a[i], bm[i] = float32(i%7)*0.1, float32(i%5)*0.1
			}
			// Besides the mean, the best mean of a group of peerGroup
			// consecutive products: the statistic of pytorch_vat.py --sgemm
			// (the best of five groups of about nine), so that the two
			// figures compare like with like (run -benchtime 45x or more).
			best := 0.0
			t0, done := time.Now(), 0
			for i := 0; i < b.N; i++ {
				if par {
					SgemmParallel(false, false, d, d, d, a, d, bm, d, 0, c, d)
				} else {
					Sgemm(false, false, d, d, d, a, d, bm, d, 0, c, d)
				}
				if done++; done == peerGroup {
					best = max(best, 2*d*d*d*float64(done)/time.Since(t0).Seconds()/1e9)
					t0, done = time.Now(), 0
				}
			}
			b.ReportMetric(2*d*d*d*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			if best > 0 {
				b.ReportMetric(best, "best-GFLOP/s")
			}
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
