package kernels

import (
	"sync"
	"sync/atomic"
)

// This file is the package's matrix product: C = op(A)·op(B) + β·C on
// row-major float32 matrices, in the style of GotoBLAS/BLIS (Goto & van de
// Geijn, "Anatomy of high-performance matrix multiplication", ACM TOMS 2008):
// B is packed into kc×16 panels and A into 6×kc panels, both zero-padded,
// so that a 6×16 micro-kernel (Go assembly with AVX2/FMA on amd64, plain Go
// elsewhere) streams through contiguous memory. Transposes are absorbed by
// the packing. The result of every element is a sum in a fixed order, so it
// does not depend on the number of goroutines.

const (
	gemmMR = 6   // rows of the micro-kernel's tile
	gemmNR = 16  // columns of the micro-kernel's tile
	gemmKC = 256 // depth of a packed panel
	gemmMC = 96  // rows of A packed at a time (a multiple of gemmMR)
	gemmNC = 512 // columns of B packed at a time (a multiple of gemmNR)

	gemmWholeA = 576 // A with at most this many rows is packed once per depth panel
)

// gemmScratch holds a goroutine's packing buffers.
type gemmScratch struct {
	a, b  []float32
	tile  [gemmMR * gemmNR]float32
	dense denseB                    // the B source of Sgemm, kept here so it needs no allocation
	conv  im2colB                   // the B source of the convolution products
	plans map[im2colKey]*im2colPlan // offset tables of im2colB blocks
	off   []int                     // packB's row table
	runs  [][2]int                  // runs of consecutive columns in an im2colB panel

	aWhole     []float32 // all of A's rows for one depth panel (gemmWholeA)
	firstBlock int       // the row block of gemmMC rows gemmBlock starts its sweep at
	col        []float32 // ConvInputGrad's block of the im2col gradient
}

// bSource packs op(B)[pc:pc+kc, jc:jc+nc] into dst in panels of gemmNR
// columns: panel q holds row p at dst[q*kc*NR + p*NR + j], zero beyond nc.
type bSource interface {
	packB(s *gemmScratch, dst []float32, pc, kc, jc, nc int)
}

// denseB is a B matrix in memory (transposed if trans).
type denseB struct {
	b     []float32
	ldb   int
	trans bool
}

func (d *denseB) packB(s *gemmScratch, dst []float32, pc, kc, jc, nc int) {
	packB(s, dst, d.trans, d.b, d.ldb, pc, kc, jc, nc)
}

func (s *gemmScratch) bufs() (a, b []float32) {
	if s.a == nil {
		s.a = make([]float32, gemmMC*gemmKC)
		s.b = make([]float32, gemmKC*(gemmNC+gemmNR))
	}
	return s.a, s.b
}

// Sgemm computes C = op(A)·op(B) + beta·C, where op(A) is m×k, op(B) is k×n
// and C is m×n with row stride ldc; A is m×k with stride lda (k×m if transA),
// B is k×n with stride ldb (n×k if transB). beta must be 0 or 1. It runs on
// the calling goroutine; SgemmParallel spreads one product over the cores.
func Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	s := gemmPool.Get().(*gemmScratch)
	s.dense = denseB{b: b, ldb: ldb, trans: transB}
	gemmBlock(s, nil, transA, m, 0, n, k, a, lda, &s.dense, beta, nil, c, ldc)
	s.dense = denseB{}
	gemmPool.Put(s)
}

// gemmPool recycles packing buffers (620 kB each) between products.
var gemmPool = sync.Pool{New: func() any { return new(gemmScratch) }}

