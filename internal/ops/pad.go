package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/kernels"
)

// padOp surrounds each plane of an N×C×H×W tensor with zeros: top and left
// rows/columns of `before`, bottom and right of `after`. A convolution with
// "same" padding is this op followed by a "valid" convolution. Its gradient
// crops (padGradOp). It has no GPU path: in a cuda build it runs on the
// host copy.
type padOp struct {
	opBase
	before, after int
	out           buffer
}

// NewPad returns the zero-padding op (before rows/columns at the top and
// left of every plane, after at the bottom and right).
func NewPad(before, after int) G.Op {
	return &padOp{opBase: newOpBase(fmt.Sprintf("Pad(%d,%d)", before, after)), before: before, after: after}
}

func (op *padOp) Arity() int { return 1 }
func (op *padOp) Type() hm.Type {
	return fnType(tensorType(4), tensorType(4))
}
func (op *padOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != 4 {
		return nil, fmt.Errorf("vat: %s: want an N×C×H×W input, got %v", op.name, in[0])
	}
	return tensor.Shape{s[0], s[1], s[2] + op.before + op.after, s[3] + op.before + op.after}, nil
}

func (op *padOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32s(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	ys, err := op.InferShape(xs)
	if err != nil {
		return nil, err
	}
	out := op.out.get(ys...)
	y := out.Data().([]float32)
	kernels.Zero(y)
	h, w, ph, pw := xs[2], xs[3], ys[2], ys[3]
	for pl := 0; pl < xs[0]*xs[1]; pl++ {
		for i := 0; i < h; i++ {
			copy(y[(pl*ph+i+op.before)*pw+op.before:], x[(pl*h+i)*w:(pl*h+i+1)*w])
		}
	}
	return out, nil
}

func (op *padOp) DiffWRT(int) []bool { return []bool{true} }

func (op *padOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&padGradOp{opBase: newOpBase("PadGrad"), fwd: op, xshape: inputs[0].Shape().Clone()}, grad)
	return G.Nodes{g}, err
}

// padGradOp crops the padding off a gradient.
type padGradOp struct {
	opBase
	gradOnly
	fwd    *padOp
	xshape tensor.Shape
	out    buffer
}

func (op *padGradOp) Arity() int                                     { return 1 }
func (op *padGradOp) Type() hm.Type                                  { return fnType(tensorType(4), tensorType(4)) }
func (op *padGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return op.xshape.Clone(), nil }

func (op *padGradOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	g, gs, err := f32s(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	xs := op.xshape
	if want, _ := op.fwd.InferShape(xs); !want.Eq(gs) {
		return nil, fmt.Errorf("vat: %s: gradient of shape %v, want %v", op.name, gs, want)
	}
	out := op.out.get(xs...)
	gx := out.Data().([]float32)
	h, w, ph, pw := xs[2], xs[3], gs[2], gs[3]
	for pl := 0; pl < xs[0]*xs[1]; pl++ {
		for i := 0; i < h; i++ {
			copy(gx[(pl*h+i)*w:(pl*h+i+1)*w], g[(pl*ph+i+op.fwd.before)*pw+op.fwd.before:])
		}
	}
	return out, nil
}
