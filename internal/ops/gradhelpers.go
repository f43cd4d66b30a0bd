package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// This file holds the two backward-only ops that the layer ops share.

// reluGrad returns grad masked by (output > 0) when relu is set, else grad.
func reluGrad(relu bool, output, grad *G.Node) (*G.Node, error) {
	if !relu {
		return grad, nil
	}
	return G.ApplyOp(&reluGradOp{opBase: newOpBase("ReluGrad")}, output, grad)
}

// reluGradOp computes g·[y > 0] elementwise, the gradient of y = max(0, z)
// written in terms of the output y (y > 0 exactly where z > 0).
type reluGradOp struct {
	opBase
	gradOnly
	out buffer
}

func (op *reluGradOp) Arity() int { return 2 }
func (op *reluGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return fnType(a, a, a)
}
func (op *reluGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: ReluGrad: shape unknown")
	}
	return s.Clone(), nil
}

func (op *reluGradOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 2, len(inputs)); err != nil {
		return nil, err
	}
	y, ys, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	g, gs, err := f32sNoSync(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	if !ys.Eq(gs) {
		return nil, fmt.Errorf("vat: ReluGrad: shapes %v and %v differ", ys, gs)
	}
	out := op.out.get(ys...)
	o := out.Data().([]float32)
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.ReluGrad(o, y, g))
	}
	kernels.ParallelChunks(len(o), func(lo, hi int) { kernels.ReLUMask(o[lo:hi], y[lo:hi], g[lo:hi]) })
	return out, nil
}

// biasGradOp sums a gradient over every axis but axis 1, the feature axis:
// the gradient of a bias added along axis 1 (dense: N×F, conv: N×F×H×W).
type biasGradOp struct {
	opBase
	gradOnly
	rank int
	out  buffer
}

// biasGrad returns the bias gradient node for the output gradient g.
func biasGrad(g *G.Node) (*G.Node, error) {
	return G.ApplyOp(&biasGradOp{opBase: newOpBase("BiasGrad"), rank: g.Dims()}, g)
}

func (op *biasGradOp) Arity() int { return 1 }
func (op *biasGradOp) Type() hm.Type {
	return fnType(tensorType(op.rank), tensorType(1))
}
func (op *biasGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) < 2 {
		return nil, fmt.Errorf("vat: BiasGrad: want a tensor of rank >= 2, got %v", in[0])
	}
	return tensor.Shape{s[1]}, nil
}

func (op *biasGradOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	g, gs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	if len(gs) < 2 {
		return nil, fmt.Errorf("vat: BiasGrad: want a tensor of rank >= 2, got shape %v", gs)
	}
	n, f := gs[0], gs[1]
	inner := 1
	for _, d := range gs[2:] {
		inner *= d
	}
	out := op.out.get(f)
	o := out.Data().([]float32)
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.BiasGrad(o, g, n, f, inner))
	}
	// Σ over the samples, then the positions, in order per feature, in
	// blocks of features on all cores: the same sums whatever the cores.
	kernels.BNBlocks(f, func(lo, hi int) {
		var s [kernels.BNBlock]float64
		kernels.BNSum(s[:], g, n, f, inner, lo, hi)
		for k := range hi - lo {
			o[lo+k] = float32(s[k])
		}
	})
	return out, nil
}
