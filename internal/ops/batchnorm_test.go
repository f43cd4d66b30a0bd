package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

// Batch normalization against its definition in float64 (training and
// inference), its running averages, and its gradients with respect to x, γ
// and β against central differences, for images and flat features.
func TestBatchNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, xs := range []tensor.Shape{{4, 3, 2, 3}, {5, 4}} {
		c := xs[1]
		x := gradcheck.RandTensor(rng, -2, 3, xs...)
		gamma, beta := gradcheck.RandTensor(rng, 0.5, 1.5, c), gradcheck.RandTensor(rng, -1, 1, c)
		runMean, runVar := make([]float32, c), make([]float32, c)
		for i := range runVar {
			runVar[i] = 1
		}
		y, err := NewBatchNorm(len(xs), true, true, 1e-3, 0.9, runMean, runVar).Do(x, gamma, beta)
		if err != nil {
			t.Fatal(err)
		}
		n, _, p := bnLayout(xs)
		xd, yd := x.Data().([]float32), y.Data().([]float32)
		for ch := 0; ch < c; ch++ {
			var vals []float64
			for i := 0; i < n; i++ {
				for j := 0; j < p; j++ {
					vals = append(vals, float64(xd[(i*c+ch)*p+j]))
				}
			}
			var mean, v float64
			for _, a := range vals {
				mean += a / float64(len(vals))
			}
			for _, a := range vals {
				v += (a - mean) * (a - mean) / float64(len(vals))
			}
			k := 0
			for i := 0; i < n; i++ {
				for j := 0; j < p; j++ {
					want := float64(gamma.Data().([]float32)[ch])*(vals[k]-mean)/math.Sqrt(v+1e-3) + float64(beta.Data().([]float32)[ch])
					if got := float64(yd[(i*c+ch)*p+j]); math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
						t.Fatalf("%v: y[%d,%d,%d] = %v, want %v", xs, i, ch, j, got, want)
					}
					k++
				}
			}
			unbiased := v * float64(len(vals)) / float64(len(vals)-1)
			if math.Abs(float64(runMean[ch])-0.1*mean) > 1e-6 || math.Abs(float64(runVar[ch])-(0.9+0.1*unbiased)) > 1e-5 {
				t.Fatalf("%v: running averages %v, %v; want %v, %v", xs, runMean[ch], runVar[ch], 0.1*mean, 0.9+0.1*unbiased)
			}
		}
		// Inference uses the running averages; without update they stay.
		before := append([]float32(nil), runMean...)
		yi, err := NewBatchNorm(len(xs), false, false, 1e-3, 0.9, runMean, runVar).Do(x, gamma, beta)
		if err != nil {
			t.Fatal(err)
		}
		want := float64(gamma.Data().([]float32)[0])*(float64(xd[0])-float64(runMean[0]))/math.Sqrt(float64(runVar[0])+1e-3) + float64(beta.Data().([]float32)[0])
		if got := float64(yi.Data().([]float32)[0]); math.Abs(got-want) > 1e-5 {
			t.Fatalf("%v: inference y[0] = %v, want %v", xs, got, want)
		}
		if _, err := NewBatchNorm(len(xs), true, false, 1e-3, 0.9, runMean, runVar).Do(x, gamma, beta); err != nil || runMean[0] != before[0] {
			t.Fatalf("training without update moved the running mean: %v → %v (%v)", before[0], runMean[0], err)
		}
		for _, train := range []bool{true, false} { // batch statistics, then the fixed running ones
			gradcheck.Check(t, 43, gradcheck.Case{
				Name:   fmt.Sprint("BatchNorm ", xs, " train ", train),
				Inputs: []*tensor.Dense{x, gamma, beta},
				Wrt:    []int{0, 1, 2},
				Build: func(in []*G.Node) (*G.Node, error) {
					return G.ApplyOp(NewBatchNorm(len(xs), train, false, 1e-3, 0.9, runMean, runVar), in[0], in[1], in[2])
				},
			})
		}
	}
}
