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
