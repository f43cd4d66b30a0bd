//go:build cuda

package cuda

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/org/vat/internal/backend"
)

// Every kernel and the cuBLAS product against a plain CPU computation on
// fresh random inputs. Tolerance: relative 1e-4 (float32 sums in a
// different order), as the CUDA issue asks.

func open(t *testing.T) *Device {
	t.Helper()
	d, err := Open(0)
	if err != nil {
		if backend.GPUPresent() {
			t.Fatalf("this machine has a GPU, but it cannot be opened: %v", err)
		}
		t.Skipf("no usable GPU: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(2*rng.Float64() - 1)
	}
	return s
}

func upload(t *testing.T, d *Device, v []float32) Mem {
	t.Helper()
	m, err := d.Alloc(len(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Upload(m, v); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Free(m) })
	return m
}

func download(t *testing.T, d *Device, m Mem) []float32 {
	t.Helper()
	v := make([]float32, m.Len())
	if err := d.Download(v, m); err != nil {
		t.Fatal(err)
	}
	return v
}

func compare(t *testing.T, what string, got, want []float32, scale float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-4*math.Max(scale, math.Abs(float64(want[i]))) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestSgemm(t *testing.T) {
	d := open(t)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, sh := range [][3]int{{1, 1, 1}, {32, 576, 288}, {128, 128, 4608}, {7, 33, 5}} {
		m, n, k := sh[0], sh[1], sh[2]
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			lda, ldb := k, n
			if tr[0] {
				lda = m
			}
			if tr[1] {
				ldb = k
			}
			a, b, c := randSlice(rng, m*k), randSlice(rng, k*n), randSlice(rng, m*n)
			want := make([]float32, m*n)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					s := float64(c[i*n+j])
					for p := 0; p < k; p++ {
						var av, bv float32
						if tr[0] {
							av = a[p*lda+i]
						} else {
							av = a[i*lda+p]
						}
						if tr[1] {
							bv = b[j*ldb+p]
						} else {
							bv = b[p*ldb+j]
						}
						s += float64(av) * float64(bv)
					}
					want[i*n+j] = float32(s)
				}
			}
			cm := upload(t, d, c)
			if err := d.Sgemm(tr[0], tr[1], m, n, k, upload(t, d, a), lda, upload(t, d, b), ldb, 1, cm, n); err != nil {
				t.Fatal(err)
			}
			compare(t, "Sgemm", download(t, d, cm), want, math.Sqrt(float64(k)))
		}
	}
}

func TestConvKernels(t *testing.T) {
	d := open(t)
	rng := rand.New(rand.NewPCG(2, 2))
	n, c, h, w, kh, kw := 3, 2, 7, 6, 3, 3
	oh, ow := h-kh+1, w-kw+1
	K, P := c*kh*kw, oh*ow
	x := randSlice(rng, n*c*h*w)
	col := make([]float32, n*K*P)
	for i := 0; i < n; i++ {
		for ci := 0; ci < c; ci++ {
			for p := 0; p < kh; p++ {
				for q := 0; q < kw; q++ {
					r := (ci*kh+p)*kw + q
					for a := 0; a < oh; a++ {
						for b := 0; b < ow; b++ {
							col[(i*K+r)*P+a*ow+b] = x[((i*c+ci)*h+a+p)*w+b+q]
						}
					}
				}
			}
		}
	}
	xm, colm := upload(t, d, x), upload(t, d, make([]float32, n*K*P))
	if err := d.Im2col(xm, colm, n, c, h, w, kh, kw); err != nil {
		t.Fatal(err)
	}
	compare(t, "Im2col", download(t, d, colm), col, 1)

	// col2im is the adjoint of im2col: <im2col(x), g> = <x, col2im(g)>.
	g := randSlice(rng, n*K*P)
	back := upload(t, d, make([]float32, n*c*h*w))
	if err := d.Col2im(upload(t, d, g), back, n, c, h, w, kh, kw); err != nil {
		t.Fatal(err)
	}
	var lhs, rhs float64
	for i := range col {
		lhs += float64(col[i]) * float64(g[i])
	}
	bv := download(t, d, back)
	for i := range x {
		rhs += float64(x[i]) * float64(bv[i])
	}
	if math.Abs(lhs-rhs) > 1e-4*math.Abs(lhs)+1e-4 {
		t.Fatalf("col2im is not im2col's adjoint: %v vs %v", lhs, rhs)
	}
}

