package kernels

// ConvInputGrad computes one image's input gradient of a "valid", stride-1
// convolution: gx = col2im(Wᵀ·dY), where a is Wᵀ packed by PackA (m =
// C·KH·KW rows, one per kernel tap, and k = F columns), gy is the image's
// F×(OH·OW) output gradient, and gx, C×H×W, is overwritten. col2im adds
// every entry of the (C·KH·KW)×(OH·OW) product back onto the pixel im2col
// took it from.
//
// The product is never stored whole (it is 660 kB per image for the MNIST
// network's second convolution, larger than a core's L2 cache): the rows of
// one micro-kernel tile at a time (six taps, all output pixels, 14 kB) are
// computed into a buffer that stays in L1 and added onto gx at once. The
// taps are visited in order, so every pixel of gx receives its terms in the
// same order, from the same products, as with the whole matrix stored: the
// result is bit-identical to Sgemm followed by col2im, which is what it does
// when the filters are too many for one packed panel (F > 256).
func ConvInputGrad(a *PackedA, gy, gx []float32, c_, h, w, kh, kw int) {
	s := gemmPool.Get().(*gemmScratch)
	defer gemmPool.Put(s)
	oh, ow := h-kh+1, w-kw+1
	m, k, n := a.m, a.k, oh*ow
	gx = gx[:c_*h*w]
	Zero(gx)
	_, pb := s.bufs()
	if k > gemmKC || k*ceilDiv(n, gemmNR)*gemmNR > len(pb) {
		if cap(s.col) < m*n {
			s.col = make([]float32, m*n)
		}
		col := s.col[:m*n]
		s.dense = denseB{b: gy, ldb: n}
		gemmBlock(s, a, false, m, 0, n, k, nil, 0, &s.dense, 0, nil, col, n)
		s.dense = denseB{}
		col2imRows(gx, col, 0, m, c_, h, w, kh, kw)
		return
	}
	packB(s, pb, false, gy, n, 0, k, 0, n)
	// Six taps at a time for the 6×16 kernel, col2imRows512 for the
	// AVX-512 one, whose tiles are taller. Any block of consecutive taps
	// gives the same bits.
	step := gemmMR
	if useAVX512 {
		step = col2imRows512
	}
	if cap(s.col) < step*n {
		s.col = make([]float32, step*n)
	}
	for ir := 0; ir < m; ir += step {
		rows := min(step, m-ir)
		buf := s.col[:rows*n]
		macroKernel(s, rows, n, k, a.data[(ir/gemmMR)*k*gemmMR:], pb, buf, n, true, nil)
		col2imRows(gx, buf, ir, rows, c_, h, w, kh, kw)
	}
}

// col2imRows512 is ConvInputGrad's block of taps with the AVX-512 kernel.
const col2imRows512 = 12

// col2imRows adds rows [r0, r0+rows) of an im2col matrix, held in col (row
// r0 first), back onto the pixels of x they were taken from, one tap after
// the other.
func col2imRows(x, col []float32, r0, rows, c_, h, w, kh, kw int) {
	oh, ow := h-kh+1, w-kw+1
	for r := r0; r < r0+rows; r++ {
		q := r % kw
		p := (r / kw) % kh
		ci := r / (kw * kh)
		AddRows(x[(ci*h+p)*w+q:], col[(r-r0)*oh*ow:(r-r0+1)*oh*ow], oh, ow, w, ow)
	}
}
