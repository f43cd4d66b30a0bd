package kernels

import "math"

// Elementwise loops of the training step (ReLU, its gradient mask, the
// adds of col2im, fills) and the im2col row gathers. On amd64 with AVX2
// they run eight floats per instruction (vec_amd64.s); the portable loops
// below are the definition, and both give bit-identical results: each
// element sees the same IEEE operation, or a copy.

// AddTo sets dst[i] += src[i] for i < len(dst); src must be at least as
// long.
func AddTo(dst, src []float32) {
	src = src[:len(dst)]
	n := 0
	if useAVX2 {
		n = len(dst) &^ 7
		if n > 0 {
			addToAVX2(&dst[0], &src[0], n)
		}
	}
	for i := n; i < len(dst); i++ {
		dst[i] += src[i]
	}
}

// Add sets dst[i] = a[i] + b[i] for i < len(dst); a and b must be at
// least as long.
func Add(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	n := 0
	if useAVX2 {
		n = len(dst) &^ 7
		if n > 0 {
			addAVX2(&dst[0], &a[0], &b[0], n)
		}
	}
	for i := n; i < len(dst); i++ {
		dst[i] = a[i] + b[i]
	}
}

// Mul sets dst[i] = a[i] * b[i] for i < len(dst); a and b must be at
// least as long.
func Mul(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	n := 0
	if useAVX2 {
		n = len(dst) &^ 7
		if n > 0 {
			mulAVX2(&dst[0], &a[0], &b[0], n)
		}
	}
	for i := n; i < len(dst); i++ {
		dst[i] = a[i] * b[i]
	}
}

// ReLU sets x[i] = max(0, x[i]) in place, branch-free on the bits: every
// value with its sign bit set (negatives, −0, negative NaNs) becomes +0.
func ReLU(x []float32) {
	n := 0
	if useAVX2 {
		n = len(x) &^ 7
		if n > 0 {
			reluAVX2(&x[0], n)
		}
	}
	for i := n; i < len(x); i++ {
		u := math.Float32bits(x[i])
		x[i] = math.Float32frombits(u &^ uint32(int32(u)>>31))
	}
}

// ReLUMask sets out[i] = g[i] where y[i] > 0 and +0 elsewhere, for
// i < len(y): the gradient of a ReLU written in terms of its output y. For
// float32 bits s read as int32, y > 0 exactly when s > 0 (a positive NaN
// counts as positive). out and g must be at least as long as y.
func ReLUMask(out, y, g []float32) {
	g = g[:len(y)]
	out = out[:len(y)]
	n := 0
	if useAVX2 {
		n = len(y) &^ 7
		if n > 0 {
			reluMaskAVX2(&out[0], &y[0], &g[0], n)
		}
	}
	for i := n; i < len(y); i++ {
		s := int32(math.Float32bits(y[i]))
		m := uint32(^((s - 1) >> 31) & ^(s >> 31))
		out[i] = math.Float32frombits(math.Float32bits(g[i]) & m)
	}
}

// Fill sets every element of dst to v.
func Fill(dst []float32, v float32) {
	n := 0
	if useAVX2 {
		n = len(dst) &^ 7
		if n > 0 {
			fillAVX2(&dst[0], v, n)
		}
	}
	for i := n; i < len(dst); i++ {
		dst[i] = v
	}
}

// gather16 sets dst[p*16 : p*16+16] = x[off[p]+c0 : off[p]+c0+16] for every
// p < len(off). off must be increasing.
func gather16(dst, x []float32, off []int, c0 int) {
	if len(off) == 0 {
		return
	}
	if useAVX2 {
		// One bounds check for the whole panel: the offsets increase.
		_ = dst[len(off)*16-1]
		_ = x[off[0]+c0]
		_ = x[off[len(off)-1]+c0+15]
		gather16AVX2(&dst[0], &x[0], &off[0], len(off), c0)
		return
	}
	for p, o := range off {
		*(*[16]float32)(dst[p*16:]) = *(*[16]float32)(x[o+c0:])
	}
}

