package rng

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// Random123's known answers for Philox4x32-10 (its kat_vectors file):
// counter, key, output.
func TestPhilox4x32KnownAnswers(t *testing.T) {
	for _, c := range []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)}, [2]uint32{^uint32(0), ^uint32(0)},
			[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
			[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	} {
		if got := Philox4x32(c.ctr, c.key); got != c.want {
			t.Errorf("Philox4x32(%08x, %08x) = %08x, want %08x", c.ctr, c.key, got, c.want)
		}
	}
}

// PhiloxNormals is a function of (key, index): a shorter fill is a prefix
// of a longer one at every length, and another key gives other values.
func TestPhiloxNormalsIndexed(t *testing.T) {
	long := make([]float32, 103)
	PhiloxNormals(long, 7)
	for n := 0; n <= len(long); n++ {
		short := make([]float32, n)
		PhiloxNormals(short, 7)
		if !slices.Equal(short, long[:n]) {
			t.Fatalf("a fill of %d values is not the first %d of a fill of %d", n, n, len(long))
		}
	}
	other := make([]float32, len(long))
	PhiloxNormals(other, 8)
	same := 0
	for i := range other {
		if other[i] == long[i] {
			same++
		}
	}
	if same > 0 {
		t.Errorf("keys 7 and 8 share %d of %d values", same, len(long))
	}
}

// The draws are N(0, 1): the first four moments and the Kolmogorov–Smirnov
// distance to Φ over a million values of a fixed key. Bounds are about four
// standard errors of each statistic (the KS bound is the 0.1 % critical
// value, 1.95/√n), so a correct generator passes and a wrong transform
// (say, θ = π·u, or r without the factor 2) fails by far.
func TestPhiloxNormalsDistribution(t *testing.T) {
	const n = 1 << 20
	x := make([]float32, n)
	PhiloxNormals(x, 0x5eed)
	var m1, m2, m3, m4 float64
	for _, v := range x {
		f := float64(v)
		m1 += f
		m2 += f * f
		m3 += f * f * f
		m4 += f * f * f * f
	}
	m1, m2, m3, m4 = m1/n, m2/n, m3/n, m4/n
	se := 1 / math.Sqrt(n)
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"mean", m1, 0, 4 * se},
		{"E[x²]", m2, 1, 4 * math.Sqrt(2) * se},
		{"E[x³]", m3, 0, 4 * math.Sqrt(15) * se},
		{"E[x⁴]", m4, 3, 4 * math.Sqrt(96) * se},
	} {
		if math.Abs(c.got-c.want) > c.tol {
			t.Errorf("%s = %.5f, want %g ± %.5f", c.name, c.got, c.want, c.tol)
		}
	}
	s := make([]float64, n)
	for i, v := range x {
		s[i] = float64(v)
	}
	sort.Float64s(s)
	var d float64
	for i, v := range s {
		phi := 0.5 * math.Erfc(-v/math.Sqrt2)
		d = math.Max(d, math.Max(math.Abs(phi-float64(i)/n), math.Abs(float64(i+1)/n-phi)))
	}
	if lim := 1.95 / math.Sqrt(n); d > lim {
		t.Errorf("Kolmogorov–Smirnov distance to N(0, 1) = %.5f, want ≤ %.5f", d, lim)
	}
}

// BernoulliKey against a plain reading of its definition: per chunk of
// ChunkLen values, the PCG seeded (k, SplitMix64(c)); each 64-bit draw
// decides two entries, low half first, by comparison with the threshold.
// Lengths around chunk boundaries and odd lengths; thresholds 0 and 2³²
// keep nothing and everything.
func TestBernoulliKeyDefinition(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, ChunkLen - 1, ChunkLen, ChunkLen + 1, 3*ChunkLen + 5} {
		for _, keep := range []float64{0, 0.25, 0.5, 1} {
			const k, v = 0x1234_5678_9abc_def0, float32(4. / 3)
			got := make([]float32, n)
			BernoulliKey(got, k, Threshold(keep), v)
			want := make([]float32, n)
			thr := uint64(keep * 4294967296)
			for c := 0; c*ChunkLen < n; c++ {
				src := rand.NewPCG(k, SplitMix64(uint64(c)))
				hi := min((c+1)*ChunkLen, n)
				for i := c * ChunkLen; i < hi; i += 2 {
					u := src.Uint64()
					for h, half := range [2]uint64{u & 0xffffffff, u >> 32} {
						if i+h < hi && half < thr {
							want[i+h] = v
						}
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("n = %d, keep = %g: BernoulliKey differs from its definition", n, keep)
			}
			kept := 0
			for _, m := range got {
				if m == v {
					kept++
				}
			}
			switch {
			case keep == 0 && kept != 0, keep == 1 && kept != n:
				t.Fatalf("n = %d, keep = %g: %d kept", n, keep, kept)
			case n > 1000 && math.Abs(float64(kept)/float64(n)-keep) > 4*math.Sqrt(keep*(1-keep)/float64(n))+1e-12:
				t.Errorf("n = %d, keep = %g: kept a fraction %.4f", n, keep, float64(kept)/float64(n))
			}
		}
	}
}

// Chunked's fills are its key's fills, and the key sequence restarts with
// SetFills: a resumed generator continues where the saved one stopped.
func TestChunkedKeys(t *testing.T) {
	a := NewChunked(99)
	m1 := make([]float32, 5000)
	a.Bernoulli(m1, 0.5, 2)
	b := NewChunked(99)
	want := make([]float32, 5000)
	BernoulliKey(want, b.Next(), Threshold(0.5), 2)
	if !slices.Equal(m1, want) {
		t.Fatal("Chunked.Bernoulli is not BernoulliKey with the generator's next key")
	}
	k2 := a.Next()
	c := NewChunked(99)
	c.SetFills(1)
	if c.Next() != k2 {
		t.Fatal("SetFills(1) does not continue after the first fill")
	}
}
