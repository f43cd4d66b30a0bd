package vat

import (
	"fmt"
	"math"
)

// Compile-time checks: the test devices implement what the ops call.
var (
	_ gpuDevice = (*hostDevice)(nil)
	_ dnnDevice = (*hostDevice)(nil)
	_ dnnDevice = (*nullDevice)(nil)
)

// hostDevice is a reference gpuDevice that keeps "device" memory in its own
// Go slices and computes every kernel from its definition, with float64
// sums. It exercises the whole GPU path of the ops (mirrors, uploads,
// downloads, scratch memory, the index arithmetic of backend_ops.go) on any
// machine. Fresh allocations are filled with NaN, so an op that reads
// device memory nobody wrote shows up as NaN in the comparison.
type hostDevice struct {
	live               int // allocations not yet freed
	uploads, downloads int
	dnnCalls           int // calls of the dnnDevice methods
}

type hostMem struct{ d []float32 }

func (m *hostMem) Len() int { return len(m.d) }

func hm32(m devMem) []float32 { return m.(*hostMem).d }

func (h *hostDevice) Name() string { return "host reference device" }
func (h *hostDevice) Close() error { return nil }

func (h *hostDevice) Alloc(n int) (devMem, error) {
	if n <= 0 {
		return nil, fmt.Errorf("hostDevice: Alloc(%d)", n)
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(math.NaN())
	}
	h.live++
	return &hostMem{d}, nil
}

func (h *hostDevice) Free(m devMem) error {
	h.live--
	m.(*hostMem).d = nil
	return nil
}

func (h *hostDevice) Upload(dst devMem, src []float32) error {
	if len(src) > dst.Len() {
		return fmt.Errorf("hostDevice: upload of %d into %d", len(src), dst.Len())
	}
	h.uploads++
	copy(hm32(dst), src)
	return nil
}

func (h *hostDevice) Download(dst []float32, src devMem) error {
	if len(dst) > src.Len() {
		return fmt.Errorf("hostDevice: download of %d from %d", len(dst), src.Len())
	}
	h.downloads++
	copy(dst, hm32(src))
	return nil
}

func (h *hostDevice) Copy(dst, src devMem, n int) error {
	copy(hm32(dst)[:n], hm32(src)[:n])
	return nil
}

