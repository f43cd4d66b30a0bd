// Package backendtest holds devices for testing the GPU path without a GPU:
// HostDevice, a reference implementation of every kernel in float64 from
// its definition, and NullDevice, whose kernels do nothing (what remains is
// the host's share of a GPU step).
package backendtest

import (
	"fmt"
	"math"

	"github.com/org/vat/internal/device"
	"github.com/org/vat/internal/rng"
)

// Compile-time checks: the test devices implement what the ops call.
var (
	_ device.GPU = (*HostDevice)(nil)
	_ device.DNN = (*HostDevice)(nil)
	_ device.DNN = (*NullDevice)(nil)
)

// HostDevice is a reference device.GPU that keeps "device" memory in its own
// Go slices and computes every kernel from its definition, with float64
// sums. It exercises the whole GPU path of the ops (mirrors, uploads,
// downloads, scratch memory, the index arithmetic of internal/backend/ops.go) on any
// machine. Fresh allocations are filled with NaN, so an op that reads
// device memory nobody wrote shows up as NaN in the comparison.
type HostDevice struct {
	Live               int // allocations not yet freed
	Uploads, Downloads int
	DNNCalls           int // calls of the device.DNN methods
}

type hostMem struct{ d []float32 }

func (m *hostMem) Len() int { return len(m.d) }

// HM32 returns the memory of a HostDevice allocation.
func HM32(m device.Mem) []float32 { return m.(*hostMem).d }

func (h *HostDevice) Name() string { return "host reference device" }
func (h *HostDevice) Close() error { return nil }

func (h *HostDevice) Alloc(n int) (device.Mem, error) {
	if n <= 0 {
		return nil, fmt.Errorf("HostDevice: Alloc(%d)", n)
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(math.NaN())
	}
	h.Live++
	return &hostMem{d}, nil
}

func (h *HostDevice) Free(m device.Mem) error {
	h.Live--
	m.(*hostMem).d = nil
	return nil
}

func (h *HostDevice) Upload(dst device.Mem, src []float32) error {
	if len(src) > dst.Len() {
		return fmt.Errorf("HostDevice: upload of %d into %d", len(src), dst.Len())
	}
	h.Uploads++
	copy(HM32(dst), src)
	return nil
}

func (h *HostDevice) Download(dst []float32, src device.Mem) error {
	if len(dst) > src.Len() {
		return fmt.Errorf("HostDevice: download of %d from %d", len(dst), src.Len())
	}
	h.Downloads++
	copy(dst, HM32(src))
	return nil
}

func (h *HostDevice) Copy(dst, src device.Mem, n int) error {
	copy(HM32(dst)[:n], HM32(src)[:n])
	return nil
}

func (h *HostDevice) Sgemm(transA, transB bool, m, n, k int, a device.Mem, lda, sa int, b device.Mem, ldb, sb int,
	beta float32, c device.Mem, ldc, sc, batch int) error {
	A, B, C := HM32(a), HM32(b), HM32(c)
	for bi := 0; bi < batch; bi++ {
		ai, bj, ci := A[bi*sa:], B[bi*sb:], C[bi*sc:]
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for p := 0; p < k; p++ {
					ia, ib := i*lda+p, p*ldb+j
					if transA {
						ia = p*lda + i
					}
					if transB {
						ib = j*ldb + p
					}
					s += float64(ai[ia]) * float64(bj[ib])
				}
				if beta != 0 { // as BLAS: C is not read when beta is 0
					s += float64(beta) * float64(ci[i*ldc+j])
				}
				ci[i*ldc+j] = float32(s)
			}
		}
	}
	return nil
}

