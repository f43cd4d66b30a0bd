package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// l2NormalizeOp scales every sample (the slice along axis 0) to L2 norm s:
//
//	y_i = s · x_i / ‖x_i‖₂
//
// with the norm over all of the sample's elements, and y_i = 0 for an
// all-zero sample. Its gradient is
//
//	∂L/∂x_i = s · ( g_i / ‖x_i‖ − x_i · ⟨x_i, g_i⟩ / ‖x_i‖³ ).
//
// Norms are accumulated in float64, where the square of any nonzero float32
// is nonzero: tiny inputs (VAT's gradients can be 1e-9 per pixel on a
// confident model) keep their direction, and no ε distorts their length, as
// the Keras original's x/(‖x‖+1e-7) does for them.
type l2NormalizeOp struct {
	opBase
	scale float64
	rank  int
	out   buffer
}

// NewL2Normalize returns the op scale·x_i/‖x_i‖ per sample of a rank-rank
// tensor.
func NewL2Normalize(scale float64, rank int) *l2NormalizeOp {
	return &l2NormalizeOp{opBase: newOpBase(fmt.Sprintf("L2Normalize(%g)", scale)), scale: scale, rank: rank}
}

func (op *l2NormalizeOp) Arity() int    { return 1 }
func (op *l2NormalizeOp) Type() hm.Type { return fnType(tensorType(op.rank), tensorType(op.rank)) }
func (op *l2NormalizeOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) < 1 {
		return nil, fmt.Errorf("vat: L2Normalize: shape unknown")
	}
	return s.Clone(), nil
}

// sampleNorm returns the L2 norm of x, accumulated in float64.
func sampleNorm(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

func (op *l2NormalizeOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	out := op.out.get(xs...)
	y := out.Data().([]float32)
	n := xs[0]
	m := len(x) / n
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.L2Normalize(y, x, n, op.scale))
	}
	kernels.ParallelFor(n, func(_, i int) {
		xi, yi := x[i*m:(i+1)*m], y[i*m:(i+1)*m]
		c := 0.0
		if nrm := sampleNorm(xi); nrm > 0 {
			c = op.scale / nrm
		}
		for j, v := range xi {
			yi[j] = float32(float64(v) * c)
		}
	})
	return out, nil
}

func (op *l2NormalizeOp) DiffWRT(int) []bool { return []bool{true} }

func (op *l2NormalizeOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	gop := &l2NormalizeGradOp{opBase: newOpBase("L2NormalizeGrad"), fwd: op}
	gx, err := G.ApplyOp(gop, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx}, nil
}

type l2NormalizeGradOp struct {
	opBase
	gradOnly
	fwd *l2NormalizeOp
	out buffer
}

func (op *l2NormalizeGradOp) Arity() int { return 2 }
func (op *l2NormalizeGradOp) Type() hm.Type {
	t := tensorType(op.fwd.rank)
	return fnType(t, t, t)
}
func (op *l2NormalizeGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return op.fwd.InferShape(in[0])
}

func (op *l2NormalizeGradOp) Do(inputs ...G.Value) (G.Value, error) {
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
	if !xs.Eq(gs) {
		return nil, fmt.Errorf("vat: %s: shapes %v and %v differ", op.name, xs, gs)
	}
	out := op.out.get(xs...)
	gx := out.Data().([]float32)
	n := xs[0]
	m := len(x) / n
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.L2NormalizeGrad(gx, x, g, n, op.fwd.scale))
	}
	kernels.ParallelFor(n, func(_, i int) {
		xi, gi, oi := x[i*m:(i+1)*m], g[i*m:(i+1)*m], gx[i*m:(i+1)*m]
		nrm := sampleNorm(xi)
		var dot float64
		for j, v := range xi {
			dot += float64(v) * float64(gi[j])
		}
		a, b := 0.0, 0.0
		if nrm > 0 {
			a = op.fwd.scale / nrm
			b = op.fwd.scale * dot / (nrm * nrm * nrm)
		}
		for j, v := range xi {
			oi[j] = float32(a*float64(gi[j]) - b*float64(v))
		}
	})
	return out, nil
}
