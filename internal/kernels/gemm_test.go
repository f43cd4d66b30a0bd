package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// naiveGemm is the definition, accumulated in float64.
func naiveGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				av := a[i*lda+p]
				if transA {
					av = a[p*lda+i]
				}
				bv := b[p*ldb+j]
				if transB {
					bv = b[j*ldb+p]
				}
				s += float64(av) * float64(bv)
			}
			c[i*ldc+j] = float32(s + float64(beta)*float64(c[i*ldc+j]))
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(2*rng.Float64() - 1)
	}
	return s
}

// The product against its definition, for shapes on and off the 6×16 tile
// and the 256-deep panels, every transpose, β 0 and 1, both kernels and the
// parallel driver. Tolerance: k products of magnitude <= 1 summed in float32
// carry about k·6e-8 of relative rounding each; 1e-5·k bounds it loosely.
func TestSgemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 20))
	defer setKernel(kernel)
	for _, asm := range supportedKernels() {
		setKernel(asm)
		for _, sh := range [][3]int{{1, 1, 1}, {6, 16, 1}, {7, 17, 3}, {32, 576, 288}, {13, 40, 300}, {128, 128, 600}, {100, 33, 0}, {5, 1100, 20}} {
			m, n, k := sh[0], sh[1], sh[2]
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				for _, beta := range []float32{0, 1} {
					for _, par := range []bool{false, true} {
						name := fmt.Sprintf("asm=%v %dx%dx%d trans=%v beta=%v par=%v", asm, m, n, k, tr, beta, par)
						lda, ldb, ldc := k+1, n+2, n+3 // strides wider than the matrices
						if tr[0] {
							lda = m + 1
						}
						if tr[1] {
							ldb = k + 2
						}
						a := randSlice(rng, max(m, k)*lda+1)
						b := randSlice(rng, max(n, k)*ldb+1)
						c := randSlice(rng, m*ldc)
						want := append([]float32(nil), c...)
						naiveGemm(tr[0], tr[1], m, n, k, a, lda, b, ldb, beta, want, ldc)
						if par {
							SgemmParallel(tr[0], tr[1], m, n, k, a, lda, b, ldb, beta, c, ldc)
						} else {
							Sgemm(tr[0], tr[1], m, n, k, a, lda, b, ldb, beta, c, ldc)
						}
						tol := 1e-5 * float64(k+1)
						for i := 0; i < m; i++ {
							for j := 0; j < ldc; j++ {
								if got, w := c[i*ldc+j], want[i*ldc+j]; math.Abs(float64(got-w)) > tol {
									t.Fatalf("%s: C[%d][%d] = %v, want %v", name, i, j, got, w)
								}
							}
						}
					}
				}
			}
		}
	}
}

// BenchmarkSgemm measures the product at the shape of the second
// convolution's forward pass for one image (32×576×288).
func BenchmarkSgemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	m, n, k := 32, 576, 288
	a, bb, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Sgemm(false, false, m, n, k, a, k, bb, n, 0, c, n)
	}
	b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// The product with an implicit im2col matrix against Sgemm on the