func TestElementwiseKernels(t *testing.T) {
	d := open(t)
	rng := rand.New(rand.NewPCG(3, 3))
	n, f, p := 4, 5, 37
	y, b := randSlice(rng, n*f*p), randSlice(rng, f)
	want := make([]float32, len(y))
	for i, v := range y {
		s := v + b[(i/p)%f]
		if s < 0 {
			s = 0
		}
		want[i] = s
	}
	ym := upload(t, d, y)
	if err := d.BiasAct(ym, upload(t, d, b), n, f, p, true); err != nil {
		t.Fatal(err)
	}
	act := download(t, d, ym)
	compare(t, "BiasAct", act, want, 1)

	g := randSlice(rng, len(y))
	mask := make([]float32, len(y))
	for i := range y {
		if act[i] > 0 {
			mask[i] = g[i]
		}
	}
	out := upload(t, d, make([]float32, len(y)))
	if err := d.ReluMask(out, upload(t, d, act), upload(t, d, g), len(y)); err != nil {
		t.Fatal(err)
	}
	compare(t, "ReluMask", download(t, d, out), mask, 1)

	gb := make([]float32, f)
	for i, v := range g {
		gb[(i/p)%f] += v
	}
	gbm := upload(t, d, make([]float32, f))
	if err := d.BiasGrad(upload(t, d, g), gbm, n, f, p); err != nil {
		t.Fatal(err)
	}
	compare(t, "BiasGrad", download(t, d, gbm), gb, 10)

	z := upload(t, d, make([]float32, len(y)))
	if err := d.Axpby(z, 2, upload(t, d, y), -0.5, upload(t, d, g), len(y)); err != nil {
		t.Fatal(err)
	}
	ax := make([]float32, len(y))
	for i := range ax {
		ax[i] = 2*y[i] - 0.5*g[i]
	}
	compare(t, "Axpby", download(t, d, z), ax, 1)
}

func TestMaxPoolKernels(t *testing.T) {
	d := open(t)
	rng := rand.New(rand.NewPCG(4, 4))
	nc, h, w := 6, 6, 5
	x, gy := randSlice(rng, nc*h*w), randSlice(rng, nc*(h/2)*(w/2))
	y := make([]float32, nc*(h/2)*(w/2))
	gx := make([]float32, nc*h*w)
	for pl := 0; pl < nc; pl++ {
		for i := 0; i < h/2; i++ {
			for j := 0; j < w/2; j++ {
				best, at := float32(-2), 0
				for _, o := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
					k := (pl*h+2*i+o[0])*w + 2*j + o[1]
					if x[k] > best {
						best, at = x[k], k
					}
				}
				y[(pl*(h/2)+i)*(w/2)+j] = best
				gx[at] = gy[(pl*(h/2)+i)*(w/2)+j]
			}
		}
	}
	xm, ym := upload(t, d, x), upload(t, d, make([]float32, len(y)))
	if err := d.MaxPool2(xm, ym, nc, h, w); err != nil {
		t.Fatal(err)
	}
	compare(t, "MaxPool2", download(t, d, ym), y, 1)
	gxm := upload(t, d, make([]float32, len(gx)))
	if err := d.MaxPool2Grad(xm, ym, upload(t, d, gy), gxm, nc, h, w); err != nil {
		t.Fatal(err)
	}
	compare(t, "MaxPool2Grad", download(t, d, gxm), gx, 1)
}

