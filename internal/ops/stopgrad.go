package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
)

// stopGradientOp is the identity in the forward pass and a constant for
// differentiation: DiffWRT is false, so Gorgonia's Grad treats everything
// upstream of it as data. VAT needs it twice: the power iteration's gradient
// must become a fixed direction d, and the adversarial perturbation built from
// d must not feed the weight gradients.
type stopGradientOp struct {
	opBase
	out buffer
}

func (op *stopGradientOp) Arity() int { return 1 }
func (op *stopGradientOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return fnType(a, a)
}
func (op *stopGradientOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: StopGradient: shape unknown")
	}
	return s.Clone(), nil
}

// Do copies its input; returning the input itself would alias two nodes.
func (op *stopGradientOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	out := op.out.get(xs...)
	y := out.Data().([]float32)
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.CopyOf(y, x))
	}
	copy(y, x)
	return out, nil
}

func (op *stopGradientOp) DiffWRT(n int) []bool { return make([]bool, n) }

func (op *stopGradientOp) SymDiff(inputs G.Nodes, _, _ *G.Node) (G.Nodes, error) {
	return make(G.Nodes, len(inputs)), nil
}

// NewStopGradient returns the identity op through which no gradient
// flows.
func NewStopGradient() *stopGradientOp { return &stopGradientOp{opBase: newOpBase("StopGradient")} }
