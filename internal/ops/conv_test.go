package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

// naiveConv is an independent reference: the convolution's definition as
// nested loops, accumulated in float64.
func naiveConv(x, w, b []float32, xs, ws tensor.Shape, relu bool) []float32 {
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	f, kh, kw := ws[0], ws[2], ws[3]
	oh, ow := h-kh+1, wd-kw+1
	y := make([]float32, n*f*oh*ow)
	for i := 0; i < n; i++ {
		for fi := 0; fi < f; fi++ {
			for r := 0; r < oh; r++ {
				for s := 0; s < ow; s++ {
					acc := float64(b[fi])
					for ci := 0; ci < c; ci++ {
						for p := 0; p < kh; p++ {
							for q := 0; q < kw; q++ {
								acc += float64(w[((fi*c+ci)*kh+p)*kw+q]) * float64(x[((i*c+ci)*h+r+p)*wd+s+q])
							}
						}
					}
					if relu && acc < 0 {
						acc = 0
					}
					y[((i*f+fi)*oh+r)*ow+s] = float32(acc)
				}
			}
		}
	}
	return y
}

func TestConv2dMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name   string
		xs, ws tensor.Shape
		relu   bool
	}{
		{"1ch 3x3", tensor.Shape{2, 1, 7, 6}, tensor.Shape{3, 1, 3, 3}, false},
		{"3ch 3x3 relu", tensor.Shape{3, 3, 8, 8}, tensor.Shape{4, 3, 3, 3}, true},
		{"2ch 2x4", tensor.Shape{1, 2, 5, 9}, tensor.Shape{2, 2, 2, 4}, true},
		{"mnist conv2 size", tensor.Shape{2, 32, 26, 26}, tensor.Shape{32, 32, 3, 3}, true},
	} {
		x := gradcheck.RandTensor(rng, -1, 1, tc.xs...)
		w := gradcheck.RandTensor(rng, -1, 1, tc.ws...)
		b := gradcheck.RandTensor(rng, -1, 1, tc.ws[0])
		op := NewConv2d(tc.relu)
		got, err := op.Do(x, w, b)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := naiveConv(x.Data().([]float32), w.Data().([]float32), b.Data().([]float32), tc.xs, tc.ws, tc.relu)
		// float32 sums of up to 288 products of magnitude <= 1: about 1e-5 of rounding.
		for i, v := range got.Data().([]float32) {
			if math.Abs(float64(v-want[i])) > 1e-4 {
				t.Fatalf("%s: y[%d] = %v, want %v", tc.name, i, v, want[i])
			}
		}
	}
}

func TestConv2dGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name   string
		xs, ws tensor.Shape
		relu   bool
	}{
		{"linear", tensor.Shape{2, 2, 6, 5}, tensor.Shape{3, 2, 3, 3}, false},
		{"relu", tensor.Shape{3, 1, 5, 5}, tensor.Shape{2, 1, 3, 3}, true},
		// More images than one gradient chunk, to cover the chunked sum.
		{"many images", tensor.Shape{gradChunk*2 + 3, 1, 4, 4}, tensor.Shape{2, 1, 3, 3}, false},
	} {
		relu := tc.relu
		// Redraw until every pre-activation is at least 0.05 from the ReLU's
		// kink: a step of h = 1e-2 in one input moves it by at most 1e-2.
		var x, w, b *tensor.Dense
		for {
			x, w, b = gradcheck.RandTensor(rng, -1, 1, tc.xs...), gradcheck.RandTensor(rng, -1, 1, tc.ws...), gradcheck.RandTensor(rng, -0.5, 0.5, tc.ws[0])
			if minAbs(naiveConv(x.Data().([]float32), w.Data().([]float32), b.Data().([]float32), tc.xs, tc.ws, false)) > 0.05 {
				break
			}
		}
		gradcheck.Check(t, 5, gradcheck.Case{
			Name:   "Conv2d " + tc.name,
			Inputs: []*tensor.Dense{x, w, b},
			Wrt:    []int{0, 1, 2},
			Build: func(in []*G.Node) (*G.Node, error) {
				return G.ApplyOp(NewConv2d(relu), in[0], in[1], in[2])
			},
		})
	}
}

func minAbs(v []float32) float64 {
	m := math.Inf(1)
	for _, x := range v {
		m = math.Min(m, math.Abs(float64(x)))
	}
	return m
}

func TestConv2dRejectsBadShapes(t *testing.T) {
	op := NewConv2d(false)
	rng := rand.New(rand.NewPCG(1, 1))
	_, err := op.Do(gradcheck.RandTensor(rng, 0, 1, 1, 2, 5, 5), gradcheck.RandTensor(rng, 0, 1, 3, 1, 3, 3), gradcheck.RandTensor(rng, 0, 1, 3))
	if err == nil {
		t.Fatal("channel mismatch accepted")
	}
}