// materialized one, both orientations, shapes off the tile sizes.
func TestConvGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	for _, sh := range [][6]int{{1, 7, 6, 3, 3, 5}, {3, 9, 8, 3, 2, 7}, {32, 26, 26, 3, 3, 32}} {
		c, h, w, kh, kw, m := sh[0], sh[1], sh[2], sh[3], sh[4], sh[5]
		k, p := c*kh*kw, (h-kh+1)*(w-kw+1)
		x := randSlice(rng, c*h*w)
		col := make([]float32, k*p)
		im2col(col, x, c, h, w, kh, kw)
		// forward: C (m×p) = A (m×k) · col
		a := randSlice(rng, m*k)
		got, want := randSlice(rng, m*p), make([]float32, m*p)
		copy(want, got)
		packed := append([]float32(nil), got...)
		ConvGemm(false, false, m, p, k, a, k, x, c, h, w, kh, kw, 1, got, p)
		Sgemm(false, false, m, p, k, a, k, col, p, 1, want, p)
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-6*float64(k) {
				t.Fatalf("%v forward: [%d] %v, want %v", sh, i, got[i], want[i])
			}
		}
		var pa PackedA
		PackA(&pa, false, m, k, a, k)
		convGemmPacked(&pa, false, p, x, c, h, w, kh, kw, 1, packed, p)
		if i := sameBits(packed, got); i >= 0 {
			t.Fatalf("%v forward with A packed: [%d] %v, unpacked %v", sh, i, packed[i], got[i])
		}
		// With a bias: as filling each row with it and adding the product.
		bias := randSlice(rng, m)
		bias[0] = float32(math.Copysign(0, -1))
		filled, withBias := make([]float32, m*p), randSlice(rng, m*p)
		for i := range m {
			Fill(filled[i*p:(i+1)*p], bias[i])
		}
		convGemmPacked(&pa, false, p, x, c, h, w, kh, kw, 1, filled, p)
		ConvGemmBias(&pa, p, x, c, h, w, kh, kw, bias, withBias, p)
		if i := sameBits(withBias, filled); i >= 0 {
			t.Fatalf("%v forward with bias: [%d] %v, filled and added %v", sh, i, withBias[i], filled[i])
		}
		// filter gradient: C (m×k) = G (m×p) · colᵀ
		g := randSlice(rng, m*p)
		got, want = make([]float32, m*k), make([]float32, m*k)
		ConvGemm(false, true, m, k, p, g, p, x, c, h, w, kh, kw, 0, got, k)
		Sgemm(false, true, m, k, p, g, p, col, p, 0, want, k)
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-6*float64(p) {
				t.Fatalf("%v transposed: [%d] %v, want %v", sh, i, got[i], want[i])
			}
		}
	}
}

// A packed once gives bit for bit the product that packs it on the fly:
// shapes with several row blocks (m > 96), several depth panels (k > 256),
// edge tiles, and both orientations of A.
func TestSgemmPacked(t *testing.T) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), 22))
	for _, sh := range [][3]int{{288, 576, 32}, {32, 576, 288}, {200, 37, 600}, {5, 17, 3}, {97, 300, 513}} {
		m, n, k := sh[0], sh[1], sh[2]
		for _, transA := range []bool{false, true} {
			a, b := randSlice(rng, m*k), randSlice(rng, k*n)
			lda := k
			if transA {
				lda = m
			}
			for _, beta := range []float32{0, 1} {
				want := randSlice(rng, m*n)
				got := append([]float32(nil), want...)
				Sgemm(transA, false, m, n, k, a, lda, b, n, beta, want, n)
				var pa PackedA
				PackA(&pa, transA, m, k, a, lda)
				sgemmPacked(&pa, false, n, b, n, beta, got, n)
				if i := sameBits(got, want); i >= 0 {
					t.Fatalf("%v transA=%v beta=%v: [%d] %v, unpacked %v", sh, transA, beta, i, got[i], want[i])
				}
			}
		}
	}
}

// im2col materializes the matrix that im2colB gathers (the test's
// reference): the receptive fields of one C×H×W image into col, a
// (C·KH·KW)×(OH·OW) row-major matrix: col[(c·KH+p)·KW+q][i·OW+j] = x[c][i+p][j+q].
func im2col(col, x []float32, c, h, w, kh, kw int) {
	oh, ow := h-kh+1, w-kw+1
	r := 0
	for ci := 0; ci < c; ci++ {
		for p := 0; p < kh; p++ {
			for q := 0; q < kw; q++ {
				dst := col[r*oh*ow : (r+1)*oh*ow]
				for i := 0; i < oh; i++ {
					src := x[(ci*h+i+p)*w+q:]
					copy(dst[i*ow:(i+1)*ow], src[:ow])
				}
				r++
			}
		}
	}
}

