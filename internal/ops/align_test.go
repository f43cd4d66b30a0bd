package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

// alignedKL64 is the mean over rows of KL(p̃ ‖ q) written out in float64
// from the definition, independently of the op: p̃ = normalize(softmax(a)·e^s),
// q = softmax(b).
func alignedKL64(a, b []float64, n, k int, s []float64) float64 {
	softmax := func(z []float64, w []float64) []float64 {
		p := make([]float64, len(z))
		var sum float64
		for j, v := range z {
			p[j] = math.Exp(v) * w[j]
			sum += p[j]
		}
		for j := range p {
			p[j] /= sum
		}
		return p
	}
	ew, ones := make([]float64, k), make([]float64, k)
	for j := range ew {
		ew[j], ones[j] = math.Exp(s[j]), 1
	}
	var total float64
	for i := 0; i < n; i++ {
		pt := softmax(a[i*k:(i+1)*k], ew)
		q := softmax(b[i*k:(i+1)*k], ones)
		for j := range pt {
			total += pt[j] * math.Log(pt[j]/q[j])
		}
	}
	return total / float64(n)
}

// TestAlignedKL checks the aligned divergence, its batch mean and both
// gradients against the float64 definition and central differences of it,
// on fresh random logits and shifts (zero, where it must equal KL, and
// not); logits of the wrong width are refused.
func TestAlignedKL(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 11))
	for _, tc := range []struct{ n, k int }{{1, 2}, {5, 3}, {16, 10}} {
		for _, zero := range []bool{true, false} {
			s := make([]float64, tc.k)
			if !zero {
				for j := range s {
					s[j] = 3 * (r.Float64() - 0.5)
				}
			}
			at, bt := gradcheck.RandTensor(r, -4, 4, tc.n, tc.k), gradcheck.RandTensor(r, -4, 4, tc.n, tc.k)
			to64 := func(x []float32) []float64 {
				y := make([]float64, len(x))
				for i, v := range x {
					y[i] = float64(v)
				}
				return y
			}
			a, b := to64(at.Data().([]float32)), to64(bt.Data().([]float32))
			op := NewAlignedKL(tc.k)
			op.SetShift(s)
			v, err := op.Do(at, bt)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := Scalar32("test", 0, v)
			want := alignedKL64(a, b, tc.n, tc.k, s)
			if math.Abs(float64(got)-want) > 1e-6*math.Max(1, want) {
				t.Errorf("%d×%d shift %v: KL = %v, want %v", tc.n, tc.k, s, got, want)
			}
			if zero {
				kv, err := NewKL(Mean).Do(at, bt)
				if err != nil {
					t.Fatal(err)
				}
				if k, _ := Scalar32("test", 0, kv); math.Abs(float64(k-got)) > 1e-6*math.Max(1, want) {
					t.Errorf("%d×%d zero shift: %v, KL(Mean) gives %v", tc.n, tc.k, got, k)
				}
			}
			mean := op.BatchMean()
			for j := 0; j < tc.k; j++ {
				var m float64
				for i := 0; i < tc.n; i++ {
					var sum float64
					for l := 0; l < tc.k; l++ {
						sum += math.Exp(a[i*tc.k+l])
					}
					m += math.Exp(a[i*tc.k+j]) / sum / float64(tc.n)
				}
				if math.Abs(mean[j]-m) > 1e-9 {
					t.Errorf("%d×%d: batch mean[%d] = %v, want %v (the unshifted clean prediction's)", tc.n, tc.k, j, mean[j], m)
				}
			}
			const up, h = 1.3, 1e-5
			for wrt, x := range [][]float64{a, b} {
				gv, err := (&alignedKLGrad{opBase: newOpBase("AlignedKLGrad"), of: op, wrt: wrt}).Do(at, bt, tensor.New(tensor.FromScalar(float32(up))))
				if err != nil {
					t.Fatal(err)
				}
				grad := gv.(*tensor.Dense).Data().([]float32)
				for i := range x {
					x0 := x[i]
					x[i] = x0 + h
					fp := alignedKL64(a, b, tc.n, tc.k, s)
					x[i] = x0 - h
					fm := alignedKL64(a, b, tc.n, tc.k, s)
					x[i] = x0
					fd := up * (fp - fm) / (2 * h)
					if math.Abs(float64(grad[i])-fd) > 1e-5+1e-3*math.Abs(fd) {
						t.Fatalf("%d×%d shift %v: ∂KL/∂%c[%d] = %v, central difference %v", tc.n, tc.k, s, "ab"[wrt], i, grad[i], fd)
					}
				}
			}
		}
	}
	if _, err := NewAlignedKL(2).Do(gradcheck.RandTensor(r, -1, 1, 4, 3), gradcheck.RandTensor(r, -1, 1, 4, 3)); err == nil {
		t.Error("AlignedKL for 2 classes accepted 3-class logits")
	}
}
