package vat

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/org/vat/internal/ref64"
)

// TestPopulationStats against the definition in float64, on fresh random
// weights and data: each BatchNorm layer's running averages become the
// mean over batches of its input's batch mean and unbiased variance, the
// input computed with every earlier batch norm on its batch's statistics.
func TestPopulationStats(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 61))
	const in, hid, out, n, batch = 5, 6, 3, 23, 7 // three batches of 7; the last 2 samples left out
	m, err := Sequential([]int{in}, r.Uint64(), Dense(hid), BatchNorm(), ReLU(), Dense(out), BatchNorm())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.params {
		for i, d := 0, p.Value.Data().([]float32); i < len(d); i++ {
			d[i] = float32(r.NormFloat64())
		}
	}
	x := make([]float32, n*in)
	for i := range x {
		x[i] = float32(2 + r.NormFloat64())
	}
	d, err := NewUnlabeled(x, []int{in})
	if err != nil {
		t.Fatal(err)
	}
	p := func(i int) []float64 { return ref64.Of(m.params[i].Value.Data().([]float32)) }
	w1, b1, g1, be1, w2, b2 := p(0), p(1), p(2), p(3), p(4), p(5)
	dense := func(h []float64, w, b []float64, k int) []float64 {
		o := make([]float64, k)
		for j := range o {
			o[j] = b[j]
			for i, v := range h {
				o[j] += v * w[i*k+j]
			}
		}
		return o
	}
	// stats returns the batch's mean and unbiased variance per feature.
	stats := func(hs [][]float64) (mean, uvar, invStd []float64) {
		k := len(hs[0])
		mean, uvar, invStd = make([]float64, k), make([]float64, k), make([]float64, k)
		for _, h := range hs {
			for j, v := range h {
				mean[j] += v / float64(len(hs))
			}
		}
		for j := range mean {
			var s float64
			for _, h := range hs {
				s += (h[j] - mean[j]) * (h[j] - mean[j])
			}
			uvar[j] = s / float64(len(hs)-1)
			invStd[j] = 1 / math.Sqrt(s/float64(len(hs))+batchNormEps)
		}
		return
	}
	want := [2][2][]float64{{make([]float64, hid), make([]float64, hid)}, {make([]float64, out), make([]float64, out)}}
	for first := 0; first+batch <= n; first += batch {
		var h1 [][]float64
		for i := first; i < first+batch; i++ {
			h1 = append(h1, dense(ref64.Of(x[i*in:(i+1)*in]), w1, b1, hid))
		}
		mu1, v1, inv1 := stats(h1)
		var h2 [][]float64
		for _, h := range h1 {
			a := make([]float64, hid)
			for j := range a {
				a[j] = math.Max(0, g1[j]*(h[j]-mu1[j])*inv1[j]+be1[j])
			}
			h2 = append(h2, dense(a, w2, b2, out))
		}
		mu2, v2, _ := stats(h2)
		for j := range mu1 {
			want[0][0][j] += mu1[j] / 3
			want[0][1][j] += v1[j] / 3
		}
		for j := range mu2 {
			want[1][0][j] += mu2[j] / 3
			want[1][1][j] += v2[j] / 3
		}
	}
	if err := m.PopulationStats(d, batch); err != nil {
		t.Fatal(err)
	}
	k := 0
	for i, st := range m.stats {
		if st == nil {
			continue
		}
		for s := 0; s < 2; s++ {
			for j, v := range st[s] {
				if w := want[k][s][j]; math.Abs(float64(v)-w) > 1e-4*math.Max(1, math.Abs(w)) {
					t.Errorf("layer %d, %s %d: %v, float64 definition %v", i, []string{"mean", "variance"}[s], j, v, w)
				}
			}
		}
		k++
	}
	if k != 2 {
		t.Fatalf("%d layers with statistics, want 2", k)
	}
	if err := m.PopulationStats(d, -1); err == nil {
		t.Error("batch -1 accepted")
	}
}
