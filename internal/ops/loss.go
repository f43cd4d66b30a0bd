package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
)

// Reduction says how a per-sample loss becomes a scalar.
type Reduction int

const (
	// Mean averages over the batch (the zero value).
	Mean Reduction = iota
	// Sum adds over the batch.
	Sum
)

// String names the reduction.
func (r Reduction) String() string {
	switch r {
	case Mean:
		return "mean"
	case Sum:
		return "sum"
	}
	return fmt.Sprintf("Reduction(%d)", int(r))
}

// factor is the weight of one sample in the reduced loss.
func (r Reduction) factor(n int) float64 {
	if r == Sum {
		return 1
	}
	return 1 / float64(n)
}

// LogSoftmax writes log softmax(z) into out, in float64, with the max
// subtracted before exponentiating.
func LogSoftmax(out []float64, z []float32) {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(s)
	for k, v := range z {
		out[k] = float64(v) - lse
	}
}

// logitsShape checks that the inputs of a loss are N×K matrices of one shape.
func logitsShape(op string, shapes ...tensor.Shape) (n, k int, err error) {
	for _, s := range shapes {
		if len(s) != 2 || !s.Eq(shapes[0]) {
			return 0, 0, fmt.Errorf("vat: %s: want N×K logits of one shape, got %v", op, shapes)
		}
	}
	return shapes[0][0], shapes[0][1], nil
}

// lossInferShape is the InferShape of every scalar loss.
func lossInferShape(op string, want int, in []G.DimSizer) (tensor.Shape, error) {
	shapes := make([]tensor.Shape, len(in))
	for i, d := range in {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("vat: %s: shape unknown", op)
		}
		shapes[i] = s
	}
	if err := checkArity(op, want, len(in)); err != nil {
		return nil, err
	}
	if _, _, err := logitsShape(op, shapes...); err != nil {
		return nil, err
	}
	return tensor.ScalarShape(), nil
}

// lossType is the type of a loss over `args` N×K matrices.
func lossType(args int) hm.Type {
	ts := make([]hm.Type, 0, args+1)
	for i := 0; i < args; i++ {
		ts = append(ts, tensorType(2))
	}
	return fnType(append(ts, scalarType())...)
}

// lossGradType is the type of a loss gradient: the loss's matrices and the
// scalar upstream gradient in, one matrix out.
func lossGradType(args int) hm.Type {
	ts := make([]hm.Type, 0, args+2)
	for i := 0; i < args; i++ {
		ts = append(ts, tensorType(2))
	}
	return fnType(append(ts, scalarType(), tensorType(2))...)
}

// readMatrices reads the N×K inputs of a loss op and, when withGrad is set,
// the trailing scalar gradient. It does not synchronize host copies: every
// loss op has a GPU path (lossOnGPU, lossGradOnGPU), so its CPU path runs
// only without a GPU.
func readMatrices(op string, inputs []G.Value, mats int, withGrad bool) (ms [][]float32, n, k int, g float32, err error) {
	want := mats
	if withGrad {
		want++
	}
	if err = checkArity(op, want, len(inputs)); err != nil {
		return
	}
	shapes := make([]tensor.Shape, mats)
	ms = make([][]float32, mats)
	for i := 0; i < mats; i++ {
		if ms[i], shapes[i], err = f32sNoSync(op, i, inputs[i]); err != nil {
			return
		}
	}
	if n, k, err = logitsShape(op, shapes...); err != nil {
		return
	}
	if withGrad {
		g, err = Scalar32(op, mats, inputs[mats])
	}
	return
}

// lossOnGPU computes a loss of kind (device.LossCrossEntropy, LossKL,
// LossEntropy) over the rows of x and y on the active GPU: the row losses
// come back and are summed here in float64, times factor. ok is false
// without a GPU.
func lossOnGPU(kind int, x, y []float32, n, k int, factor float64) (v G.Value, ok bool, err error) {
	a := backend.Active()
	if a == nil {
		return nil, false, nil
	}
	rows, err := a.LossRows(kind, x, y, n, k)
	if err != nil {
		return nil, true, err
	}
	var total float64
	for _, r := range rows {
		total += float64(r)
	}
	return G.NewF32(float32(total * factor)), true, nil
}

// lossGradOnGPU writes c times the gradient of a loss of kind with respect
// to argument wrt into out on the GPU; ok is false without a GPU.
func lossGradOnGPU(kind, wrt int, out *tensor.Dense, x, y []float32, n, k int, c float64) (v G.Value, ok bool, err error) {
	a := backend.Active()
	if a == nil {
		return nil, false, nil
	}
	v, err = gpuOut(out, a.LossGrad(kind, wrt, out.Data().([]float32), x, y, n, k, c))
	return v, true, err
}
