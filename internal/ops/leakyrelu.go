package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// leakyReLUOp is y = x for x > 0 and α·x otherwise, elementwise, with
// 0 < α < 1 (Maas et al., 2013). Its gradient is the LeakyScale op on the
// output (y > 0 exactly where x > 0, as α > 0). It has no GPU path: in a
// cuda build it runs on the host copies.
type leakyReLUOp struct {
	opBase
	alpha float32
	out   buffer
}

// NewLeakyReLU returns the elementwise leaky ReLU op with slope alpha for
// negative inputs, 0 < alpha < 1.
func NewLeakyReLU(alpha float64) (G.Op, error) {
	if err := checkSlope(alpha); err != nil {
		return nil, err
	}
	return &leakyReLUOp{opBase: newOpBase("LeakyReLU"), alpha: float32(alpha)}, nil
}

func (op *leakyReLUOp) Arity() int { return 1 }
func (op *leakyReLUOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return fnType(a, a)
}
func (op *leakyReLUOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: LeakyReLU: shape unknown")
	}
	return s.Clone(), nil
}

func (op *leakyReLUOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32s(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	out := op.out.get(xs...)
	y := out.Data().([]float32)
	for i, v := range x {
		if v > 0 {
			y[i] = v
		} else {
			y[i] = op.alpha * v
		}
	}
	return out, nil
}

func (op *leakyReLUOp) DiffWRT(int) []bool { return []bool{true} }

func (op *leakyReLUOp) SymDiff(_ G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(newLeakyScale(op.alpha), grad, output)
	return G.Nodes{g}, err
}

// leakyScaleOp is t·[ref > 0] + α·t·[ref ≤ 0] elementwise: the leaky
// ReLU's derivative at ref (its output, or its input: the signs agree)
// applied to t. It serves as the leaky ReLU's gradient (t the incoming
// gradient, ref the output) and as its tangent in the exact probe (t the
// direction, ref the clean pass's output). Being linear in t, its gradient
// with respect to t is itself applied to the incoming gradient, so it can
// be differentiated again.
type leakyScaleOp struct {
	opBase
	alpha float32
	out   buffer
}

// NewLeakyScale returns the leaky ReLU's derivative op (see leakyScaleOp)
// for slope alpha, 0 < alpha < 1; inputs t, ref.
func NewLeakyScale(alpha float64) (G.Op, error) {
	if err := checkSlope(alpha); err != nil {
		return nil, err
	}
	return newLeakyScale(float32(alpha)), nil
}

func newLeakyScale(alpha float32) *leakyScaleOp {
	return &leakyScaleOp{opBase: newOpBase("LeakyScale"), alpha: alpha}
}

func (op *leakyScaleOp) Arity() int { return 2 }
func (op *leakyScaleOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return fnType(a, a, a)
}
func (op *leakyScaleOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	r, ok2 := in[1].(tensor.Shape)
	if !ok || !ok2 || !s.Eq(r) {
		return nil, fmt.Errorf("vat: LeakyScale: shapes %v and %v differ", in[0], in[1])
	}
	return s.Clone(), nil
}

func (op *leakyScaleOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 2, len(inputs)); err != nil {
		return nil, err
	}
	t, ts, err := f32s(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	ref, _, err := f32s(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	if len(ref) != len(t) {
		return nil, fmt.Errorf("vat: LeakyScale: %d values and a reference of %d", len(t), len(ref))
	}
	out := op.out.get(ts...)
	y := out.Data().([]float32)
	for i, v := range t {
		if ref[i] > 0 {
			y[i] = v
		} else {
			y[i] = op.alpha * v
		}
	}
	return out, nil
}

func (op *leakyScaleOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *leakyScaleOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(newLeakyScale(op.alpha), grad, in[1])
	return G.Nodes{g, nil}, err
}

func checkSlope(alpha float64) error {
	if !(alpha > 0 && alpha < 1) {
		return fmt.Errorf("vat: LeakyReLU(%v): want a slope in (0, 1)", alpha)
	}
	return nil
}