// im2colPairs calls fn(i, j) for every entry of the im2col matrices of n
// c×hh×w images, i indexing col (n×(c·kh·kw)×(oh·ow)) and j the image pixel
// it copies.
func im2colPairs(n, c, hh, w, kh, kw int, fn func(i, j int)) {
	oh, ow := hh-kh+1, w-kw+1
	k, p := c*kh*kw, oh*ow
	for im := 0; im < n; im++ {
		for ci := 0; ci < c; ci++ {
			for a := 0; a < kh; a++ {
				for b := 0; b < kw; b++ {
					r := (ci*kh+a)*kw + b
					for y := 0; y < oh; y++ {
						for z := 0; z < ow; z++ {
							fn((im*k+r)*p+y*ow+z, ((im*c+ci)*hh+y+a)*w+z+b)
						}
					}
				}
			}
		}
	}
}

func (h *HostDevice) Im2col(x, col device.Mem, n, c, hh, w, kh, kw int) error {
	X, Col := HM32(x), HM32(col)
	im2colPairs(n, c, hh, w, kh, kw, func(i, j int) { Col[i] = X[j] })
	return nil
}

// Col2im is im2col's adjoint: every pixel sums the entries copied from it.
func (h *HostDevice) Col2im(col, x device.Mem, n, c, hh, w, kh, kw int) error {
	X, Col := HM32(x), HM32(col)
	sums := make([]float64, n*c*hh*w)
	im2colPairs(n, c, hh, w, kh, kw, func(i, j int) { sums[j] += float64(Col[i]) })
	for i, s := range sums {
		X[i] = float32(s)
	}
	return nil
}

func (h *HostDevice) BiasAct(y, b device.Mem, n, f, p int, relu bool) error {
	Y, B := HM32(y), HM32(b)
	for i := range Y[:n*f*p] {
		v := Y[i] + B[(i/p)%f]
		if relu && v < 0 {
			v = 0
		}
		Y[i] = v
	}
	return nil
}

func (h *HostDevice) ReluMask(out, y, g device.Mem, n int) error {
	O, Y, Gr := HM32(out), HM32(y), HM32(g)
	for i := 0; i < n; i++ {
		O[i] = 0
		if Y[i] > 0 {
			O[i] = Gr[i]
		}
	}
	return nil
}

// window returns the flat indices of the 2×2 window (i, j) of plane pl, in
// row-major order.
func window(pl, hh, w, i, j int) [4]int {
	o := (pl*hh+2*i)*w + 2*j
	return [4]int{o, o + 1, o + w, o + w + 1}
}

func (h *HostDevice) MaxPool2(x, y device.Mem, nc, hh, w int) error {
	X, Y := HM32(x), HM32(y)
	oh, ow := hh/2, w/2
	for pl := 0; pl < nc; pl++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				m := float32(math.Inf(-1))
				for _, k := range window(pl, hh, w, i, j) {
					m = max(m, X[k])
				}
				Y[(pl*oh+i)*ow+j] = m
			}
		}
	}
	return nil
}

func (h *HostDevice) MaxPool2Grad(x, y, gy, gx device.Mem, nc, hh, w int) error {
	X, Y, GY, GX := HM32(x), HM32(y), HM32(gy), HM32(gx)
	oh, ow := hh/2, w/2
	for i := range GX[:nc*hh*w] {
		GX[i] = 0
	}
	for pl := 0; pl < nc; pl++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				// The first input equal to the maximum; the fourth when
				// none is (only for a y that is not this x's pooling).
				o := (pl*oh+i)*ow + j
				win := window(pl, hh, w, i, j)
				k := win[3]
				for _, c := range win[:3] {
					if X[c] == Y[o] {
						k = c
						break
					}
				}
				GX[k] = GY[o]
			}
		}
	}
	return nil
}

func (h *HostDevice) Axpby(z device.Mem, a float32, x device.Mem, b float32, y device.Mem, n int) error {
	Z, X, Y := HM32(z), HM32(x), HM32(y)
	for i := 0; i < n; i++ {
		Z[i] = a*X[i] + b*Y[i]
	}
	return nil
}

func (h *HostDevice) Mul(z, x, y device.Mem, n int) error {
	Z, X, Y := HM32(z), HM32(x), HM32(y)
	for i := 0; i < n; i++ {
		Z[i] = X[i] * Y[i]
	}
	return nil
}

