package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// maxPoolOp is 2×2 max-pooling with stride 2 on NCHW tensors (Keras'
// MaxPooling2D(pool_size=(2, 2)) with "valid" padding: an odd last row or
// column is dropped):
//
//	y[n,c,i,j] = max(x[n,c,2i,2j], x[n,c,2i,2j+1], x[n,c,2i+1,2j], x[n,c,2i+1,2j+1])
type maxPoolOp struct {
	opBase
	out buffer
}

// NewMaxPool returns the 2×2, stride-2 max-pooling op.
func NewMaxPool() *maxPoolOp { return &maxPoolOp{opBase: newOpBase("MaxPool2x2")} }

func (op *maxPoolOp) Arity() int    { return 1 }
func (op *maxPoolOp) Type() hm.Type { return fnType(tensorType(4), tensorType(4)) }
func (op *maxPoolOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: MaxPool2x2: shape unknown")
	}
	return poolShape(s)
}

func poolShape(s tensor.Shape) (tensor.Shape, error) {
	if len(s) != 4 || s[2] < 2 || s[3] < 2 {
		return nil, fmt.Errorf("vat: MaxPool2x2: want N×C×H×W with H, W >= 2, got %v", s)
	}
	return tensor.Shape{s[0], s[1], s[2] / 2, s[3] / 2}, nil
}

func (op *maxPoolOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	ys, err := poolShape(xs)
	if err != nil {
		return nil, err
	}
	out := op.out.get(ys...)
	y := out.Data().([]float32)
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.MaxPool(y, x, xs))
	}
	h, w, oh, ow := xs[2], xs[3], ys[2], ys[3]
	kernels.ParallelFor(xs[0]*xs[1], func(_, p int) { kernels.MaxPool2Plane(y[p*oh*ow:], x[p*h*w:], w, oh, ow) })
	return out, nil
}

func (op *maxPoolOp) DiffWRT(int) []bool { return []bool{true} }

// SymDiff routes each output gradient to the input that held the window's
// maximum (the first one, in row-major order, on ties).
func (op *maxPoolOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	gx, err := G.ApplyOp(&maxPoolGradOp{opBase: newOpBase("MaxPool2x2Grad")}, inputs[0], output, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx}, nil
}

// maxPoolGradOp computes dL/dx from x, y and dL/dy.
type maxPoolGradOp struct {
	opBase
	gradOnly
	out buffer
}

func (op *maxPoolGradOp) Arity() int { return 3 }
func (op *maxPoolGradOp) Type() hm.Type {
	t := tensorType(4)
	return fnType(t, t, t, t)
}
func (op *maxPoolGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: MaxPool2x2Grad: shape unknown")
	}
	return s.Clone(), nil
}

func (op *maxPoolGradOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 3, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	y, ys, err := f32sNoSync(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	gy, gys, err := f32sNoSync(op.name, 2, inputs[2])
	if err != nil {
		return nil, err
	}
	if want, err := poolShape(xs); err != nil || !want.Eq(ys) || !ys.Eq(gys) {
		return nil, fmt.Errorf("vat: %s: shapes x %v, y %v, dy %v do not fit", op.name, xs, ys, gys)
	}
	out := op.out.get(xs...)
	gx := out.Data().([]float32)
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.MaxPoolGrad(gx, x, y, gy, xs))
	}
	h, w, oh, ow := xs[2], xs[3], ys[2], ys[3]
	kernels.ParallelFor(xs[0]*xs[1], func(_, p int) {
		xp, gp := x[p*h*w:(p+1)*h*w], gx[p*h*w:(p+1)*h*w]
		if h%2 != 0 || w%2 != 0 {
			kernels.Zero(gp) // the last row or column pools into nothing
		}
		kernels.MaxPool2GradPlane(gp, xp, y[p*oh*ow:], gy[p*oh*ow:], w, oh, ow)
	})
	return out, nil
}