// The fused input gradient against the product stored whole and a direct
// col2im, bit for bit: the MNIST network's two convolutions, odd shapes,
// outputs narrower than a tile, and more than 256 filters (the unfused
// path).
func TestConvInputGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), 23))
	for _, sh := range [][6]int{{32, 26, 26, 3, 3, 32}, {1, 28, 28, 3, 3, 32}, {3, 9, 8, 3, 2, 7}, {2, 5, 6, 2, 2, 300}, {5, 4, 4, 3, 3, 4}} {
		c, h, w, kh, kw, f := sh[0], sh[1], sh[2], sh[3], sh[4], sh[5]
		k, oh, ow := c*kh*kw, h-kh+1, w-kw+1
		p := oh * ow
		wt, gy := randSlice(rng, f*k), randSlice(rng, f*p)
		var pa PackedA
		PackA(&pa, true, k, f, wt, k)
		col := make([]float32, k*p)
		Sgemm(true, false, k, p, f, wt, k, gy, p, 0, col, p)
		want := make([]float32, c*h*w)
		for r := 0; r < k; r++ { // col2im, written out
			ci, pp, q := r/(kh*kw), (r/kw)%kh, r%kw
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					want[(ci*h+i+pp)*w+j+q] += col[r*p+i*ow+j]
				}
			}
		}
		got := randSlice(rng, c*h*w+5) // stale contents, and a tail it must not touch
		tail := append([]float32(nil), got[c*h*w:]...)
		ConvInputGrad(&pa, gy, got, c, h, w, kh, kw)
		if i := sameBits(got[:c*h*w], want); i >= 0 {
			t.Fatalf("%v: gx[%d] = %v, want %v", sh, i, got[i], want[i])
		}
		if sameBits(got[c*h*w:], tail) >= 0 {
			t.Fatalf("%v: wrote past the image", sh)
		}
	}
}

// packA against its definition, on both paths of this machine, for panel
// depths around the eight-column blocks and rows short of a whole panel.
func TestPackA(t *testing.T) {
	vecPaths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 24))
		for _, kc := range []int{1, 7, 8, 9, 16, 17, 31, 144, 288} {
			for _, mc := range []int{6, 12, 5, 14} {
				const lda, pc, ic = 300, 3, 2
				a := randSlice(rng, (max(ic+mc, pc+kc)+1)*lda)
				for _, transA := range []bool{false, true} {
					dst := randSlice(rng, ceilDiv(mc, gemmMR)*gemmMR*kc)
					packA(dst, transA, a, lda, ic, mc, pc, kc)
					for r := 0; r*gemmMR < mc; r++ {
						for p := 0; p < kc; p++ {
							for i := 0; i < gemmMR; i++ {
								var want float32
								if row := ic + r*gemmMR + i; r*gemmMR+i < mc {
									want = a[row*lda+pc+p]
									if transA {
										want = a[(pc+p)*lda+row]
									}
								}
								if got := dst[r*kc*gemmMR+p*gemmMR+i]; got != want {
									t.Fatalf("kc=%d mc=%d trans=%v: panel %d [%d][%d] = %v, want %v", kc, mc, transA, r, p, i, got, want)
								}
							}
						}
					}
				}
			}
		}
	})
}