func (h *HostDevice) L2Normalize(x, y device.Mem, n, m int, scale float32) error {
	X, Y := HM32(x), HM32(y)
	for i := 0; i < n; i++ {
		var s float64
		for _, v := range X[i*m : (i+1)*m] {
			s += float64(v) * float64(v)
		}
		for j := i * m; j < (i+1)*m; j++ {
			Y[j] = 0
			if s > 0 {
				Y[j] = float32(float64(scale) * float64(X[j]) / math.Sqrt(s))
			}
		}
	}
	return nil
}

// L2NormalizeGrad is the Jacobian-vector product written out:
// ∂y_j/∂x_k = scale·(δ_jk/‖x‖ − x_j·x_k/‖x‖³), so gx_k = Σ_j g_j ∂y_j/∂x_k.
func (h *HostDevice) L2NormalizeGrad(x, g, gx device.Mem, n, m int, scale float32) error {
	X, Gr, GX := HM32(x), HM32(g), HM32(gx)
	for i := 0; i < n; i++ {
		xi, gi := X[i*m:(i+1)*m], Gr[i*m:(i+1)*m]
		var s, dot float64
		for j := range xi {
			s += float64(xi[j]) * float64(xi[j])
			dot += float64(xi[j]) * float64(gi[j])
		}
		nrm := math.Sqrt(s)
		for k := range xi {
			v := 0.0
			if s > 0 {
				v = float64(scale) * (float64(gi[k])/nrm - float64(xi[k])*dot/(nrm*nrm*nrm))
			}
			GX[i*m+k] = float32(v)
		}
	}
	return nil
}

func (h *HostDevice) Adadelta(w, g, accG, accU device.Mem, n int, rho, eps, lr float32) error {
	W, Gr, A, U := HM32(w), HM32(g), HM32(accG), HM32(accU)
	for i := 0; i < n; i++ {
		a := float64(rho)*float64(A[i]) + float64(1-rho)*float64(Gr[i])*float64(Gr[i])
		d := float64(Gr[i]) * math.Sqrt(float64(U[i])+float64(eps)) / math.Sqrt(a+float64(eps))
		W[i] -= float32(float64(lr) * d)
		U[i] = float32(float64(rho)*float64(U[i]) + float64(1-rho)*d*d)
		A[i] = float32(a)
	}
	return nil
}

// NullDevice is HostDevice with every kernel a no-op: training on it
// measures what the GPU path costs on the host (the graph machine, the
// mirrors, transfers as memory copies, the ops that stay on the CPU, random
// numbers) and nothing else.
type NullDevice struct{ HostDevice }

func (*NullDevice) Name() string { return "null device" }
func (*NullDevice) Alloc(n int) (device.Mem, error) {
	return &hostMem{make([]float32, n)}, nil
}
func (*NullDevice) Free(device.Mem) error { return nil }
func (*NullDevice) Sgemm(bool, bool, int, int, int, device.Mem, int, int, device.Mem, int, int, float32, device.Mem, int, int, int) error {
	return nil
}
func (*NullDevice) Im2col(device.Mem, device.Mem, int, int, int, int, int, int) error { return nil }
func (*NullDevice) Col2im(device.Mem, device.Mem, int, int, int, int, int, int) error { return nil }
func (*NullDevice) BiasAct(device.Mem, device.Mem, int, int, int, bool) error         { return nil }
func (*NullDevice) ReluMask(device.Mem, device.Mem, device.Mem, int) error            { return nil }
func (*NullDevice) MaxPool2(device.Mem, device.Mem, int, int, int) error              { return nil }
func (*NullDevice) MaxPool2Grad(device.Mem, device.Mem, device.Mem, device.Mem, int, int, int) error {
	return nil
}
func (*NullDevice) Axpby(device.Mem, float32, device.Mem, float32, device.Mem, int) error { return nil }
func (*NullDevice) Mul(device.Mem, device.Mem, device.Mem, int) error                     { return nil }
func (*NullDevice) L2Normalize(device.Mem, device.Mem, int, int, float32) error           { return nil }
func (*NullDevice) L2NormalizeGrad(device.Mem, device.Mem, device.Mem, int, int, float32) error {
	return nil
}
func (*NullDevice) Adadelta(device.Mem, device.Mem, device.Mem, device.Mem, int, float32, float32, float32) error {
	return nil
}

