package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// vecPaths runs f once per implementation this machine has: the portable
// loops, and the AVX2 ones where the CPU supports them.
func vecPaths(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := useAVX2
	defer func() { useAVX2 = saved }()
	paths := []struct {
		name string
		on   bool
	}{{"go", false}, {"avx2", true}}
	for _, p := range paths {
		if p.on && !cpu.X86.HasAVX2 {
			continue
		}
		useAVX2 = p.on
		t.Run(p.name, f)
	}
}

// specialFloats fills s with random values and, often, the values where a
// ReLU's sign tests differ: ±0, ±Inf, NaNs of both signs, subnormals.
func specialFloats(r *rand.Rand, s []float32) {
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc00000), math.Float32frombits(0xffc00001), math.Float32frombits(1), -math.Float32frombits(1)}
	for i := range s {
		if r.IntN(4) == 0 {
			s[i] = special[r.IntN(len(special))]
		} else {
			s[i] = float32(r.NormFloat64())
		}
	}
}

func sameBits(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// The elementwise loops against their definitions, element by element and
// bit for bit, at every length from 0 to 70 (so every tail after the
// eight-float blocks), on fresh random inputs.
func TestVecLoops(t *testing.T) {
	vecPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for n := 0; n <= 70; n++ {
			x, y, g := make([]float32, n+3), make([]float32, n+3), make([]float32, n+3)
			specialFloats(r, x)
			specialFloats(r, y)
			specialFloats(r, g)

			want := make([]float32, len(x))
			for i := range want {
				want[i] = x[i]
				if i < n {
					want[i] = x[i] + y[i]
				}
			}
			got := append([]float32(nil), x...)
			AddTo(got[:n], y)
			if i := sameBits(got, want); i >= 0 {
				t.Fatalf("AddTo n=%d: element %d = %v, want %v", n, i, got[i], want[i])
			}

			for _, op := range []struct {
				name string
				f    func(dst, a, b []float32)
				def  func(a, b float32) float32
			}{
				{"Add", Add, func(a, b float32) float32 { return a + b }},
				{"Mul", Mul, func(a, b float32) float32 { return a * b }},
			} {
				for i := range want {
					want[i] = -1
					if i < n {
						want[i] = op.def(x[i], y[i])
					}
				}
				for i := range got {
					got[i] = -1
				}
				op.f(got[:n], x, y)
				if i := sameBits(got, want); i >= 0 {
					t.Fatalf("%s n=%d: element %d = %v (%v, %v), want %v", op.name, n, i, got[i], x[i], y[i], want[i])
				}
			}

			for i := range want {
				want[i] = x[i]
				if i < n && (math.Signbit(float64(x[i]))) {
					want[i] = 0 // +0
				}
			}
			got = append(got[:0], x...)
			ReLU(got[:n])
			if i := sameBits(got, want); i >= 0 {
				t.Fatalf("ReLU n=%d: element %d = %v, want %v", n, i, got[i], want[i])
			}

			for i := range want {
				want[i] = -1
				if i < n {
					pos := y[i] > 0 || (math.IsNaN(float64(y[i])) && !math.Signbit(float64(y[i])))
					want[i] = 0
					if pos {
						want[i] = g[i]
					}
				}
			}
			Fill(got[:n], x[0])
			for i, v := range got[:n] {
				if math.Float32bits(v) != math.Float32bits(x[0]) {
					t.Fatalf("Fill n=%d: element %d = %v, want %v", n, i, v, x[0])
				}
			}
			for i := range got {
				got[i] = -1
			}
			ReLUMask(got, y[:n], g)
			if i := sameBits(got, want); i >= 0 {
				t.Fatalf("ReLUMask n=%d: element %d = %v (y %v, g %v), want %v", n, i, got[i], y[i], g[i], want[i])
			}
		}
	})
}

