package kernels

// This file holds batch normalization's loops on the host, shared by the
// forward op, its gradient and its tangent (internal/ops). Each works on the
// channels [lo, hi) of one worker's block (hi − lo ≤ BNBlock) of x laid out
// as n samples of c channels of p positions. Every per-channel sum runs over the
// samples in order and, within a sample, over the positions in order, so
// the result does not depend on the layout's fast path or on the number of
// cores. For N×F inputs (p = 1) the loops walk each sample's row of the
// block's features, one contiguous span, instead of one strided value per
// channel. A whole block of BNBlock features of an N×F input runs in AVX2
// assembly (batchnorm_amd64.s), four channels per vector, with the same
// float64 operations in the same order and no fused multiply-add: the
// conversions around products here keep the compiler from fusing them too,
// so the bits do not depend on the path.

// BNBlock is the number of channels in one block of BNBlocks: for N×F
// inputs, one cache line of each sample's row.
const BNBlock = 16

// BNBlocks calls fn for consecutive blocks of BNBlock channels of c on all
// cores.
func BNBlocks(c int, fn func(lo, hi int)) {
	ParallelFor((c+BNBlock-1)/BNBlock, func(_, b int) { fn(b*BNBlock, min(c, (b+1)*BNBlock)) })
}

// bnFast reports whether channels [lo, hi) of an N×F input run in the
// AVX2 loops.
func bnFast(n, p, lo, hi int) bool { return useAVX2 && p == 1 && hi-lo == BNBlock && n > 0 }

// BNSum adds Σ x over each channel ch of [lo, hi) to s[ch−lo].
func BNSum(s []float64, x []float32, n, c, p, lo, hi int) {
	if bnFast(n, p, lo, hi) {
		_, _ = s[BNBlock-1], x[(n-1)*c+hi-1]
		bnSum16AVX2(&s[0], &x[lo], n, c)
		return
	}
	if p == 1 {
		for i := 0; i < n; i++ {
			row := x[i*c+lo : i*c+hi]
			s := s[:len(row)]
			for k, v := range row {
				s[k] += float64(v)
			}
		}
		return
	}
	for i := 0; i < n; i++ {
		ch := lo
		// Four channels at a time: four independent chains of adds instead
		// of one, each channel's still in order.
		for ; ch+4 <= hi; ch += 4 {
			k := ch - lo
			a0, a1, a2, a3 := s[k], s[k+1], s[k+2], s[k+3]
			x0 := x[(i*c+ch)*p : (i*c+ch+1)*p]
			x1, x2, x3 := x[(i*c+ch+1)*p:][:len(x0)], x[(i*c+ch+2)*p:][:len(x0)], x[(i*c+ch+3)*p:][:len(x0)]
			for j, v := range x0 {
				a0 += float64(v)
				a1 += float64(x1[j])
				a2 += float64(x2[j])
				a3 += float64(x3[j])
			}
			s[k], s[k+1], s[k+2], s[k+3] = a0, a1, a2, a3
		}
		for ; ch < hi; ch++ {
			acc := s[ch-lo]
			for _, v := range x[(i*c+ch)*p : (i*c+ch+1)*p] {
				acc += float64(v)
			}
			s[ch-lo] = acc
		}
	}
}

// BNSumSqDev adds Σ (x − mean[ch−lo])² over each channel ch of [lo, hi) to
// s[ch−lo].
func BNSumSqDev(s, mean []float64, x []float32, n, c, p, lo, hi int) {
	if bnFast(n, p, lo, hi) {
		_, _, _ = s[BNBlock-1], mean[BNBlock-1], x[(n-1)*c+hi-1]
		bnSumSqDev16AVX2(&s[0], &mean[0], &x[lo], n, c)
		return
	}
	if p == 1 {
		for i := 0; i < n; i++ {
			row := x[i*c+lo : i*c+hi]
			s, mean := s[:len(row)], mean[:len(row)]
			for k, v := range row {
				d := float64(v) - mean[k]
				s[k] += float64(d * d)
			}
		}
		return
	}
	for i := 0; i < n; i++ {
		for ch := lo; ch < hi; ch++ {
			acc, mu := s[ch-lo], mean[ch-lo]
			for _, v := range x[(i*c+ch)*p : (i*c+ch+1)*p] {
				d := float64(v) - mu
				acc += float64(d * d)
			}
			s[ch-lo] = acc
		}
	}
}

