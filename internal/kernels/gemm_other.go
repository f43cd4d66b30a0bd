//go:build !amd64

package kernels

var useAsmKernel = false

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
