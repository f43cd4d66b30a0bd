package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

func TestMaskMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 11))
	x, ref := gradcheck.RandTensor(r, -1, 1, 3, 7), gradcheck.RandTensor(r, -1, 1, 3, 7)
	y, err := NewMask().Do(x, ref)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range x.Data().([]float32) {
		want := float32(0)
		if ref.Data().([]float32)[i] > 0 {
			want = v
		}
		if got := y.Data().([]float32)[i]; got != want {
			t.Fatalf("element %d: %v, want %v", i, got, want)
		}
	}
	gradcheck.Check(t, 51, gradcheck.Case{Name: "Mask", Inputs: []*tensor.Dense{x, ref}, Wrt: []int{0},
		Build: func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(NewMask(), in[0], in[1]) }})
}

func TestPoolSelectMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 12))
	x, ref := gradcheck.RandTensor(r, -1, 1, 2, 3, 4, 5), gradcheck.RandTensor(r, -1, 1, 2, 3, 4, 5)
	refOut, err := NewMaxPool().Do(ref)
	if err != nil {
		t.Fatal(err)
	}
	y, err := NewPoolSelect().Do(x, ref, refOut)
	if err != nil {
		t.Fatal(err)
	}
	xd, rd, yd := x.Data().([]float32), ref.Data().([]float32), y.Data().([]float32)
	for p := 0; p < 6; p++ {
		for i := 0; i < 2; i++ {
			for j := 0; j < 2; j++ {
				best := -1
				for _, k := range []int{(2*i)*5 + 2*j, (2*i)*5 + 2*j + 1, (2*i+1)*5 + 2*j, (2*i+1)*5 + 2*j + 1} {
					if best < 0 || rd[p*20+k] > rd[p*20+best] {
						best = k
					}
				}
				if got, want := yd[p*4+i*2+j], xd[p*20+best]; got != want {
					t.Fatalf("plane %d, window (%d, %d): %v, want %v", p, i, j, got, want)
				}
			}
		}
	}
	gradcheck.Check(t, 52, gradcheck.Case{Name: "PoolSelect", Inputs: []*tensor.Dense{x, ref, refOut.(*tensor.Dense)}, Wrt: []int{0},
		Build: func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(NewPoolSelect(), in[0], in[1], in[2]) }})
}

func TestBatchNormTangentMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 13))
	for _, shape := range [][]int{{6, 4}, {3, 2, 3, 3}} {
		c := shape[1]
		x, tt := gradcheck.RandTensor(r, -2, 2, shape...), gradcheck.RandTensor(r, -1, 1, shape...)
		gamma, beta := gradcheck.RandTensor(r, 0.5, 1.5, c), gradcheck.RandTensor(r, -1, 1, c)
		fwd := NewBatchNorm(len(shape), true, false, 1e-3, 0.99, make([]float32, c), make([]float32, c))
		fwdOut, err := fwd.Do(x, gamma, beta)
		if err != nil {
			t.Fatal(err)
		}
		op, err := NewBatchNormTangent(fwd)
		if err != nil {
			t.Fatal(err)
		}
		y, err := op.Do(tt, gamma, fwdOut)
		if err != nil {
			t.Fatal(err)
		}
		// The definition: the directional derivative of batch
		// normalization along t, the batch's statistics recomputed from the
		// moved batch, by central differences in float64.
		n, p := shape[0], len(x.Data().([]float32))/(shape[0]*c)
		bn := func(step float64) []float64 {
			xs, ts, g := x.Data().([]float32), tt.Data().([]float32), gamma.Data().([]float32)
			out := make([]float64, len(xs))
			for ch := 0; ch < c; ch++ {
				var s, s2 float64
				at := func(i, j int) int { return (i*c+ch)*p + j }
				v := func(i, j int) float64 { return float64(xs[at(i, j)]) + step*float64(ts[at(i, j)]) }
				for i := 0; i < n; i++ {
					for j := 0; j < p; j++ {
						s += v(i, j)
					}
				}
				mean := s / float64(n*p)
				for i := 0; i < n; i++ {
					for j := 0; j < p; j++ {
						s2 += (v(i, j) - mean) * (v(i, j) - mean)
					}
				}
				inv := 1 / math.Sqrt(s2/float64(n*p)+1e-3)
				for i := 0; i < n; i++ {
					for j := 0; j < p; j++ {
						out[at(i, j)] = float64(g[ch]) * (v(i, j) - mean) * inv
					}
				}
			}
			return out
		}
		const h = 1e-5
		plus, minus := bn(h), bn(-h)
		for at, got := range y.Data().([]float32) {
			if want := (plus[at] - minus[at]) / (2 * h); math.Abs(float64(got)-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Fatalf("%v: element %d: %v, want %v", shape, at, got, want)
			}
		}
		gradcheck.Check(t, 53, gradcheck.Case{Name: "BatchNormTangent", Inputs: []*tensor.Dense{tt, gamma, fwdOut.(*tensor.Dense).Clone().(*tensor.Dense)}, Wrt: []int{0},
			Build: func(in []*G.Node) (*G.Node, error) {
				op, _ := NewBatchNormTangent(fwd)
				return G.ApplyOp(op, in[0], in[1], in[2])
			}})
	}
	if _, err := NewBatchNormTangent(NewMask()); err == nil {
		t.Error("NewBatchNormTangent accepted a mask op")
	}
}

// TestFisherQuadraticIsKLCurvature checks the op against the KL divergence
// itself, in float64: KL(p ‖ softmax(z + h·a)) / h² → ½ aᵀFa as h → 0.
func TestFisherQuadraticIsKLCurvature(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 14))
	z, a := gradcheck.RandTensor(r, -3, 3, 4, 5), gradcheck.RandTensor(r, -1, 1, 4, 5)
	got, err := NewFisherQuadratic().Do(z, a)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := Scalar32("test", 0, got)
	const h = 1e-4
	var kl float64
	zd, ad := z.Data().([]float32), a.Data().([]float32)
	lp, lq := make([]float64, 5), make([]float64, 5)
	for i := 0; i < 4; i++ {
		LogSoftmax(lp, zd[i*5:(i+1)*5])
		// log softmax(z + h·a) in float64 directly (float32 inputs would lose h·a)
		mx := math.Inf(-1)
		for k := range lq {
			lq[k] = float64(zd[i*5+k]) + h*float64(ad[i*5+k])
			mx = math.Max(mx, lq[k])
		}
		var s float64
		for k := range lq {
			s += math.Exp(lq[k] - mx)
		}
		for k := range lq {
			lq[k] -= mx + math.Log(s)
			kl += math.Exp(lp[k]) * (lp[k] - lq[k])
		}
	}
	if want := kl / (h * h); math.Abs(float64(q)-want) > 1e-3*math.Max(1, math.Abs(want)) {
		t.Fatalf("FisherQuadratic %v, KL/h² %v", q, want)
	}
	gradcheck.Check(t, 54, gradcheck.Case{Name: "FisherQuadratic", Inputs: []*tensor.Dense{z, a}, Wrt: []int{1},
		Build: func(in []*G.Node) (*G.Node, error) { return G.ApplyOp(NewFisherQuadratic(), in[0], in[1]) }})
}
