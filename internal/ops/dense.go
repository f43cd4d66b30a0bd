package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// denseOp is a fully connected layer with an optional ReLU:
//
//	y[n,m] = act(b[m] + Σ_k x[n,k] · w[k,m])
//
// x may have any rank >= 2; all axes after the first are flattened in
// row-major order (Keras' Flatten followed by Dense). w is K×M (Keras'
// layout), b has length M, y is N×M.
type denseOp struct {
	opBase
	relu  bool
	xrank int
	out   buffer
}

// NewDense returns the dense-layer op x·W + b (x of rank xrank, flattened
// per sample), with a ReLU when relu is set.
func NewDense(relu bool, xrank int) *denseOp {
	return &denseOp{opBase: newOpBase("Dense"), relu: relu, xrank: xrank}
}

func (op *denseOp) Arity() int { return 3 }
func (op *denseOp) Type() hm.Type {
	return fnType(tensorType(op.xrank), tensorType(2), tensorType(1), tensorType(2))
}

func (op *denseOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 3 {
		return nil, checkArity(op.name, 3, len(in))
	}
	xs, ok1 := in[0].(tensor.Shape)
	ws, ok2 := in[1].(tensor.Shape)
	bs, ok3 := in[2].(tensor.Shape)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("vat: Dense: shapes unknown")
	}
	return denseShape(xs, ws, bs)
}

func denseShape(xs, ws, bs tensor.Shape) (tensor.Shape, error) {
	if len(xs) < 2 || len(ws) != 2 || len(bs) != 1 || xs.TotalSize()/xs[0] != ws[0] || ws[1] != bs[0] {
		return nil, fmt.Errorf("vat: Dense: want x N×K (or N×… with K features), w K×M, b M; got %v, %v, %v", xs, ws, bs)
	}
	return tensor.Shape{xs[0], ws[1]}, nil
}

func (op *denseOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 3, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	w, ws, err := f32sNoSync(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	b, bs, err := f32sNoSync(op.name, 2, inputs[2])
	if err != nil {
		return nil, err
	}
	ys, err := denseShape(xs, ws, bs)
	if err != nil {
		return nil, err
	}
	out := op.out.get(ys...)
	y := out.Data().([]float32)
	n, k, m := ys[0], ws[0], ws[1]
	countFLOPs(1, n, m, k)
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.Dense(y, x, w, b, n, k, m, op.relu))
	}
	for i := 0; i < n; i++ {
		copy(y[i*m:(i+1)*m], b)
	}
	kernels.SgemmParallel(false, false, n, m, k, x, k, w, m, 1, y, m)
	if op.relu {
		kernels.ReLU(y)
	}
	return out, nil
}

func (op *denseOp) DiffWRT(int) []bool { return []bool{true, true, true} }

// SymDiff returns dL/dx = G·wᵀ (in x's shape), dL/dw = xᵀ·G and dL/db = Σ_n G,
// where G is the incoming gradient, masked by the ReLU if there is one.
func (op *denseOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if err := checkArity(op.name, 3, len(inputs)); err != nil {
		return nil, err
	}
	gm, err := reluGrad(op.relu, output, grad)
	if err != nil {
		return nil, err
	}
	xshape := inputs[0].Shape()
	gx, err := G.ApplyOp(&denseGradInputOp{opBase: newOpBase("DenseGradInput"), xshape: xshape}, inputs[1], gm)
	if err != nil {
		return nil, err
	}
	gw, err := G.ApplyOp(&denseGradWeightOp{opBase: newOpBase("DenseGradWeight"), xrank: len(xshape)}, inputs[0], gm)
	if err != nil {
		return nil, err
	}
	gb, err := biasGrad(gm)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx, gw, gb}, nil
}

// denseGradInputOp computes dL/dx = G·wᵀ, reshaped to x's shape.
type denseGradInputOp struct {
	opBase
	gradOnly
	xshape tensor.Shape
	out    buffer
}

func (op *denseGradInputOp) Arity() int { return 2 }
func (op *denseGradInputOp) Type() hm.Type {
	return fnType(tensorType(2), tensorType(2), tensorType(len(op.xshape)))
}
func (op *denseGradInputOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.xshape.Clone(), nil
}

func (op *denseGradInputOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 2, len(inputs)); err != nil {
		return nil, err
	}
	w, ws, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	g, gs, err := f32sNoSync(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	n, k, m := op.xshape[0], ws[0], ws[1]
	if len(gs) != 2 || gs[0] != n || gs[1] != m || op.xshape.TotalSize() != n*k {
		return nil, fmt.Errorf("vat: %s: gradient %v does not fit x %v and w %v", op.name, gs, op.xshape, ws)
	}
	out := op.out.get(op.xshape...)
	gx := out.Data().([]float32)
	countFLOPs(1, n, k, m)
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.DenseGradInput(gx, w, g, n, k, m))
	}
	kernels.SgemmParallel(false, true, n, k, m, g, m, w, m, 0, gx, k)
	return out, nil
}

// denseGradWeightOp computes dL/dw = xᵀ·G, with x flattened to N×K.
type denseGradWeightOp struct {
	opBase
	gradOnly
	xrank int
	out   buffer
}

func (op *denseGradWeightOp) Arity() int { return 2 }
func (op *denseGradWeightOp) Type() hm.Type {
	return fnType(tensorType(op.xrank), tensorType(2), tensorType(2))
}
func (op *denseGradWeightOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	xs, ok1 := in[0].(tensor.Shape)
	gs, ok2 := in[1].(tensor.Shape)
	if !ok1 || !ok2 || len(xs) < 2 || len(gs) != 2 {
		return nil, fmt.Errorf("vat: DenseGradWeight: shapes unknown")
	}
	return tensor.Shape{xs.TotalSize() / xs[0], gs[1]}, nil
}

func (op *denseGradWeightOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 2, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	g, gs, err := f32sNoSync(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	n := xs[0]
	k := xs.TotalSize() / n
	if len(gs) != 2 || gs[0] != n {
		return nil, fmt.Errorf("vat: %s: gradient %v does not fit x %v", op.name, gs, xs)
	}
	m := gs[1]
	out := op.out.get(k, m)
	gw := out.Data().([]float32)
	countFLOPs(1, k, m, n)
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.DenseGradWeight(gw, x, g, n, k, m))
	}
	kernels.SgemmParallel(true, false, k, m, n, x, k, g, m, 0, gw, m)
	return out, nil
}
