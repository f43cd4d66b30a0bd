package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// weightedSumOp combines scalar losses: y = Σ_i w_i · x_i. Its gradient with
// respect to x_i is w_i times the incoming gradient (a weightedSumOp with one
// input).
type weightedSumOp struct {
	opBase
	w []float64
}

// NewWeightedSum returns the op Σ w_i·x_i over scalar inputs.
func NewWeightedSum(w ...float64) *weightedSumOp {
	return &weightedSumOp{opBase: newOpBase(fmt.Sprintf("WeightedSum%v", w)), w: w}
}

func (op *weightedSumOp) Arity() int { return len(op.w) }
func (op *weightedSumOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, len(op.w)+1)
	for i := range ts {
		ts[i] = a
	}
	return fnType(ts...)
}
func (op *weightedSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	for _, d := range in {
		if s, ok := d.(tensor.Shape); !ok || !s.IsScalar() {
			return nil, fmt.Errorf("vat: %s: want scalars, got %v", op.name, d)
		}
	}
	return tensor.ScalarShape(), nil
}

func (op *weightedSumOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, len(op.w), len(inputs)); err != nil {
		return nil, err
	}
	var y float64
	for i, v := range inputs {
		x, err := Scalar32(op.name, i, v)
		if err != nil {
			return nil, err
		}
		y += op.w[i] * float64(x)
	}
	return G.NewF32(float32(y)), nil
}

func (op *weightedSumOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}

func (op *weightedSumOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	grads := make(G.Nodes, len(inputs))
	for i := range inputs {
		// The gradient op shares op's weight, so that SetWeight reaches it.
		gop := &weightedSumOp{opBase: newOpBase(fmt.Sprintf("WeightedSum[%g]", op.w[i])), w: op.w[i : i+1 : i+1]}
		g, err := G.ApplyOp(gop, grad)
		if err != nil {
			return nil, err
		}
		grads[i] = g
	}
	return grads, nil
}

// SetWeight changes w_i for the following runs, in this op and in its
// gradient ops (a schedule, such as a warm-up of VAT's α).
func (op *weightedSumOp) SetWeight(i int, w float64) { op.w[i] = w }
