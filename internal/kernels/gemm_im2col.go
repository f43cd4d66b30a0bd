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

// im2colPlan holds the offset tables of one block of an im2col matrix:
// x[rowOff[p] + colOff[t]] is the entry at row pc+p and column jc+t. They
// depend on the shapes and the block only, so each goroutine computes them
// once (divisions included) and reuses them for every image of a batch.
type im2colPlan struct {
	rowOff, colOff []int
}

type im2colKey struct {
	c, h, w, kh, kw int
	trans           bool
	pc, kc, jc, nc  int
}

// plan returns the offset tables of block (pc, kc, jc, nc) of g, from the
// goroutine's cache when it has them.
func (s *gemmScratch) plan(g *im2colB, pc, kc, jc, nc int) *im2colPlan {
	key := im2colKey{g.c, g.h, g.w, g.kh, g.kw, g.trans, pc, kc, jc, nc}
	if p, ok := s.plans[key]; ok {
		return p
	}
	if s.plans == nil || len(s.plans) >= 256 { // many shapes: start over
		s.plans = make(map[im2colKey]*im2colPlan)
	}
	p := &im2colPlan{rowOff: make([]int, kc), colOff: make([]int, nc)}
	// The entry is x[col(t) + row(p)] either way round; transposed, rows
	// are output pixels and columns kernel taps.
	for i := range p.rowOff {
		if g.trans {
			p.rowOff[i] = g.pixelOffset(pc + i)
		} else {
			p.rowOff[i] = g.rowOffset(pc + i)
		}
	}
	for t := range p.colOff {
		if g.trans {
			p.colOff[t] = g.rowOffset(jc + t)
		} else {
			p.colOff[t] = g.pixelOffset(jc + t)
		}
	}
	s.plans[key] = p
	return p
}

func (g *im2colB) packB(s *gemmScratch, dst []float32, pc, kc, jc, nc int) {
	plan := s.plan(g, pc, kc, jc, nc)
	rowOff := plan.rowOff
	x := g.x
	for q := 0; q*gemmNR < nc; q++ {
		panel := dst[q*kc*gemmNR : (q+1)*kc*gemmNR]
		cols := min(gemmNR, nc-q*gemmNR)
		if cols < gemmNR {
			Zero(panel)
		}
		colOff := plan.colOff[q*gemmNR : q*gemmNR+cols]
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
			if g.trans { // rows are output pixels, often consecutive
				gatherT16(panel, x, rowOff, (*[gemmNR]int)(colOff))
			} else {
				gatherIdx16(panel, x, rowOff, (*[gemmNR]int)(colOff))
			}
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
	gemmBlock(s, nil, transA, m, 0, n, k, a, lda, &s.conv, beta, nil, c, ldc)
	s.conv = im2colB{}
	gemmPool.Put(s)
}

// ConvGemmBias is ConvGemm with op(A) packed by PackA, for C = bias +
// op(A)·B, bias holding one value per row of C (a convolution's output
// channels): bit-identical to filling row i of C with bias[i] and adding
// the product (beta 1), without the separate pass over C.
func ConvGemmBias(a *PackedA, n int, x []float32, c_, h, w, kh, kw int, bias, c []float32, ldc int) {
	s := gemmPool.Get().(*gemmScratch)
	s.conv = im2colB{x: x, c: c_, h: h, w: w, kh: kh, kw: kw}
	gemmBlock(s, a, false, a.m, 0, n, a.k, nil, 0, &s.conv, 1, bias[:a.m], c, ldc)
	s.conv = im2colB{}
	gemmPool.Put(s)
}