// BNSumDot adds Σ g to sg[ch−lo] and Σ g·x̂ to sgx[ch−lo] over each
// channel ch of [lo, hi); a nil sg or sgx is not computed.
func BNSumDot(sg, sgx []float64, g, xh []float32, n, c, p, lo, hi int) {
	if sgx != nil && bnFast(n, p, lo, hi) {
		_, _, _ = sgx[BNBlock-1], g[(n-1)*c+hi-1], xh[(n-1)*c+hi-1]
		if sg == nil {
			bnSumProd16AVX2(&sgx[0], &g[lo], &xh[lo], n, c)
			return
		}
		_ = sg[BNBlock-1]
		bnSumDot16AVX2(&sg[0], &sgx[0], &g[lo], &xh[lo], n, c)
		return
	}
	switch {
	case sgx == nil:
		BNSum(sg, g, n, c, p, lo, hi)
		return
	case p == 1 && sg == nil:
		for i := 0; i < n; i++ {
			gr, xr := g[i*c+lo:i*c+hi], xh[i*c+lo:i*c+hi]
			xr, sgx := xr[:len(gr)], sgx[:len(gr)]
			for k, v := range gr {
				sgx[k] += float64(float64(v) * float64(xr[k]))
			}
		}
		return
	case p == 1:
		for i := 0; i < n; i++ {
			gr, xr := g[i*c+lo:i*c+hi], xh[i*c+lo:i*c+hi]
			xr, sg, sgx := xr[:len(gr)], sg[:len(gr)], sgx[:len(gr)]
			for k, v := range gr {
				sg[k] += float64(v)
				sgx[k] += float64(float64(v) * float64(xr[k]))
			}
		}
		return
	}
	for i := 0; i < n; i++ {
		for ch := lo; ch < hi; ch++ {
			var a, b float64
			if sg != nil {
				a = sg[ch-lo]
			}
			b = sgx[ch-lo]
			gs, xs := g[(i*c+ch)*p:(i*c+ch+1)*p], xh[(i*c+ch)*p:(i*c+ch+1)*p]
			xs = xs[:len(gs)]
			for j, v := range gs {
				a += float64(v)
				b += float64(float64(v) * float64(xs[j]))
			}
			if sg != nil {
				sg[ch-lo] = a
			}
			sgx[ch-lo] = b
		}
	}
}

// BNNormalize writes x̂ = (x − μ)·inv and y = γ·x̂ + β (x̂ and y rounded to
// float32, γ·x̂ + β computed from the float64 x̂) for each channel ch of
// [lo, hi), whose μ, inv, γ and β are mean[ch−lo], inv[ch], gamma[ch] and
// beta[ch].
func BNNormalize(y, xhat, x []float32, mean, inv []float64, gamma, beta []float32, n, c, p, lo, hi int) {
	w := hi - lo
	var g, b [BNBlock]float64
	for k := range w {
		g[k], b[k] = float64(gamma[lo+k]), float64(beta[lo+k])
	}
	if bnFast(n, p, lo, hi) {
		_, _, _, _, _ = y[(n-1)*c+hi-1], xhat[(n-1)*c+hi-1], x[(n-1)*c+hi-1], mean[BNBlock-1], inv[hi-1]
		bnNormalize16AVX2(&y[lo], &xhat[lo], &x[lo], n, c, &mean[0], &inv[lo], &g[0], &b[0])
		return
	}
	if p == 1 {
		mean, inv := mean[:w], inv[lo:hi]
		for i := 0; i < n; i++ {
			xr, hr, yr := x[i*c+lo:i*c+hi], xhat[i*c+lo:i*c+hi], y[i*c+lo:i*c+hi]
			hr, yr = hr[:len(xr)], yr[:len(xr)]
			for k, v := range xr {
				xh := (float64(v) - mean[k]) * inv[k]
				hr[k] = float32(xh)
				yr[k] = float32(float64(g[k]*xh) + b[k])
			}
		}
		return
	}
	for i := 0; i < n; i++ {
		for ch := lo; ch < hi; ch++ {
			k := ch - lo
			mu, iv, gk, bk := mean[k], inv[ch], g[k], b[k]
			xr, hr, yr := x[(i*c+ch)*p:(i*c+ch+1)*p], xhat[(i*c+ch)*p:(i*c+ch+1)*p], y[(i*c+ch)*p:(i*c+ch+1)*p]
			hr, yr = hr[:len(xr)], yr[:len(xr)]
			for j, v := range xr {
				xh := (float64(v) - mu) * iv
				hr[j] = float32(xh)
				yr[j] = float32(float64(gk*xh) + bk)
			}
		}
	}
}

