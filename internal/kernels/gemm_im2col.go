package kernels

// im2colB is the im2col matrix of one C×H×W image as the B operand of a
// product, never materialized: packing gathers its entries straight from the
// image. Not transposed, it is the (C·KH·KW)×(OH·OW) matrix
// col[(c·KH+p)·KW+q][i·OW+j] = x[c][i+p][j+q] (the convolution's forward
// product W·col); transposed, its (OH·OW)×(C·KH·KW) transpose (the filter
// gradient's dY·colᵀ).
type im2colB struct {
	x               []float32
	c, h, w, kh, kw int
	trans           bool
}

// pixelOffset returns the offset in a channel of the top-left input pixel
// of output position pix, and rowOffset that of row r's kernel tap.
func (g *im2colB) pixelOffset(pix int) int {
	ow := g.w - g.kw + 1
	return (pix/ow)*g.w + pix%ow
}

func (g *im2colB) rowOffset(r int) int {
	q := r % g.kw
	p := (r / g.kw) % g.kh
	ci := r / (g.kw * g.kh)
	return ci*g.h*g.w + p*g.w + q
}

func (g *im2colB) packB(s *gemmScratch, dst []float32, pc, kc, jc, nc int) {
	if cap(s.off) < gemmNR+kc {
		s.off = make([]int, gemmNR+kc)
	}
	// col(t): offset of column j+t; row(p): offset of row pc+p. The entry is
	// x[col(t) + row(p)] either way round. The row table serves every panel.
	colOff, rowOff := s.off[:gemmNR], s.off[gemmNR:gemmNR+kc]
	for p := range rowOff {
		if g.trans {
			rowOff[p] = g.pixelOffset(pc + p)
		} else {
			rowOff[p] = g.rowOffset(pc + p)
		}
	}
	x := g.x
	for q := 0; q*gemmNR < nc; q++ {
		panel := dst[q*kc*gemmNR : (q+1)*kc*gemmNR]
		cols := min(gemmNR, nc-q*gemmNR)
		j := jc + q*gemmNR
		if cols < gemmNR {
			Zero(panel)
		}
		colOff := colOff[:cols]
		for t := range colOff {
			if g.trans {
				colOff[t] = g.rowOffset(j + t)
			} else {
				colOff[t] = g.pixelOffset(j + t)
			}
		}
		// Columns whose offsets are consecutive read consecutive pixels: in
		// the forward product, output positions along a row (a panel's 16
		// columns span one or two rows), so each panel row is one or two
		// copies. The filter gradient's columns are kernel taps, in runs of
		// KW: too short for copies to pay.
		runs := s.runs[:0]
		for t := 0; t < cols; {
			u := t + 1
			for u < cols && colOff[u] == colOff[u-1]+1 {
				u++
			}
			runs = append(runs, [2]int{t, u})
			t = u
		}
		s.runs = runs
		switch {
		case len(runs) == 1 && cols == gemmNR:
			// One run of a whole panel row: a 64-byte copy per row.
			gather16(panel, x, rowOff, colOff[0])
		case len(runs) == 2 && cols == gemmNR:
			// The end of one image row and the start of the next: two
			// loads and a blend per row (vec.go).
			l := runs[1][0]
			gather16Split(panel, x, rowOff, colOff[0], colOff[l], l)
		case len(runs) <= cols/4:
			for p, ro := range rowOff {
				row := panel[p*gemmNR : p*gemmNR+cols]
				for _, r := range runs {
					o := ro + colOff[r[0]]
					copy(row[r[0]:r[1]], x[o:o+r[1]-r[0]])
				}
			}
		case cols == gemmNR:
			// Scattered columns (the filter gradient's kernel taps): one
			// indexed gather per half row.
			gatherIdx16(panel, x, rowOff, (*[gemmNR]int)(colOff))
		default:
			for p, ro := range rowOff {
				row := panel[p*gemmNR : p*gemmNR+cols]
				for t, co := range colOff {
					row[t] = x[ro+co]
				}
			}
		}
	}
}

// ConvGemm computes C = op(A)·B + beta·C where B is the im2col matrix of
// the image x (transposed if transB), on the calling goroutine.
func ConvGemm(transA, transB bool, m, n, k int, a []float32, lda int, x []float32, c_, h, w, kh, kw int, beta float32, c []float32, ldc int) {
	s := gemmPool.Get().(*gemmScratch)
	s.conv = im2colB{x: x, c: c_, h: h, w: w, kh: kh, kw: kw, trans: transB}
	gemmBlock(s, nil, transA, m, 0, n, k, a, lda, &s.conv, beta, c, ldc)
	s.conv = im2colB{}
	gemmPool.Put(s)
}

// ConvGemmPacked is ConvGemm with op(A) packed by PackA.
func ConvGemmPacked(a *PackedA, transB bool, n int, x []float32, c_, h, w, kh, kw int, beta float32, c []float32, ldc int) {
	s := gemmPool.Get().(*gemmScratch)
	s.conv = im2colB{x: x, c: c_, h: h, w: w, kh: kh, kw: kw, trans: transB}
	gemmBlock(s, a, false, a.m, 0, n, a.k, nil, 0, &s.conv, beta, c, ldc)
	s.conv = im2colB{}
	gemmPool.Put(s)
}
