package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// addOp is the elementwise sum of two tensors of one shape. Its gradient
// passes the incoming gradient to both inputs unchanged. (Gorgonia's own Add
// allocates its result every step and, in the cuda build, is placed on the
// GPU by Gorgonia's VM; the package's graphs use only the package's ops.)
type addOp struct {
	opBase
	out buffer
}

// NewAdd returns the elementwise sum op x + y.
func NewAdd() *addOp { return &addOp{opBase: newOpBase("Add")} }

func (op *addOp) Arity() int { return 2 }
func (op *addOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return fnType(a, a, a)
}
func (op *addOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a, ok1 := in[0].(tensor.Shape)
	b, ok2 := in[1].(tensor.Shape)
	if !ok1 || !ok2 || !a.Eq(b) {
		return nil, fmt.Errorf("vat: Add: want two tensors of one shape, got %v and %v", in[0], in[1])
	}
	return a.Clone(), nil
}

func (op *addOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 2, len(inputs)); err != nil {
		return nil, err
	}
	a, as, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	b, bs, err := f32sNoSync(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	if !as.Eq(bs) {
		return nil, fmt.Errorf("vat: Add: shapes %v and %v differ", as, bs)
	}
	out := op.out.get(as...)
	y := out.Data().([]float32)
	if g := backend.Active(); g != nil {
		return gpuOut(out, g.Add(y, a, b))
	}
	kernels.ParallelChunks(len(y), func(lo, hi int) { kernels.Add(y[lo:hi], a[lo:hi], b[lo:hi]) })
	return out, nil
}

func (op *addOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *addOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{grad, grad}, nil
}
