//go:build !amd64

package kernels

func supportedKernels() []kernelSet { return []kernelSet{kernelGo} }

func kernel6x16(k int, a, b, c []float32, ldc int) { kernel6x16Go(k, a, b, c, ldc) }

func kernel4x16(k int, a, b, c []float32, ldc int) { kernel6x16Go(k, a, b, c, ldc) }

func kernel6x16Set(k int, a, b, c []float32, ldc int) {
	zeroTile(c, ldc)
	kernel6x16Go(k, a, b, c, ldc)
}

func kernel6x16Bias(k int, a, b, c []float32, ldc int, bias []float32) {
	fillTile(c, ldc, bias)
	kernel6x16Go(k, a, b, c, ldc)
}

func kernelRows512(rows, k int, a, b, c []float32, ldc int, set bool, bias []float32) {
	panic("kernels: no AVX-512 kernel off amd64")
}
