package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

// balance64 is KL(p̄ ‖ π) written out in float64 from the definition,
// independently of the op: softmax rows, their mean, the sum.
func balance64(z []float64, n, k int, prior []float64) float64 {
	mean := make([]float64, k)
	for i := 0; i < n; i++ {
		var s float64
		for j := 0; j < k; j++ {
			s += math.Exp(z[i*k+j])
		}
		for j := 0; j < k; j++ {
			mean[j] += math.Exp(z[i*k+j]) / s / float64(n)
		}
	}
	var kl float64
	for j, m := range mean {
		kl += m * math.Log(m/prior[j])
	}
	return kl
}

// TestClassBalance checks the loss against its float64 definition and its
// gradient against central differences of that definition, on fresh
// random logits and priors, uniform and not; a prior of the wrong length
// is refused.
func TestClassBalance(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 5))
	for _, tc := range []struct{ n, k int }{{1, 2}, {7, 3}, {32, 10}} {
		for _, uniform := range []bool{true, false} {
			prior := make([]float64, tc.k)
			var sum float64
			for j := range prior {
				prior[j] = 1
				if !uniform {
					prior[j] = 0.2 + r.Float64()
				}
				sum += prior[j]
			}
			for j := range prior {
				prior[j] /= sum
			}
			zt := gradcheck.RandTensor(r, -4, 4, tc.n, tc.k)
			z32 := zt.Data().([]float32)
			z := make([]float64, len(z32))
			for i, v := range z32 {
				z[i] = float64(v)
			}
			op := NewClassBalance(prior)
			v, err := op.Do(zt)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := Scalar32("test", 0, v)
			want := balance64(z, tc.n, tc.k, prior)
			if math.Abs(float64(got)-want) > 1e-6*math.Max(1, want) {
				t.Errorf("%d×%d uniform=%v: KL = %v, want %v", tc.n, tc.k, uniform, got, want)
			}
			const up = 1.7 // the upstream gradient, not 1, so that a missing factor shows
			gv, err := (&balanceGradOp{opBase: newOpBase("ClassBalanceGrad"), of: op.(*balanceOp)}).Do(zt, tensor.New(tensor.FromScalar(float32(up))))
			if err != nil {
				t.Fatal(err)
			}
			grad := gv.(*tensor.Dense).Data().([]float32)
			const h = 1e-5
			for i := range z {
				z0 := z[i]
				z[i] = z0 + h
				fp := balance64(z, tc.n, tc.k, prior)
				z[i] = z0 - h
				fm := balance64(z, tc.n, tc.k, prior)
				z[i] = z0
				fd := up * (fp - fm) / (2 * h)
				if math.Abs(float64(grad[i])-fd) > 1e-5+1e-3*math.Abs(fd) {
					t.Fatalf("%d×%d uniform=%v: ∂KL/∂z[%d] = %v, central difference %v", tc.n, tc.k, uniform, i, grad[i], fd)
				}
			}
		}
	}
	if _, err := NewClassBalance([]float64{0.5, 0.5}).Do(gradcheck.RandTensor(r, -1, 1, 4, 3)); err == nil {
		t.Error("ClassBalance with a 2-class prior accepted 3-class logits")
	}
}
