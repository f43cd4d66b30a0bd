package kernels

import "golang.org/x/sys/cpu"

// useAsmKernel selects the AVX2/FMA micro-kernel where the CPU has both.
var useAsmKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func sgemmKernel6x16(k int, a, b, c *float32, ldc int)

// kernel6x16 adds the product of a packed 6×k panel of A and a packed k×16
// panel of B to the 6×16 tile of c (row stride ldc).
func kernel6x16(k int, a, b, c []float32, ldc int) {
	if useAsmKernel && k > 0 {
		_ = c[5*ldc+15] // the kernel touches rows 0-5, columns 0-15
		sgemmKernel6x16(k, &a[0], &b[0], &c[0], ldc)
		return
	}
	kernel6x16Go(k, a, b, c, ldc)
}

//go:noescape
func sgemmKernel4x16(k int, a, b, c *float32, ldc int)

// kernel4x16 is kernel6x16 for rows 0-3 of the tile (a is still a six-row
// panel), for edge tiles of four rows or fewer; c must still hold six rows,
// which the portable fallback writes.
func kernel4x16(k int, a, b, c []float32, ldc int) {
	if useAsmKernel && k > 0 {
		_ = c[3*ldc+15]
		sgemmKernel4x16(k, &a[0], &b[0], &c[0], ldc)
		return
	}
	kernel6x16Go(k, a, b, c, ldc)
}

//go:noescape
func sgemmKernel6x16Set(k int, a, b, c *float32, ldc int)

// kernel6x16Set is kernel6x16 for a tile that the product overwrites:
// c = A·B + 0, bit-identical to zeroing c and calling kernel6x16.
func kernel6x16Set(k int, a, b, c []float32, ldc int) {
	if useAsmKernel {
		_ = c[5*ldc+15]
		sgemmKernel6x16Set(k, &a[0], &b[0], &c[0], ldc)
		return
	}
	zeroTile(c, ldc)
	kernel6x16Go(k, a, b, c, ldc)
}

//go:noescape
func sgemmKernel6x16Bias(k int, a, b, c *float32, ldc int, bias *float32)

// kernel6x16Bias is kernel6x16Set plus bias[i] on row i: bit-identical to
// filling row i of c with bias[i] and calling kernel6x16.
func kernel6x16Bias(k int, a, b, c []float32, ldc int, bias []float32) {
	if useAsmKernel {
		_ = c[5*ldc+15]
		_ = bias[5]
		sgemmKernel6x16Bias(k, &a[0], &b[0], &c[0], ldc, &bias[0])
		return
	}
	fillTile(c, ldc, bias)
	kernel6x16Go(k, a, b, c, ldc)
}