func (h *HostDevice) Sync() error { return nil }

// Bernoulli is rng.BernoulliKey on the device memory.
func (h *HostDevice) Bernoulli(m device.Mem, n int, key, t uint64, v float32) error {
	rng.BernoulliKey(HM32(m)[:n], key, t, v)
	return nil
}

// Normals is rng.PhiloxNormals on the device memory.
func (h *HostDevice) Normals(x device.Mem, n int, key uint64) error {
	rng.PhiloxNormals(HM32(x)[:n], key)
	return nil
}

// logSoftmax returns log softmax(z) in float64, the maximum subtracted.
func logSoftmax(z []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	out := make([]float64, len(z))
	for j, v := range z {
		out[j] = float64(v) - m - math.Log(s)
	}
	return out
}

// lossRow returns a row's loss (device.LossRows) and its gradient with
// respect to argument wrt, from the definitions.
func lossRow(kind, wrt int, a, b []float32) (float64, []float64) {
	lp := logSoftmax(a)
	g := make([]float64, len(a))
	var l float64
	switch kind {
	case device.LossCrossEntropy:
		var sy float64
		for j, y := range b {
			l -= float64(y) * lp[j]
			sy += float64(y)
		}
		for j := range g {
			g[j] = math.Exp(lp[j])*sy - float64(b[j])
		}
	case device.LossKL:
		lq := logSoftmax(b)
		for j := range lp {
			l += math.Exp(lp[j]) * (lp[j] - lq[j])
		}
		for j := range g {
			if wrt == 0 {
				g[j] = math.Exp(lp[j]) * (lp[j] - lq[j] - l)
			} else {
				g[j] = math.Exp(lq[j]) - math.Exp(lp[j])
			}
		}
	case device.LossEntropy:
		for j := range lp {
			l -= math.Exp(lp[j]) * lp[j]
		}
		for j := range g {
			g[j] = -math.Exp(lp[j]) * (lp[j] + l)
		}
	}
	return l, g
}

// LossRows computes each row's loss from its definition.
func (h *HostDevice) LossRows(kind int, a, b, loss device.Mem, n, k int) error {
	A, B, L := HM32(a), HM32(b), HM32(loss)
	for i := 0; i < n; i++ {
		l, _ := lossRow(kind, 0, A[i*k:(i+1)*k], B[i*k:(i+1)*k])
		L[i] = float32(l)
	}
	return nil
}

// LossGrad computes c times each row's loss gradient from its definition.
func (h *HostDevice) LossGrad(kind, wrt int, a, b, grad device.Mem, n, k int, c float64) error {
	A, B, G := HM32(a), HM32(b), HM32(grad)
	for i := 0; i < n; i++ {
		_, g := lossRow(kind, wrt, A[i*k:(i+1)*k], B[i*k:(i+1)*k])
		for j, v := range g {
			G[i*k+j] = float32(c * v)
		}
	}
	return nil
}

// Adam applies the update in float32, operation by operation.
func (h *HostDevice) Adam(w, g, m, v device.Mem, n int, b1, b2, step, eps float32) error {
	W, G, M, V := HM32(w), HM32(g), HM32(m), HM32(v)
	for i := 0; i < n; i++ {
		M[i] = b1*M[i] + (1-b1)*G[i]
		V[i] = b2*V[i] + (1-b2)*G[i]*G[i]
		W[i] -= step * M[i] / (float32(math.Sqrt(float64(V[i]))) + eps)
	}
	return nil
}

func (*NullDevice) Adam(device.Mem, device.Mem, device.Mem, device.Mem, int, float32, float32, float32, float32) error {
	return nil
}

