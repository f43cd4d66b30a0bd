package ops

import (
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/gradcheck"
)

// BenchmarkConvOps times the three products of each of the MNIST network's
// convolutions on a batch of 128 (forward with bias and ReLU, input
// gradient, filter gradient) and reports each one's useful rate:
//
//	go test -run '^$' -bench ConvOps ./internal/ops
func BenchmarkConvOps(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		name   string
		xs, ws tensor.Shape
	}{
		{"conv1", tensor.Shape{128, 1, 28, 28}, tensor.Shape{32, 1, 3, 3}},
		{"conv2", tensor.Shape{128, 32, 26, 26}, tensor.Shape{32, 32, 3, 3}},
	} {
		x := gradcheck.RandTensor(rng, -1, 1, tc.xs...)
		w := gradcheck.RandTensor(rng, -1, 1, tc.ws...)
		bias := gradcheck.RandTensor(rng, -1, 1, tc.ws[0])
		ys, _ := convShape(tc.xs, tc.ws, tensor.Shape{tc.ws[0]})
		gy := gradcheck.RandTensor(rng, -1, 1, ys...)
		flops := 2 * float64(ys[0]*ys[1]*ys[2]*ys[3]*tc.ws[1]*tc.ws[2]*tc.ws[3])
		fwd := NewConv2d(true)
		gin := &convGradInputOp{opBase: newOpBase("Conv2dGradInput"), xshape: tc.xs}
		gfil := &convGradFilterOp{opBase: newOpBase("Conv2dGradFilter"), wshape: tc.ws}
		for _, op := range []struct {
			name string
			do   func() error
		}{
			{"forward", func() error { _, err := fwd.Do(x, w, bias); return err }},
			{"input-grad", func() error { _, err := gin.Do(w, gy); return err }},
			{"filter-grad", func() error { _, err := gfil.Do(x, gy); return err }},
		} {
			b.Run(tc.name+"/"+op.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := op.do(); err != nil {
						b.Fatal(err)
					}
				}
				s := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(s*1e3, "ms/op")
				b.ReportMetric(flops/s/1e9, "GFLOP/s")
			})
		}
	}
}