// splitMasks[l] selects lanes l..15 (all ones) for gather16Split.
var splitMasks = func() (m [17][16]int32) {
	for l := range m {
		for t := l; t < 16; t++ {
			m[l][t] = -1
		}
	}
	return m
}()

// gather16Split is gather16 for rows made of two runs of consecutive
// floats: lanes t < l come from x[off[p]+c0+t], lanes t >= l from
// x[off[p]+c1+t−l], with 0 < l < 16 and c0+l <= c1.
func gather16Split(dst, x []float32, off []int, c0, c1, l int) {
	if len(off) == 0 {
		return
	}
	if useAVX2 {
		// The two 16-float loads of a row read x[o+c0 : o+c0+16] and
		// x[o+c1−l : o+c1−l+16], both inside [o+c0, o+c1+16−l).
		_ = dst[len(off)*16-1]
		_ = x[off[0]+c0]
		_ = x[off[len(off)-1]+c1+15-l]
		if c0+l > c1 {
			panic("kernels: gather16Split: runs overlap")
		}
		gather16SplitAVX2(&dst[0], &x[0], &off[0], len(off), c0, c1-l, &splitMasks[l][0])
		return
	}
	for p, o := range off {
		row := dst[p*16 : p*16+16]
		copy(row[:l], x[o+c0:o+c0+l])
		copy(row[l:], x[o+c1:o+c1+16-l])
	}
}

// gatherIdx16 sets dst[p*16+t] = x[off[p]+idx[t]] for every p < len(off)
// and t < 16. off must be increasing and idx non-negative.
func gatherIdx16(dst, x []float32, off []int, idx *[16]int) {
	if len(off) == 0 {
		return
	}
	if useAVX2 {
		var idx32 [16]int32
		hi := 0
		for t, v := range idx {
			if v < 0 || v > 1<<31-1 {
				panic("kernels: gatherIdx16: index out of range")
			}
			idx32[t] = int32(v)
			hi = max(hi, v)
		}
		_ = dst[len(off)*16-1]
		_ = x[off[0]]
		_ = x[off[len(off)-1]+hi]
		gatherIdx16AVX2(&dst[0], &x[0], &off[0], len(off), &idx32[0])
		return
	}
	for p, o := range off {
		row := dst[p*16 : p*16+16]
		for t, v := range idx {
			row[t] = x[o+v]
		}
	}
}

// MaxPool2Rows sets out[j], for j < len(out), to the maximum of r0[2j],
// r0[2j+1], r1[2j] and r1[2j+1] (one output row of a 2×2, stride-2 max
// pool), taken in that order as "m = v if v > m": where values tie, or
// NaNs meet numbers, the result is the first candidate that no later one
// exceeds, and the gradient (the pool's backward pass) looks for it in the
// same order.
func MaxPool2Rows(out, r0, r1 []float32) {
	n := len(out)
	if n == 0 {
		return
	}
	r0, r1 = r0[:2*n], r1[:2*n]
	for j := 0; j < n; j++ {
		m := r0[2*j]
		if v := r0[2*j+1]; v > m {
			m = v
		}
		if v := r1[2*j]; v > m {
			m = v
		}
		if v := r1[2*j+1]; v > m {
			m = v
		}
		out[j] = m
	}
}

// MaxPool2Plane is MaxPool2Rows over a plane: output row i (ow floats at
// y[i*ow:]) pools rows 2i and 2i+1 of x, whose rows are w floats apart,
// for i < oh (2·ow <= w).
func MaxPool2Plane(y, x []float32, w, oh, ow int) {
	if oh == 0 || ow == 0 {
		return
	}
	_, _ = y[oh*ow-1], x[(2*oh-1)*w+2*ow-1]
	if useAVX2 && ow >= 8 {
		maxPool2PlaneAVX2(&y[0], &x[0], w, ow, oh)
		return
	}
	for i := 0; i < oh; i++ {
		MaxPool2Rows(y[i*ow:(i+1)*ow], x[2*i*w:], x[(2*i+1)*w:])
	}
}

