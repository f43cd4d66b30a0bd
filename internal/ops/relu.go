package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/kernels"
)

// reluOp is a standalone ReLU, y = max(0, x), for a ReLU that follows a
// layer other than a convolution or a dense layer (those fuse theirs). Its
// gradient is reluGradOp, written in terms of the output. It has no GPU
// path of its own: in a cuda build it runs on the host copy.
type reluOp struct {
	opBase
	out buffer
}

// NewReLU returns the elementwise ReLU op.
func NewReLU() G.Op { return &reluOp{opBase: newOpBase("ReLU")} }

func (op *reluOp) Arity() int { return 1 }
func (op *reluOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return fnType(a, a)
}
func (op *reluOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: ReLU: shape unknown")
	}
	return s.Clone(), nil
}

func (op *reluOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32s(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	out := op.out.get(xs...)
	y := out.Data().([]float32)
	copy(y, x)
	kernels.ReLU(y)
	return out, nil
}

func (op *reluOp) DiffWRT(int) []bool { return []bool{true} }

func (op *reluOp) SymDiff(_ G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	g, err := reluGrad(true, output, grad)
	return G.Nodes{g}, err
}