// The im2col gathers against a direct copy, for every split point of a
// row and both whole-row and two-run rows.
func TestGather16(t *testing.T) {
	vecPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 2))
		x := make([]float32, 500)
		specialFloats(r, x)
		off := []int{0, 3, 40, 41, 200, 300}
		for _, c0 := range []int{0, 5, 100} {
			dst := make([]float32, 16*len(off))
			gather16(dst, x, off, c0)
			for p, o := range off {
				if i := sameBits(dst[p*16:p*16+16], x[o+c0:o+c0+16]); i >= 0 {
					t.Fatalf("gather16 c0=%d row %d lane %d", c0, p, i)
				}
			}
			for l := 1; l < 16; l++ {
				for _, gap := range []int{0, 1, 2, 30} {
					c1 := c0 + l + gap
					gather16Split(dst, x, off, c0, c1, l)
					for p, o := range off {
						for tt := 0; tt < 16; tt++ {
							want := x[o+c0+tt]
							if tt >= l {
								want = x[o+c1+tt-l]
							}
							if math.Float32bits(dst[p*16+tt]) != math.Float32bits(want) {
								t.Fatalf("gather16Split c0=%d c1=%d l=%d row %d lane %d", c0, c1, l, p, tt)
							}
						}
					}
				}
			}
		}
	})
}

// The indexed gather against direct indexing, with scattered indices.
func TestGatherIdx16(t *testing.T) {
	vecPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 3))
		x := make([]float32, 1000)
		specialFloats(r, x)
		off := []int{0, 1, 2, 50, 51, 400}
		for range 20 {
			var idx [16]int
			for i := range idx {
				idx[i] = r.IntN(600)
			}
			dst := make([]float32, 16*len(off))
			gatherIdx16(dst, x, off, &idx)
			check(t, dst, x, off, &idx)
			// Runs of consecutive rows, as the transposing gather takes
			// them, broken at places.
			offT := make([]int, 0, 40)
			for o := 0; len(offT) < cap(offT); o++ {
				if r.IntN(10) != 0 {
					offT = append(offT, o)
				} else {
					o += r.IntN(3)
				}
			}
			dstT := make([]float32, 16*len(offT))
			gatherT16(dstT, x, offT, &idx)
			check(t, dstT, x, offT, &idx)
		}
	})
}

func check(t *testing.T, dst, x []float32, off []int, idx *[16]int) {
	t.Helper()
	for p, o := range off {
		for tt, v := range idx {
			if math.Float32bits(dst[p*16+tt]) != math.Float32bits(x[o+v]) {
				t.Fatalf("row %d (offset %d) lane %d: %v, want x[%d] = %v", p, o, tt, dst[p*16+tt], o+v, x[o+v])
			}
		}
	}
}

// The pooled row (the Go definition that MaxPool2Plane's AVX2 kernel is
// tested against) against the formula, at every width up to 40, with ties,
// signed zeros and NaNs planted among the candidates.
func TestMaxPool2Rows(t *testing.T) {
	vecPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 4))
		for n := 0; n <= 40; n++ {
			r0, r1 := make([]float32, 2*n+1), make([]float32, 2*n+1)
			specialFloats(r, r0)
			specialFloats(r, r1)
			for i := range r0 { // ties
				if r.IntN(8) == 0 {
					r1[i] = r0[i]
				}
			}
			out := make([]float32, n)
			MaxPool2Rows(out, r0, r1)
			for j := range out {
				c := []float32{r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1]}
				m := c[0]
				for _, v := range c[1:] {
					if v > m {
						m = v
					}
				}
				if math.Float32bits(out[j]) != math.Float32bits(m) {
					t.Fatalf("n=%d: out[%d] = %v, want %v of %v", n, j, out[j], m, c)
				}
			}
		}
	})
}