// MaxPool2GradRows is MaxPool2Rows' backward pass for one output row: for
// j < len(y), it sets gx0[2j], gx0[2j+1], gx1[2j], gx1[2j+1] to g[j] at the
// first of r0[2j], r0[2j+1], r1[2j], r1[2j+1] that equals the pooled y[j]
// (the last if none does, as for a NaN) and to +0 at the other three.
func MaxPool2GradRows(gx0, gx1, r0, r1, y, g []float32) {
	n := len(y)
	if n == 0 {
		return
	}
	gx0, gx1, r0, r1, g = gx0[:2*n], gx1[:2*n], r0[:2*n], r1[:2*n], g[:n]
	for j := 0; j < n; j++ {
		m, v := y[j], g[j]
		gx0[2*j], gx0[2*j+1], gx1[2*j], gx1[2*j+1] = 0, 0, 0, 0
		switch {
		case r0[2*j] == m:
			gx0[2*j] = v
		case r0[2*j+1] == m:
			gx0[2*j+1] = v
		case r1[2*j] == m:
			gx1[2*j] = v
		default:
			gx1[2*j+1] = v
		}
	}
}

// gatherT16 is gatherIdx16 for panels whose rows are output pixels, so that
// rows p and p+1 often read neighbouring floats (off[p+1] = off[p]+1): eight
// such rows are two 8×8 transposes of plain loads, faster than gathers.
// Other rows are gathered.
func gatherT16(dst, x []float32, off []int, idx *[16]int) {
	if !useAVX2 || len(off) == 0 {
		gatherIdx16(dst, x, off, idx)
		return
	}
	hi := 0
	for _, v := range idx {
		if v < 0 {
			panic("kernels: gatherT16: negative index")
		}
		hi = max(hi, v)
	}
	_ = dst[len(off)*16-1]
	_ = x[off[0]]
	_ = x[off[len(off)-1]+hi] // the offsets increase
	consecutive := func(p int) bool { return p+8 <= len(off) && off[p+7]-off[p] == 7 }
	for p := 0; p < len(off); {
		b := p
		for consecutive(b) {
			b += 8
		}
		if b > p {
			gatherT16x8AVX2(&dst[p*16], &x[0], &off[p], (b-p)/8, &idx[0])
			p = b
			continue
		}
		gatherIdx16(dst[p*16:(p+1)*16], x, off[p:p+1], idx)
		p++
	}
}

// MaxPool2GradPlane is MaxPool2GradRows over a plane: the gradients g of
// output row i (with the pooled y, ow floats at i*ow) into rows 2i and
// 2i+1 of gx, chosen by the same rows of x (rows w floats apart), for
// i < oh (2·ow <= w). Elements of gx outside the pooled windows are left
// as they are.
func MaxPool2GradPlane(gx, x, y, g []float32, w, oh, ow int) {
	if oh == 0 || ow == 0 {
		return
	}
	last := (2*oh-1)*w + 2*ow - 1
	_, _, _, _ = gx[last], x[last], y[oh*ow-1], g[oh*ow-1]
	if useAVX2 && ow >= 8 {
		maxPool2GradPlaneAVX2(&gx[0], &x[0], &y[0], &g[0], w, ow, oh)
		return
	}
	for i := 0; i < oh; i++ {
		r0, r1 := 2*i*w, (2*i+1)*w
		MaxPool2GradRows(gx[r0:], gx[r1:], x[r0:], x[r1:], y[i*ow:(i+1)*ow], g[i*ow:])
	}
}

// AddRows sets dst[i*ldd+j] += src[i*lds+j] for i < rows and j < n: AddTo
// on the rows of two strided matrices, in one call.
func AddRows(dst, src []float32, rows, n, ldd, lds int) {
	if rows == 0 || n == 0 {
		return
	}
	_ = dst[(rows-1)*ldd+n-1]
	_ = src[(rows-1)*lds+n-1]
	j := 0
	if useAVX2 && n >= 8 {
		j = n &^ 7
		addRowsAVX2(&dst[0], &src[0], rows, j, ldd, lds)
	}
	if j == n {
		return
	}
	for i := 0; i < rows; i++ {
		d, s := dst[i*ldd+j:i*ldd+n], src[i*lds+j:i*lds+n]
		for t := range d {
			d[t] += s[t]
		}
	}
}
