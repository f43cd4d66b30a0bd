package kernels

// The AVX2 loops of batchnorm.go (batchnorm_amd64.s), for one block of
// BNBlock features of n rows with row stride ld; every float64 pointer is
// to BNBlock values.

//go:noescape
func bnSum16AVX2(s *float64, x *float32, n, ld int)

//go:noescape
func bnSumSqDev16AVX2(s, mean *float64, x *float32, n, ld int)

//go:noescape
func bnSumDot16AVX2(sg, sgx *float64, gr, xh *float32, n, ld int)

//go:noescape
func bnSumProd16AVX2(sgx *float64, gr, xh *float32, n, ld int)

//go:noescape
func bnNormalize16AVX2(y, xhat, x *float32, n, ld int, mean, inv, gamma, beta *float64)

//go:noescape
func bnCenter16AVX2(o, gr, xh *float32, n, ld int, scale *float64, a float64, shift, tilt *float64)

//go:noescape
func bnScale16AVX2(o, gr *float32, n, ld int, scale *float64, a float64)