func TestAdadeltaKernel(t *testing.T) {
	d := open(t)
	rng := rand.New(rand.NewPCG(5, 5))
	n := 1000
	w, g := randSlice(rng, n), randSlice(rng, n)
	a, u := make([]float32, n), make([]float32, n)
	for i := range a {
		a[i], u[i] = float32(rng.Float64()), float32(rng.Float64())*1e-3
	}
	wm, am, um := upload(t, d, w), upload(t, d, a), upload(t, d, u)
	if err := d.Adadelta(wm, upload(t, d, g), am, um, n, 0.95, 1e-7, 1); err != nil {
		t.Fatal(err)
	}
	for i := range w {
		at := 0.95*float64(a[i]) + 0.05*float64(g[i])*float64(g[i])
		dl := float64(g[i]) * math.Sqrt(float64(u[i])+1e-7) / math.Sqrt(at+1e-7)
		w[i] -= float32(dl)
		a[i] = float32(at)
		u[i] = float32(0.95*float64(u[i]) + 0.05*dl*dl)
	}
	compare(t, "Adadelta w", download(t, d, wm), w, 1)
	compare(t, "Adadelta a", download(t, d, am), a, 1)
	compare(t, "Adadelta u", download(t, d, um), u, 1e-3)
}

// L2 normalization per sample and its gradient, against float64 CPU
// formulas; the second sample is all zeros (output and gradient 0).
func TestL2NormalizeKernels(t *testing.T) {
	d := open(t)
	rng := rand.New(rand.NewPCG(7, 7))
	n, m := 4, 784
	x, g := randSlice(rng, n*m), randSlice(rng, n*m)
	for j := m; j < 2*m; j++ {
		x[j] = 0
	}
	xm, gm := upload(t, d, x), upload(t, d, g)
	ym, gxm := upload(t, d, make([]float32, n*m)), upload(t, d, make([]float32, n*m))
	if err := d.L2Normalize(xm, ym, n, m, 10); err != nil {
		t.Fatal(err)
	}
	if err := d.L2NormalizeGrad(xm, gm, gxm, n, m, 10); err != nil {
		t.Fatal(err)
	}
	y, gx := make([]float32, n*m), make([]float32, n*m)
	for i := 0; i < n; i++ {
		var s, dot float64
		for j := i * m; j < (i+1)*m; j++ {
			s += float64(x[j]) * float64(x[j])
			dot += float64(x[j]) * float64(g[j])
		}
		if s == 0 {
			continue
		}
		nrm := math.Sqrt(s)
		for j := i * m; j < (i+1)*m; j++ {
			y[j] = float32(10 * float64(x[j]) / nrm)
			gx[j] = float32(10 * (float64(g[j])/nrm - float64(x[j])*dot/(nrm*nrm*nrm)))
		}
	}
	compare(t, "L2Normalize", download(t, d, ym), y, 1)
	compare(t, "L2NormalizeGrad", download(t, d, gxm), gx, 1)
}

// A sanity figure for the device log: time of the second convolution's
// forward product for a batch of 128 (cuBLAS strided batched).
func BenchmarkConv2Forward(b *testing.B) {
	d, err := Open(0)
	if err != nil {
		b.Skipf("no usable GPU: %v", err)
	}
	defer d.Close()
	rng := rand.New(rand.NewPCG(6, 6))
	n, c, h, w, f := 128, 32, 26, 26, 32
	K, P := c*9, 24*24
	x, _ := d.Alloc(n * c * h * w)
	d.Upload(x, randSlice(rng, n*c*h*w))
	wt, _ := d.Alloc(f * K)
	d.Upload(wt, randSlice(rng, f*K))
	col, _ := d.Alloc(n * K * P)
	y, _ := d.Alloc(n * f * P)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Im2col(x, col, n, c, h, w, 3, 3)
		d.SgemmStridedBatched(false, false, f, P, K, wt, K, 0, col, P, K*P, 0, y, P, f*P, n)
	}
	d.Sync()
	b.ReportMetric(float64(2*n*f*P*K)*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
}