// BNCenter writes o = k·(a·g − s − x̂·t) for each channel ch of [lo, hi),
// with k, a, s and t that channel's scale[ch−lo], a, shift[ch−lo] and
// tilt[ch−lo]: batch normalization's gradient in training mode (a = M) and
// its tangent (a = 1). A nil tilt and shift mean zero and skip x̂, which
// may then be nil: o = k·(a·g).
func BNCenter(o, g, xh []float32, scale []float64, a float64, shift, tilt []float64, n, c, p, lo, hi int) {
	w := hi - lo
	scale = scale[:w]
	if tilt == nil {
		if bnFast(n, p, lo, hi) {
			_, _ = o[(n-1)*c+hi-1], g[(n-1)*c+hi-1]
			bnScale16AVX2(&o[lo], &g[lo], n, c, &scale[0], a)
			return
		}
		if p == 1 {
			for i := 0; i < n; i++ {
				gr, or := g[i*c+lo:i*c+hi], o[i*c+lo:i*c+hi]
				or = or[:len(gr)]
				for k, v := range gr {
					or[k] = float32(scale[k] * (a * float64(v)))
				}
			}
			return
		}
		for i := 0; i < n; i++ {
			for ch := lo; ch < hi; ch++ {
				sk := scale[ch-lo]
				gr, or := g[(i*c+ch)*p:(i*c+ch+1)*p], o[(i*c+ch)*p:(i*c+ch+1)*p]
				or = or[:len(gr)]
				for j, v := range gr {
					or[j] = float32(sk * (a * float64(v)))
				}
			}
		}
		return
	}
	shift, tilt = shift[:w], tilt[:w]
	if bnFast(n, p, lo, hi) {
		_, _, _ = o[(n-1)*c+hi-1], g[(n-1)*c+hi-1], xh[(n-1)*c+hi-1]
		bnCenter16AVX2(&o[lo], &g[lo], &xh[lo], n, c, &scale[0], a, &shift[0], &tilt[0])
		return
	}
	if p == 1 {
		for i := 0; i < n; i++ {
			gr, xr, or := g[i*c+lo:i*c+hi], xh[i*c+lo:i*c+hi], o[i*c+lo:i*c+hi]
			xr, or = xr[:len(gr)], or[:len(gr)]
			for k, v := range gr {
				or[k] = float32(scale[k] * (float64(a*float64(v)) - shift[k] - float64(float64(xr[k])*tilt[k])))
			}
		}
		return
	}
	for i := 0; i < n; i++ {
		for ch := lo; ch < hi; ch++ {
			sk, s, t := scale[ch-lo], shift[ch-lo], tilt[ch-lo]
			gr, xr, or := g[(i*c+ch)*p:(i*c+ch+1)*p], xh[(i*c+ch)*p:(i*c+ch+1)*p], o[(i*c+ch)*p:(i*c+ch+1)*p]
			xr, or = xr[:len(gr)], or[:len(gr)]
			for j, v := range gr {
				or[j] = float32(sk * (float64(a*float64(v)) - s - float64(float64(xr[j])*t)))
			}
		}
	}
}