// The micro-kernel's variants against the six-row kernel, bit for bit: the
// four-row one gives its first four rows; the overwriting one gives what
// zeroing the tile and adding gives (A with zeros, so that some products
// are ±0). Depths around the unrolling.
func TestKernelVariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), 25))
	for _, k := range []int{0, 1, 2, 7, 32, 144, 288} {
		a, b := randSlice(rng, gemmMR*k+1), randSlice(rng, k*gemmNR+1)
		for i := range a {
			if rng.IntN(3) == 0 {
				a[i] = float32(math.Copysign(0, float64(rng.IntN(2)*2-1)))
			}
		}
		c6 := randSlice(rng, gemmMR*gemmNR)
		c4 := append([]float32(nil), c6...)
		kernel6x16(k, a, b, c6, gemmNR)
		kernel4x16(k, a, b, c4, gemmNR)
		if i := sameBits(c4[:4*gemmNR], c6[:4*gemmNR]); i >= 0 && k > 0 {
			t.Fatalf("k=%d: 4x16 [%d] %v, six-row kernel %v", k, i, c4[i], c6[i])
		}
		zeroed := make([]float32, gemmMR*gemmNR)
		set := randSlice(rng, gemmMR*gemmNR)
		kernel6x16(k, a, b, zeroed, gemmNR)
		kernel6x16Set(k, a, b, set, gemmNR)
		if i := sameBits(set, zeroed); i >= 0 {
			t.Fatalf("k=%d: set [%d] %v, zeroed and added %v", k, i, set[i], zeroed[i])
		}
		bias := randSlice(rng, gemmMR)
		bias[1] = float32(math.Copysign(0, -1))
		filled, withBias := make([]float32, gemmMR*gemmNR), randSlice(rng, gemmMR*gemmNR)
		fillTile(filled, gemmNR, bias)
		kernel6x16(k, a, b, filled, gemmNR)
		kernel6x16Bias(k, a, b, withBias, gemmNR, bias)
		if i := sameBits(withBias, filled); i >= 0 {
			t.Fatalf("k=%d: bias [%d] %v, filled and added %v", k, i, withBias[i], filled[i])
		}
	}
}

// sgemmPacked is Sgemm with op(A) packed by PackA (m×k): the products
// take a packed A through gemmBlock, and this exercises that path on shapes
// the convolutions do not reach.
func sgemmPacked(a *PackedA, transB bool, n int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	s := gemmPool.Get().(*gemmScratch)
	s.dense = denseB{b: b, ldb: ldb, trans: transB}
	gemmBlock(s, a, false, a.m, 0, n, a.k, nil, 0, &s.dense, beta, nil, c, ldc)
	s.dense = denseB{}
	gemmPool.Put(s)
}

// convGemmPacked is ConvGemm with op(A) packed by PackA: the reference for
// ConvGemmBias (fill, then add the product).
func convGemmPacked(a *PackedA, transB bool, n int, x []float32, c_, h, w, kh, kw int, beta float32, c []float32, ldc int) {
	s := gemmPool.Get().(*gemmScratch)
	s.conv = im2colB{x: x, c: c_, h: h, w: w, kh: kh, kw: kw, trans: transB}
	gemmBlock(s, a, false, a.m, 0, n, a.k, nil, 0, &s.conv, beta, nil, c, ldc)
	s.conv = im2colB{}
	gemmPool.Put(s)
}

