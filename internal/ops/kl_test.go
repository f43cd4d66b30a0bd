package ops

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

// NewKLRoot's forward computes nothing (NaN) but still checks its inputs,
// and its gradients are exactly NewKL's.
func TestKLRoot(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	a, b := gradcheck.RandTensor(r, -3, 3, 6, 10), gradcheck.RandTensor(r, -3, 3, 6, 10)
	v, err := NewKLRoot(Sum).Do(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if x, _ := Scalar32("test", 0, v); !math.IsNaN(float64(x)) {
		t.Fatalf("KLRoot's value = %v, want NaN (not computed)", x)
	}
	if _, err := NewKLRoot(Sum).Do(a, gradcheck.RandTensor(r, -3, 3, 6, 9)); err == nil {
		t.Fatal("KLRoot accepted logits of two shapes")
	}
	g := tensor.New(tensor.FromScalar(float32(1)))
	for wrt := 0; wrt < 2; wrt++ {
		want, err := (&klGradOp{opBase: newOpBase("KLGrad"), fwd: NewKL(Sum), wrt: wrt}).Do(a, b, g)
		if err != nil {
			t.Fatal(err)
		}
		got, err := (&klGradOp{opBase: newOpBase("KLGrad"), fwd: NewKLRoot(Sum), wrt: wrt}).Do(a, b, g)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.(*tensor.Dense).Data().([]float32), want.(*tensor.Dense).Data().([]float32)) {
			t.Fatalf("KLRoot's gradient with respect to argument %d differs from KL's", wrt)
		}
	}
}