// The pool's gradient row against the definition (the first candidate equal
// to the pooled value takes the gradient, the rest get +0), at every width
// up to 40, with ties, NaNs, and pooled values that match no candidate.
func TestMaxPool2GradRows(t *testing.T) {
	vecPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 5))
		for n := 0; n <= 40; n++ {
			r0, r1 := make([]float32, 2*n), make([]float32, 2*n)
			specialFloats(r, r0)
			specialFloats(r, r1)
			for i := range r0 {
				if r.IntN(6) == 0 {
					r1[i] = r0[i]
				}
			}
			y, g := make([]float32, n), make([]float32, n)
			MaxPool2Rows(y, r0, r1)
			specialFloats(r, g)
			for j := range y {
				if r.IntN(10) == 0 {
					y[j] = 1234 // equal to no candidate
				}
			}
			gx0, gx1 := make([]float32, 2*n), make([]float32, 2*n)
			Fill(gx0, -7)
			Fill(gx1, -7)
			MaxPool2GradRows(gx0, gx1, r0, r1, y, g)
			for j := range y {
				want := [4]float32{}
				c := [4]float32{r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1]}
				k := 3
				for i, v := range c {
					if v == y[j] {
						k = i
						break
					}
				}
				want[k] = g[j]
				got := [4]float32{gx0[2*j], gx0[2*j+1], gx1[2*j], gx1[2*j+1]}
				if sameBits(got[:], want[:]) >= 0 {
					t.Fatalf("n=%d j=%d: %v, want %v (candidates %v, pooled %v)", n, j, got, want, c, y[j])
				}
			}
		}
	})
}

// AddRows against AddTo row by row, for widths around the eight-float
// blocks, strides wider than the rows, and nothing written between rows.
func TestAddRows(t *testing.T) {
	vecPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 6))
		for _, n := range []int{0, 1, 7, 8, 9, 24, 26} {
			for _, rows := range []int{0, 1, 5} {
				ldd, lds := n+3, n+1
				dst, src := make([]float32, rows*ldd+4), make([]float32, rows*lds+4)
				specialFloats(r, dst)
				specialFloats(r, src)
				want := append([]float32(nil), dst...)
				for i := 0; i < rows; i++ {
					for j := 0; j < n; j++ {
						want[i*ldd+j] = dst[i*ldd+j] + src[i*lds+j]
					}
				}
				AddRows(dst, src, rows, n, ldd, lds)
				if i := sameBits(dst, want); i >= 0 {
					t.Fatalf("n=%d rows=%d: dst[%d] = %v, want %v", n, rows, i, dst[i], want[i])
				}
			}
		}
	})
}

// The whole-plane pool and its gradient against the row functions above
// (tested against the definitions), bit for bit: every output width up to
// 40 (the eight-float blocks, the overlapping last block, the scalar path
// below eight), input rows with an odd column left over, elements outside
// the windows untouched by the gradient.
func TestMaxPool2Plane(t *testing.T) {
	vecPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 6))
		for _, oh := range []int{1, 2, 5, 12} {
			for ow := 1; ow <= 40; ow++ {
				for _, w := range []int{2 * ow, 2*ow + 1, 2*ow + 3} {
					h := 2*oh + 1
					x, g := make([]float32, h*w), make([]float32, oh*ow)
					specialFloats(r, x)
					specialFloats(r, g)
					for i := w; i < len(x); i++ { // ties between the rows
						if r.IntN(8) == 0 {
							x[i] = x[i-w]
						}
					}
					y, want := make([]float32, oh*ow+1), make([]float32, oh*ow+1)
					y[oh*ow], want[oh*ow] = -3, -3
					MaxPool2Plane(y, x, w, oh, ow)
					for i := 0; i < oh; i++ {
						MaxPool2Rows(want[i*ow:(i+1)*ow], x[2*i*w:], x[(2*i+1)*w:])
					}
					if i := sameBits(y, want); i >= 0 {
						t.Fatalf("MaxPool2Plane %dx%d w=%d: y[%d] = %v, want %v", oh, ow, w, i, y[i], want[i])
					}
					if ow > 1 && r.IntN(2) == 0 {
						y[r.IntN(oh*ow)] = 1234 // a pooled value no candidate equals
					}
					gx, gwant := make([]float32, h*w), make([]float32, h*w)
					Fill(gx, -7)
					Fill(gwant, -7)
					MaxPool2GradPlane(gx, x, y, g, w, oh, ow)
					for i := 0; i < oh; i++ {
						r0, r1 := 2*i*w, (2*i+1)*w
						MaxPool2GradRows(gwant[r0:], gwant[r1:], x[r0:], x[r1:], y[i*ow:(i+1)*ow], g[i*ow:])
					}
					if i := sameBits(gx, gwant); i >= 0 {
						t.Fatalf("MaxPool2GradPlane %dx%d w=%d: gx[%d] = %v, want %v", oh, ow, w, i, gx[i], gwant[i])
					}
				}
			}
		}
	})
}
