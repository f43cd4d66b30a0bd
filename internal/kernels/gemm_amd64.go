package kernels

import "golang.org/x/sys/cpu"

// supportedKernels lists the kernel sets this CPU can run, best last: AVX2
// with FMA, and AVX-512F where the CPU and the operating system support it
// (x/sys/cpu checks both).
func supportedKernels() []kernelSet {
	k := []kernelSet{kernelGo}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		k = append(k, kernelAVX2)
		if cpu.X86.HasAVX512F {
			k = append(k, kernelAVX512)
		}
	}
	return k
}

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

//go:noescape
func sgemmKernel24x16AVX512(k int, a, b, c *float32, ldc, pstride, mode int, bias *float32)

//go:noescape
func sgemmKernel12x16AVX512(k int, a, b, c *float32, ldc, pstride, mode int, bias *float32)

// The store modes of the AVX-512 kernels.
const (
	storeAdd  = 0 // C += tile
	storeSet  = 1 // C = tile + 0
	storeBias = 2 // C = tile + bias[i]
)

// kernelRows512 multiplies rows/6 consecutive packed A panels (rows is 24
// or 12) by one packed B panel into a rows×16 tile of c, bit-identical to
// kernel6x16, kernel6x16Set or kernel6x16Bias on each six-row tile.
func kernelRows512(rows, k int, a, b, c []float32, ldc int, set bool, bias []float32) {
	mode, bp := storeAdd, (*float32)(nil)
	switch {
	case bias != nil:
		_ = bias[rows-1]
		mode, bp = storeBias, &bias[0]
	case set:
		mode = storeSet
	}
	_ = a[(rows/gemmMR)*k*gemmMR-1]
	_ = b[k*gemmNR-1]
	_ = c[(rows-1)*ldc+gemmNR-1]
	if rows == 24 {
		sgemmKernel24x16AVX512(k, &a[0], &b[0], &c[0], ldc, k*gemmMR, mode, bp)
	} else {
		sgemmKernel12x16AVX512(k, &a[0], &b[0], &c[0], ldc, k*gemmMR, mode, bp)
	}
}