func (h *hostDevice) Sgemm(transA, transB bool, m, n, k int, a devMem, lda, sa int, b devMem, ldb, sb int,
	beta float32, c devMem, ldc, sc, batch int) error {
	A, B, C := hm32(a), hm32(b), hm32(c)
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

func (h *hostDevice) Im2col(x, col devMem, n, c, hh, w, kh, kw int) error {
	X, Col := hm32(x), hm32(col)
	im2colPairs(n, c, hh, w, kh, kw, func(i, j int) { Col[i] = X[j] })
	return nil
}

// Col2im is im2col's adjoint: every pixel sums the entries copied from it.
func (h *hostDevice) Col2im(col, x devMem, n, c, hh, w, kh, kw int) error {
	X, Col := hm32(x), hm32(col)
	sums := make([]float64, n*c*hh*w)
	im2colPairs(n, c, hh, w, kh, kw, func(i, j int) { sums[j] += float64(Col[i]) })
	for i, s := range sums {
		X[i] = float32(s)
	}
	return nil
}

func (h *hostDevice) BiasAct(y, b devMem, n, f, p int, relu bool) error {
	Y, B := hm32(y), hm32(b)
	for i := range Y[:n*f*p] {
		v := Y[i] + B[(i/p)%f]
		if relu && v < 0 {
			v = 0
		}
		Y[i] = v
	}
	return nil
}

func (h *hostDevice) ReluMask(out, y, g devMem, n int) error {
	O, Y, Gr := hm32(out), hm32(y), hm32(g)
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

func (h *hostDevice) MaxPool2(x, y devMem, nc, hh, w int) error {
	X, Y := hm32(x), hm32(y)
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

func (h *hostDevice) MaxPool2Grad(x, y, gy, gx devMem, nc, hh, w int) error {
	X, Y, GY, GX := hm32(x), hm32(y), hm32(gy), hm32(gx)
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

func (h *hostDevice) Axpby(z devMem, a float32, x devMem, b float32, y devMem, n int) error {
	Z, X, Y := hm32(z), hm32(x), hm32(y)
	for i := 0; i < n; i++ {
		Z[i] = a*X[i] + b*Y[i]
	}
	return nil
}

func (h *hostDevice) Mul(z, x, y devMem, n int) error {
	Z, X, Y := hm32(z), hm32(x), hm32(y)
	for i := 0; i < n; i++ {
		Z[i] = X[i] * Y[i]
	}
	return nil
}

func (h *hostDevice) L2Normalize(x, y devMem, n, m int, scale float32) error {
	X, Y := hm32(x), hm32(y)
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
func (h *hostDevice) L2NormalizeGrad(x, g, gx devMem, n, m int, scale float32) error {
	X, Gr, GX := hm32(x), hm32(g), hm32(gx)
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

func (h *hostDevice) Adadelta(w, g, accG, accU devMem, n int, rho, eps, lr float32) error {
	W, Gr, A, U := hm32(w), hm32(g), hm32(accG), hm32(accU)
	for i := 0; i < n; i++ {
		a := float64(rho)*float64(A[i]) + float64(1-rho)*float64(Gr[i])*float64(Gr[i])
		d := float64(Gr[i]) * math.Sqrt(float64(U[i])+float64(eps)) / math.Sqrt(a+float64(eps))
		W[i] -= float32(float64(lr) * d)
		U[i] = float32(float64(rho)*float64(U[i]) + float64(1-rho)*d*d)
		A[i] = float32(a)
	}
	return nil
}

// nullDevice is hostDevice with every kernel a no-op: training on it
// measures what the GPU path costs on the host (the graph machine, the
// mirrors, transfers as memory copies, the ops that stay on the CPU, random
// numbers) and nothing else.
type nullDevice struct{ hostDevice }

func (*nullDevice) Name() string { return "null device" }
func (*nullDevice) Alloc(n int) (devMem, error) {
	return &hostMem{make([]float32, n)}, nil
}
func (*nullDevice) Free(devMem) error { return nil }
func (*nullDevice) Sgemm(bool, bool, int, int, int, devMem, int, int, devMem, int, int, float32, devMem, int, int, int) error {
	return nil
}
func (*nullDevice) Im2col(devMem, devMem, int, int, int, int, int, int) error { return nil }
func (*nullDevice) Col2im(devMem, devMem, int, int, int, int, int, int) error { return nil }
func (*nullDevice) BiasAct(devMem, devMem, int, int, int, bool) error         { return nil }
func (*nullDevice) ReluMask(devMem, devMem, devMem, int) error                { return nil }
func (*nullDevice) MaxPool2(devMem, devMem, int, int, int) error              { return nil }
func (*nullDevice) MaxPool2Grad(devMem, devMem, devMem, devMem, int, int, int) error {
	return nil
}
func (*nullDevice) Axpby(devMem, float32, devMem, float32, devMem, int) error       { return nil }
func (*nullDevice) Mul(devMem, devMem, devMem, int) error                           { return nil }
func (*nullDevice) L2Normalize(devMem, devMem, int, int, float32) error             { return nil }
func (*nullDevice) L2NormalizeGrad(devMem, devMem, devMem, int, int, float32) error { return nil }
func (*nullDevice) Adadelta(devMem, devMem, devMem, devMem, int, float32, float32, float32) error {
	return nil
}

func (h *hostDevice) Sync() error { return nil }

// convTaps calls fn(xi, wi, yi) for every term x[xi]·w[wi] of the sum that
// gives y[yi] in a "valid" stride-1 convolution (the dnnDevice definition),
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

func (h *hostDevice) ConvForward(x, w, y devMem, n, c, hh, wd, f, kh, kw int) error {
	h.dnnCalls++
	X, W := hm32(x), hm32(w)
	convSum(hm32(y)[:n*f*(hh-kh+1)*(wd-kw+1)], n, c, hh, wd, f, kh, kw, func(s []float64, xi, wi, yi int) {
		s[yi] += float64(X[xi]) * float64(W[wi])
	})
	return nil
}

func (h *hostDevice) ConvBackwardData(w, gy, gx devMem, n, c, hh, wd, f, kh, kw int) error {
	h.dnnCalls++
	W, GY := hm32(w), hm32(gy)
	convSum(hm32(gx)[:n*c*hh*wd], n, c, hh, wd, f, kh, kw, func(s []float64, xi, wi, yi int) {
		s[xi] += float64(W[wi]) * float64(GY[yi])
	})
	return nil
}

func (h *hostDevice) ConvBackwardFilter(x, gy, gw devMem, n, c, hh, wd, f, kh, kw int) error {
	h.dnnCalls++
	X, GY := hm32(x), hm32(gy)
	convSum(hm32(gw)[:f*c*kh*kw], n, c, hh, wd, f, kh, kw, func(s []float64, xi, wi, yi int) {
		s[wi] += float64(X[xi]) * float64(GY[yi])
	})
	return nil
}

func (h *hostDevice) MaxPool2DNN(x, y devMem, n, c, hh, w int) error {
	h.dnnCalls++
	return h.MaxPool2(x, y, n*c, hh, w)
}

func (h *hostDevice) MaxPool2GradDNN(x, y, gy, gx devMem, n, c, hh, w int) error {
	h.dnnCalls++
	return h.MaxPool2Grad(x, y, gy, gx, n*c, hh, w)
}

// The null device's cuDNN path is as empty as its kernels.
func (*nullDevice) ConvForward(devMem, devMem, devMem, int, int, int, int, int, int, int) error {
	return nil
}
func (*nullDevice) ConvBackwardData(devMem, devMem, devMem, int, int, int, int, int, int, int) error {
	return nil
}
func (*nullDevice) ConvBackwardFilter(devMem, devMem, devMem, int, int, int, int, int, int, int) error {
	return nil
}
func (*nullDevice) MaxPool2DNN(devMem, devMem, int, int, int, int) error { return nil }
func (*nullDevice) MaxPool2GradDNN(devMem, devMem, devMem, devMem, int, int, int, int) error {
	return nil
}