// BatchNorm normalizes per channel from the definition, in float64.
func (h *HostDevice) BatchNorm(x, gamma, beta, runMean, runVar, xhat, y, invStd device.Mem, n, c, p int, train, update bool, eps, momentum float64) error {
	X, Xh, Y, Inv := HM32(x), HM32(xhat), HM32(y), HM32(invStd)
	G, B, RM, RV := HM32(gamma), HM32(beta), HM32(runMean), HM32(runVar)
	m := float64(n * p)
	for ch := 0; ch < c; ch++ {
		idx := bnIndices(n, c, p, ch)
		mean, variance := float64(RM[ch]), float64(RV[ch])
		if train {
			var s, s2 float64
			for _, k := range idx {
				s += float64(X[k])
			}
			mean = s / m
			for _, k := range idx {
				s2 += (float64(X[k]) - mean) * (float64(X[k]) - mean)
			}
			variance = s2 / m
			if update {
				unbiased := variance
				if m > 1 {
					unbiased = s2 / (m - 1)
				}
				RM[ch] = float32(momentum*float64(RM[ch]) + (1-momentum)*mean)
				RV[ch] = float32(momentum*float64(RV[ch]) + (1-momentum)*unbiased)
			}
		}
		inv := 1 / math.Sqrt(variance+eps)
		Inv[ch] = float32(inv)
		for _, k := range idx {
			xh := (float64(X[k]) - mean) * inv
			Xh[k] = float32(xh)
			Y[k] = float32(float64(G[ch])*xh + float64(B[ch]))
		}
	}
	return nil
}

// BatchNormGrad computes one gradient of BatchNorm from the definition.
func (h *HostDevice) BatchNormGrad(wrt int, g, xhat, gamma, invStd, out device.Mem, n, c, p int, train bool) error {
	Gr, Xh, Ga, Inv, O := HM32(g), HM32(xhat), HM32(gamma), HM32(invStd), HM32(out)
	m := float64(n * p)
	for ch := 0; ch < c; ch++ {
		idx := bnIndices(n, c, p, ch)
		var sg, sgx float64
		for _, k := range idx {
			sg += float64(Gr[k])
			sgx += float64(Gr[k]) * float64(Xh[k])
		}
		switch wrt {
		case 1:
			O[ch] = float32(sgx)
		case 2:
			O[ch] = float32(sg)
		default:
			k0 := float64(Ga[ch]) * float64(Inv[ch])
			for _, k := range idx {
				if train {
					O[k] = float32(k0 / m * (m*float64(Gr[k]) - sg - float64(Xh[k])*sgx))
				} else {
					O[k] = float32(k0 * float64(Gr[k]))
				}
			}
		}
	}
	return nil
}

// bnIndices lists the indices of channel ch in n samples of c channels of p values.
func bnIndices(n, c, p, ch int) []int {
	idx := make([]int, 0, n*p)
	for i := 0; i < n; i++ {
		for j := 0; j < p; j++ {
			idx = append(idx, (i*c+ch)*p+j)
		}
	}
	return idx
}

func (*NullDevice) BatchNorm(device.Mem, device.Mem, device.Mem, device.Mem, device.Mem, device.Mem, device.Mem, device.Mem, int, int, int, bool, bool, float64, float64) error {
	return nil
}
func (*NullDevice) BatchNormGrad(int, device.Mem, device.Mem, device.Mem, device.Mem, device.Mem, int, int, int, bool) error {
	return nil
}
func (*NullDevice) LossRows(int, device.Mem, device.Mem, device.Mem, int, int) error { return nil }
func (*NullDevice) LossGrad(int, int, device.Mem, device.Mem, device.Mem, int, int, float64) error {
	return nil
}
func (*NullDevice) Bernoulli(device.Mem, int, uint64, uint64, float32) error { return nil }
func (*NullDevice) Normals(device.Mem, int, uint64) error                    { return nil }

