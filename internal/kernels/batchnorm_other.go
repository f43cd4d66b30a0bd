//go:build !amd64

package kernels

// Never called: useAVX2 is false off amd64.

func bnSum16AVX2(s *float64, x *float32, n, ld int)                                                 {}
func bnSumSqDev16AVX2(s, mean *float64, x *float32, n, ld int)                                      {}
func bnSumDot16AVX2(sg, sgx *float64, gr, xh *float32, n, ld int)                                   {}
func bnSumProd16AVX2(sgx *float64, gr, xh *float32, n, ld int)                                      {}
func bnNormalize16AVX2(y, xhat, x *float32, n, ld int, mean, inv, gamma, beta *float64)             {}
func bnCenter16AVX2(o, gr, xh *float32, n, ld int, scale *float64, a float64, shift, tilt *float64) {}
func bnScale16AVX2(o, gr *float32, n, ld int, scale *float64, a float64)                            {}