// The AVX-512 kernels give the AVX2 kernel's bits: every row count from 1
// to 50 (whole 24- and 12-row tiles and every remainder), columns on and
// off the 16-wide panels, depths around the two-step unrolling and the
// 256-deep panels, β 0 and 1 and the bias mode, with signed zeros in A.
// Both kernels are also held to the float64 definition by TestSgemm.
func TestAVX512MatchesAVX2(t *testing.T) {
	if !slices.Contains(supportedKernels(), kernelAVX512) {
		t.Skipf("this CPU has no AVX-512F (kernels: %v)", supportedKernels())
	}
	defer setKernel(kernel)
	rng := rand.New(rand.NewPCG(rand.Uint64(), 26))
	run := func(k kernelSet, f func()) { setKernel(k); f() }
	for m := 1; m <= 50; m++ {
		for _, n := range []int{16, 7, 33} {
			for _, k := range []int{0, 1, 2, 3, 16, 255, 257} {
				a, b := randSlice(rng, m*k+1), randSlice(rng, k*n+1)
				for i := range a {
					if rng.IntN(5) == 0 {
						a[i] = float32(math.Copysign(0, float64(rng.IntN(2)*2-1)))
					}
				}
				bias := randSlice(rng, m)
				c0 := randSlice(rng, m*n)
				for mode, beta := range []float32{0, 1, 0} {
					var got [2][]float32
					for i, ks := range []kernelSet{kernelAVX2, kernelAVX512} {
						c := append([]float32(nil), c0...)
						run(ks, func() {
							if mode == 2 {
								s := gemmPool.Get().(*gemmScratch)
								s.dense = denseB{b: b, ldb: n}
								gemmBlock(s, nil, false, m, 0, n, k, a, k, &s.dense, 0, bias, c, n)
								s.dense = denseB{}
								gemmPool.Put(s)
								return
							}
							Sgemm(false, false, m, n, k, a, k, b, n, beta, c, n)
						})
						got[i] = c
					}
					if i := sameBits(got[1], got[0]); i >= 0 {
						t.Fatalf("m=%d n=%d k=%d mode=%d: C[%d] = %v on avx512, %v on avx2", m, n, k, mode, i, got[1][i], got[0][i])
					}
				}
			}
		}
	}
}

// Kernel choice: the best supported set by default, VAT_KERNEL's when the
// CPU supports it, and a message naming the variable otherwise.
func TestChooseKernel(t *testing.T) {
	all := []kernelSet{kernelGo, kernelAVX2, kernelAVX512}
	for _, tc := range []struct {
		env       string
		supported []kernelSet
		want      kernelSet
		warn      bool
	}{
		{"", all, kernelAVX512, false},
		{"", all[:2], kernelAVX2, false},
		{"go", all, kernelGo, false},
		{"avx2", all, kernelAVX2, false},
		{"AVX2+FMA", all, kernelAVX2, false},
		{"avx512", all[:2], kernelAVX2, true},
		{"neon", all, kernelAVX512, true},
	} {
		var w strings.Builder
		if got := chooseKernel(tc.env, tc.supported, &w); got != tc.want || (w.Len() > 0) != tc.warn {
			t.Errorf("chooseKernel(%q, %v) = %v, message %q; want %v, message %v", tc.env, tc.supported, got, w.String(), tc.want, tc.warn)
		}
		if tc.warn && !strings.Contains(w.String(), "VAT_KERNEL") {
			t.Errorf("%q: message %q does not name VAT_KERNEL", tc.env, w.String())
		}
	}
}

// The parallel driver with A packed once and shared (m > gemmWholeA) gives
// Sgemm's bits: tall A in both orientations, row counts off the panels,
// several depth panels, β 0 and 1, on 2 and 3 workers.
func TestSgemmParallelSharedA(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	rng := rand.New(rand.NewPCG(rand.Uint64(), 27))
	for _, workers := range []int{2, 3} {
		runtime.GOMAXPROCS(workers)
		for _, sh := range [][3]int{{577, 64, 40}, {1000, 100, 300}, {4608, 128, 17}} {
			m, n, k := sh[0], sh[1], sh[2]
			for _, transA := range []bool{false, true} {
				lda := k
				if transA {
					lda = m
				}
				a, b := randSlice(rng, m*k), randSlice(rng, k*n)
				for _, beta := range []float32{0, 1} {
					want := randSlice(rng, m*n)
					got := append([]float32(nil), want...)
					Sgemm(transA, false, m, n, k, a, lda, b, n, beta, want, n)
					SgemmParallel(transA, false, m, n, k, a, lda, b, n, beta, got, n)
					if i := sameBits(got, want); i >= 0 {
						t.Fatalf("%d workers %v transA=%v beta=%v: [%d] %v, Sgemm %v", workers, sh, transA, beta, i, got[i], want[i])
					}
				}
			}
		}
	}
}