// convTaps calls fn(xi, wi, yi) for every term x[xi]·w[wi] of the sum that
// gives y[yi] in a "valid" stride-1 convolution (the device.DNN definition),
// so that the three directions below are written from one loop nest and
// share nothing with the im2col path.
func convTaps(n, c, hh, wd, f, kh, kw int, fn func(xi, wi, yi int)) {
	oh, ow := hh-kh+1, wd-kw+1
	for im := 0; im < n; im++ {
		for fi := 0; fi < f; fi++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					yi := ((im*f+fi)*oh+i)*ow + j
					for ci := 0; ci < c; ci++ {
						for p := 0; p < kh; p++ {
							for q := 0; q < kw; q++ {
								fn(((im*c+ci)*hh+i+p)*wd+j+q, ((fi*c+ci)*kh+p)*kw+q, yi)
							}
						}
					}
				}
			}
		}
	}
}

// convSum sets out to sums accumulated over every tap of the convolution
// by add(sums, xi, wi, yi), in float64.
func convSum(out []float32, n, c, hh, wd, f, kh, kw int, add func(sums []float64, xi, wi, yi int)) {
	sums := make([]float64, len(out))
	convTaps(n, c, hh, wd, f, kh, kw, func(xi, wi, yi int) { add(sums, xi, wi, yi) })
	for i, s := range sums {
		out[i] = float32(s)
	}
}

func (h *HostDevice) ConvForward(x, w, y device.Mem, n, c, hh, wd, f, kh, kw int) error {
	h.DNNCalls++
	X, W := HM32(x), HM32(w)
	convSum(HM32(y)[:n*f*(hh-kh+1)*(wd-kw+1)], n, c, hh, wd, f, kh, kw, func(s []float64, xi, wi, yi int) {
		s[yi] += float64(X[xi]) * float64(W[wi])
	})
	return nil
}

func (h *HostDevice) ConvBackwardData(w, gy, gx device.Mem, n, c, hh, wd, f, kh, kw int) error {
	h.DNNCalls++
	W, GY := HM32(w), HM32(gy)
	convSum(HM32(gx)[:n*c*hh*wd], n, c, hh, wd, f, kh, kw, func(s []float64, xi, wi, yi int) {
		s[xi] += float64(W[wi]) * float64(GY[yi])
	})
	return nil
}

func (h *HostDevice) ConvBackwardFilter(x, gy, gw device.Mem, n, c, hh, wd, f, kh, kw int) error {
	h.DNNCalls++
	X, GY := HM32(x), HM32(gy)
	convSum(HM32(gw)[:f*c*kh*kw], n, c, hh, wd, f, kh, kw, func(s []float64, xi, wi, yi int) {
		s[wi] += float64(X[xi]) * float64(GY[yi])
	})
	return nil
}

func (h *HostDevice) MaxPool2DNN(x, y device.Mem, n, c, hh, w int) error {
	h.DNNCalls++
	return h.MaxPool2(x, y, n*c, hh, w)
}

func (h *HostDevice) MaxPool2GradDNN(x, y, gy, gx device.Mem, n, c, hh, w int) error {
	h.DNNCalls++
	return h.MaxPool2Grad(x, y, gy, gx, n*c, hh, w)
}

// The null device's cuDNN path is as empty as its kernels.
func (*NullDevice) ConvForward(device.Mem, device.Mem, device.Mem, int, int, int, int, int, int, int) error {
	return nil
}
func (*NullDevice) ConvBackwardData(device.Mem, device.Mem, device.Mem, int, int, int, int, int, int, int) error {
	return nil
}
func (*NullDevice) ConvBackwardFilter(device.Mem, device.Mem, device.Mem, int, int, int, int, int, int, int) error {
	return nil
}
func (*NullDevice) MaxPool2DNN(device.Mem, device.Mem, int, int, int, int) error { return nil }
func (*NullDevice) MaxPool2GradDNN(device.Mem, device.Mem, device.Mem, device.Mem, int, int, int, int) error {
	return nil
}