// SgemmParallel is Sgemm with the columns of C split between the workers in
// blocks of gemmNR, each block computed exactly as Sgemm would.
func SgemmParallel(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	nw := Workers()
	if nw == 1 || m*n*k < 1<<20 {
		Sgemm(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
		return
	}
	strips := (n + gemmNR - 1) / gemmNR
	per := (strips + nw - 1) / nw
	parts := (strips + per - 1) / per
	// A taller than gemmWholeA would be packed again by every worker, once
	// per column block. Instead the workers share one packing, made as they
	// go: each starts its sweep over A's row blocks at a different block,
	// packs the blocks no one has packed yet and reads those another worker
	// packed (lazyA), so the packing is split between them and overlaps the
	// products instead of running as a pass before them. The bits are those
	// of Sgemm: every C element sums the same products in the same order
	// (TestSgemmParallelSharedA).
	var pre *PackedA
	if m > gemmWholeA && parts > 1 {
		pre = sharedAPool.Get().(*PackedA)
		pre.resetLazy(transA, m, k, a, lda)
		defer func() {
			pre.lazy.on, pre.lazy.a = false, nil // keep the states' memory, not A
			sharedAPool.Put(pre)
		}()
	}
	ParallelFor(parts, func(_, p int) {
		s := gemmPool.Get().(*gemmScratch)
		j0 := p * per * gemmNR
		j1 := min(n, j0+per*gemmNR)
		s.dense = denseB{b: b, ldb: ldb, trans: transB}
		s.firstBlock = p * ceilDiv(m, gemmMC) / parts
		gemmBlock(s, pre, transA, m, j0, j1, k, a, lda, &s.dense, beta, nil, c, ldc)
		s.dense, s.firstBlock = denseB{}, 0
		gemmPool.Put(s)
	})
}

// sharedAPool recycles SgemmParallel's shared packings of A.
var sharedAPool = sync.Pool{New: func() any { return new(PackedA) }}

// lazyA is a PackedA packed on first use: op(A) (A with stride lda,
// transposed if trans) and one state per depth panel and row block of
// gemmMC rows, 0 while unpacked, 1 while a worker packs it, 2 once packed.
type lazyA struct {
	on     bool // gemmBlock packs p's blocks on first use
	a      []float32
	lda    int
	trans  bool
	blocks int // row blocks per depth panel
	state  []atomic.Uint32
}

// resetLazy sizes p for op(A) of m×k to be packed on first use by
// gemmBlock (ensure), reusing p's memory.
func (p *PackedA) resetLazy(transA bool, m, k int, a []float32, lda int) {
	p.reset(m, k)
	blocks := ceilDiv(m, gemmMC)
	n := blocks * ceilDiv(k, gemmKC) // gemmBlock's depth panels: ceilDiv(k, gemmKC) of them
	if cap(p.lazy.state) < n {
		p.lazy.state = make([]atomic.Uint32, n)
	}
	state := p.lazy.state[:n]
	for i := range state {
		state[i].Store(0)
	}
	p.lazy = lazyA{on: true, a: a, lda: lda, trans: transA, blocks: blocks, state: state}
}

// ensure makes sure that rows [ic, ic+mc) of depth panel q (columns
// [pc, pc+kc) of op(A)) are packed, packing them if no worker has begun
// to, or waiting for the worker that has. A worker never waits while it
// holds a block in state 1, so the wait always ends.
func (p *PackedA) ensure(q, ic, mc, pc, kc int) {
	st := &p.lazy.state[q*p.lazy.blocks+ic/gemmMC]
	if st.Load() == 2 {
		return
	}
	if st.CompareAndSwap(0, 1) {
		rows := ceilDiv(p.m, gemmMR) * gemmMR
		packA(p.data[rows*pc+ic*kc:], p.lazy.trans, p.lazy.a, p.lazy.lda, ic, mc, pc, kc)
		st.Store(2)
		return
	}
	for st.Load() != 2 {
		spinPause()
	}
}

// gemmBlock computes columns [j0, j1) of C = op(A)·B + beta·C, with B
// packed by src.
// A non-nil pre holds op(A) already packed (PackA), and then a is unused.
// A non-nil bias (one value per row of C) makes it C = bias + op(A)·B,
// whatever beta.
func gemmBlock(s *gemmScratch, pre *PackedA, transA bool, m, j0, j1, k int, a []float32, lda int, src bSource, beta float32, bias []float32, c []float32, ldc int) {
	if k == 0 {
		for i := 0; i < m; i++ {
			switch {
			case bias != nil:
				Fill(c[i*ldc+j0:i*ldc+j1], bias[i])
			case beta == 0:
				Zero(c[i*ldc+j0 : i*ldc+j1])
			}
		}
		return
	}
	pa, pb := s.bufs()
	// Split k and the columns into equal panels no larger than the buffers,
	// so that no panel is a thin remainder.
	kstep := ceilDiv(k, ceilDiv(k, gemmKC))
	nstep := ceilDiv(j1-j0, ceilDiv(j1-j0, gemmNC))
	nstep = ceilDiv(nstep, gemmNR) * gemmNR
	// Depth panels outermost: every column block then reuses one packing of
	// A's panel when A is small enough to pack whole (the convolutions' A,
	// at most 288 rows). Each C entry still sums its depth panels in order,
	// so the result does not depend on the loop order.
	whole := m <= gemmWholeA && pre == nil
	if whole && cap(s.aWhole) < ceilDiv(m, gemmMR)*gemmMR*kstep {
		s.aWhole = make([]float32, ceilDiv(m, gemmMR)*gemmMR*kstep)
	}
	blocks := ceilDiv(m, gemmMC)
	for pc := 0; pc < k; pc += kstep {
		kc := min(kstep, k-pc)
		var aPanel []float32 // op(A)[:, pc:pc+kc], packed
		switch {
		case pre != nil:
			aPanel = pre.data[ceilDiv(m, gemmMR)*gemmMR*pc:]
		case whole:
			packA(s.aWhole, transA, a, lda, 0, m, pc, kc)
			aPanel = s.aWhole
		}
		for jc := j0; jc < j1; jc += nstep {
			nc := min(nstep, j1-jc)
			src.packB(s, pb, pc, kc, jc, nc)
			for t := range blocks {
				ic := (s.firstBlock + t) % blocks * gemmMC
				mc := min(gemmMC, m-ic)
				ap := pa
				if aPanel != nil {
					if pre != nil && pre.lazy.on {
						pre.ensure(pc/kstep, ic, mc, pc, kc)
					}
					ap = aPanel[(ic/gemmMR)*kc*gemmMR:]
				} else {
					packA(pa, transA, a, lda, ic, mc, pc, kc)
				}
				// With beta = 0 or a bias, the first depth panel overwrites C
				// instead of adding to zeros or to the bias.
				var rowBias []float32
				if bias != nil && pc == 0 {
					rowBias = bias[ic : ic+mc]
				}
				macroKernel(s, mc, nc, kc, ap, pb, c[ic*ldc+jc:], ldc, (beta == 0 || bias != nil) && pc == 0, rowBias)
			}
		}
	}
}

// PackedA is the A operand of many products packed once: a product's
// packing of A is a copy into micro-kernel order, the same for every B, so
// a convolution that multiplies its filters with every image of a batch
// packs them once per batch instead of once per image.
type PackedA struct {
	m, k int
	data []float32
	lazy lazyA // set while SgemmParallel's workers pack it as they go
}

// PackA packs op(A), m×k (A is m×k with stride lda, or k×m if transA),
// into p, reusing p's memory. The products that take p compute exactly
// what the same product with A unpacked computes.
func PackA(p *PackedA, transA bool, m, k int, a []float32, lda int) {
	p.reset(m, k)
	p.packRows(transA, a, lda, 0, m)
}

// reset sizes p for op(A) of m×k, reusing its memory.
func (p *PackedA) reset(m, k int) {
	n := ceilDiv(m, gemmMR) * gemmMR * k
	if cap(p.data) < n {
		p.data = make([]float32, n)
	}
	p.m, p.k, p.data = m, k, p.data[:n]
}

// packRows packs rows [ic, ic+mc) of op(A) (ic a multiple of gemmMR) into
// their panels of every depth panel of gemmBlock.
func (p *PackedA) packRows(transA bool, a []float32, lda, ic, mc int) {
	rows := ceilDiv(p.m, gemmMR) * gemmMR
	kstep := ceilDiv(p.k, ceilDiv(p.k, gemmKC)) // gemmBlock's depth panels
	for pc := 0; pc < p.k; pc += kstep {
		kc := min(kstep, p.k-pc)
		packA(p.data[rows*pc+ic*kc:], transA, a, lda, ic, mc, pc, kc)
	}
}

// packB copies op(B)[pc:pc+kc, jc:jc+nc] into panels of gemmNR columns:
// panel q holds rows p at dst[q*kc*NR + p*NR + j], zero beyond nc.
func packB(s *gemmScratch, dst []float32, transB bool, b []float32, ldb, pc, kc, jc, nc int) {
	var rows []int // 0, 1, …, kc−1: the transposed fast path's row offsets
	if transB && useAVX2 && kc >= 8 {
		if cap(s.off) < kc {
			s.off = make([]int, kc)
		}
		rows = s.off[:kc]
		for p := range rows {
			rows[p] = p
		}
	}
	for q := 0; q*gemmNR < nc; q++ {
		panel := dst[q*kc*gemmNR : (q+1)*kc*gemmNR]
		cols := min(gemmNR, nc-q*gemmNR)
		j := jc + q*gemmNR
		if rows != nil && cols == gemmNR && (j+gemmNR)*ldb < 1<<31 {
			// Row p, column t is B[j+t][pc+p]: sixteen rows of B read
			// eight floats at a time and transposed (gatherT16).
			var idx [gemmNR]int
			for t := range idx {
				idx[t] = (j+t)*ldb + pc
			}
			gatherT16(panel, b, rows, &idx)
			continue
		}
		if !transB && cols == gemmNR && useAVX2 {
			_ = b[(pc+kc-1)*ldb+j+gemmNR-1]
			copyRows16AVX2(&panel[0], &b[pc*ldb+j], kc, ldb)
			continue
		}
		if transB { // op(B)[p][j] = B[j][p]: read each row of B contiguously
			if cols < gemmNR {
				Zero(panel)
			}
			for t := 0; t < cols; t++ {
				src := b[(j+t)*ldb+pc : (j+t)*ldb+pc+kc]
				for p, v := range src {
					panel[p*gemmNR+t] = v
				}
			}
			continue
		}
		for p := 0; p < kc; p++ {
			row := panel[p*gemmNR : (p+1)*gemmNR]
			copy(row[:cols], b[(pc+p)*ldb+j:(pc+p)*ldb+j+cols])
			for t := cols; t < gemmNR; t++ {
				row[t] = 0
			}
		}
	}
}

// packA copies op(A)[ic:ic+mc, pc:pc+kc] into panels of gemmMR rows: panel
// r holds column p at dst[r*kc*MR + p*MR + i], zero beyond mc.
func packA(dst []float32, transA bool, a []float32, lda, ic, mc, pc, kc int) {
	for r := 0; r*gemmMR < mc; r++ {
		panel := dst[r*kc*gemmMR : (r+1)*kc*gemmMR]
		rows := min(gemmMR, mc-r*gemmMR)
		i0 := ic + r*gemmMR
		if transA { // op(A)[i][p] = A[p][i]: read each row of A contiguously
			if useAVX2 && rows == gemmMR {
				_ = a[(pc+kc-1)*lda+i0+gemmMR-1]
				packAT6SSE(&panel[0], &a[pc*lda+i0], lda, kc)
				continue
			}
			for p := 0; p < kc; p++ {
				dst := panel[p*gemmMR : (p+1)*gemmMR]
				copy(dst[:rows], a[(pc+p)*lda+i0:(pc+p)*lda+i0+rows])
				for i := rows; i < gemmMR; i++ {
					dst[i] = 0
				}
			}
			continue
		}
		p0 := 0
		if useAVX2 && rows == gemmMR && kc > 8 {
			// Blocks of eight columns by transposes, leaving at least one
			// column to the loop below, which overwrites the two floats
			// the last block's stores run over (vec_amd64.s).
			blocks := (kc - 1) / 8
			_ = a[(i0+gemmMR-1)*lda+pc+8*blocks-1]
			packA6AVX2(&panel[0], &a[i0*lda+pc], lda, blocks)
			p0 = 8 * blocks
		}
		for i := 0; i < gemmMR; i++ {
			if i >= rows {
				for p := 0; p < kc; p++ {
					panel[p*gemmMR+i] = 0
				}
				continue
			}
			src := a[(i0+i)*lda+pc : (i0+i)*lda+pc+kc]
			for p := p0; p < kc; p++ {
				panel[p*gemmMR+i] = src[p]
			}
		}
	}
}

// macroKernel multiplies a packed mc×kc block of A by a packed kc×nc block
// of B into C, tile by tile; edge tiles go through a scratch tile. With set,
// C is overwritten (C = A·B + 0, as if zeroed first) instead of added to.
//
// A non-nil bias (with set) adds bias[i] to row i, as if C had been filled
// with it and the product added.
func macroKernel(s *gemmScratch, mc, nc, kc int, pa, pb []float32, c []float32, ldc int, set bool, bias []float32) {
	r512 := 0 // rows of the whole 16-column panels done by the AVX-512 kernels
	if useAVX512 && kc > 0 {
		r512 = macroKernel512(mc, nc, kc, pa, pb, c, ldc, set, bias)
	}
	for jr := 0; jr < nc; jr += gemmNR {
		bp := pb[(jr/gemmNR)*kc*gemmNR:]
		cols := min(gemmNR, nc-jr)
		ir0 := 0
		if cols == gemmNR {
			ir0 = r512
		}
		for ir := ir0; ir < mc; ir += gemmMR {
			ap := pa[(ir/gemmMR)*kc*gemmMR:]
			rows := min(gemmMR, mc-ir)
			if rows == gemmMR && cols == gemmNR {
				if bias != nil {
					kernel6x16Bias(kc, ap, bp, c[ir*ldc+jr:], ldc, bias[ir:ir+gemmMR])
				} else if set {
					kernel6x16Set(kc, ap, bp, c[ir*ldc+jr:], ldc)
				} else {
					kernel6x16(kc, ap, bp, c[ir*ldc+jr:], ldc)
				}
				continue
			}
			t := s.tile[:]
			Zero(t)
			if rows <= 4 {
				kernel4x16(kc, ap, bp, t, gemmNR)
			} else {
				kernel6x16(kc, ap, bp, t, gemmNR)
			}
			for i := 0; i < rows; i++ {
				dst := c[(ir+i)*ldc+jr : (ir+i)*ldc+jr+cols]
				src := t[i*gemmNR : i*gemmNR+cols]
				if bias != nil {
					b := bias[ir+i]
					for j := range dst {
						dst[j] = b + src[j]
					}
					continue
				}
				if set {
					// t = A·B + 0 is never −0, so +0 + t, what zeroing and
					// adding gave, is t itself.
					copy(dst, src)
					continue
				}
				for j := range dst {
					dst[j] += src[j]
				}
			}
		}
	}
}

// macroKernel512 is macroKernel's AVX-512 part: the whole 16-column panels
// of the first 24·⌊mc/24⌋ rows (and 12 more where mc leaves them), by 24×16
// and 12×16 tiles, row block by row block, so that one block of A (24·kc
// floats) is reused from L1 across every panel of B. It returns the number
// of rows done; macroKernel does the rest with the 6×16 kernels.
func macroKernel512(mc, nc, kc int, pa, pb []float32, c []float32, ldc int, set bool, bias []float32) int {
	ir := 0
	for mc-ir >= 12 {
		r := 12
		if mc-ir >= 24 {
			r = 24
		}
		ap := pa[(ir/gemmMR)*kc*gemmMR:]
		var rb []float32
		if bias != nil {
			rb = bias[ir : ir+r]
		}
		for jr := 0; jr+gemmNR <= nc; jr += gemmNR {
			kernelRows512(r, kc, ap, pb[(jr/gemmNR)*kc*gemmNR:], c[ir*ldc+jr:], ldc, set, rb)
		}
		ir += r
	}
	return ir
}

// fillTile sets row i of a 6×16 tile of c (row stride ldc) to bias[i].
func fillTile(c []float32, ldc int, bias []float32) {
	for i := 0; i < gemmMR; i++ {
		Fill(c[i*ldc:i*ldc+gemmNR], bias[i])
	}
}

// zeroTile zeroes a 6×16 tile of c (row stride ldc).
func zeroTile(c []float32, ldc int) {
	for i := 0; i < gemmMR; i++ {
		Zero(c[i*ldc : i*ldc+gemmNR])
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// kernel6x16Go is the portable micro-kernel: C[0:6][0:16] += A·B for packed
// panels, accumulating each element over p in order.
func kernel6x16Go(k int, a, b, c []float32, ldc int) {
	var acc [gemmMR * gemmNR]float32
	for p := 0; p < k; p++ {
		bp := b[p*gemmNR : (p+1)*gemmNR]
		ap := a[p*gemmMR : (p+1)*gemmMR]
		for i, av := range ap {
			row := acc[i*gemmNR : (i+1)*gemmNR]
			for j, bv := range bp {
				row[j] += av * bv
			}
		}
	}
	for i := 0; i < gemmMR; i++ {
		dst := c[i*ldc : i*ldc+gemmNR]
		for j := range dst {
			dst[j] += acc[i*gemmNR+j]
		}
	}
}
