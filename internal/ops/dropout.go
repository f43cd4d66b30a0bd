package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
	"github.com/org/vat/internal/rng"
)

// dropoutOp is inverted dropout: every run draws a fresh mask from its own
// seeded generator, keeping each element with probability 1-p, and
//
//	y = x · m / (1-p),  m ~ Bernoulli(1-p)
//
// so that E[y] = x and inference needs no rescaling. Its gradient multiplies
// by the same m/(1-p). (Gorgonia's own Dropout scales its gradient by 1/p and
// is seeded from the clock; this op replaces it.)
type dropoutOp struct {
	opBase
	p    float64
	rng  rng.Chunked
	mask []float32 // m/(1-p) of the last run, read by the gradient op
	out  buffer
}

// NewDropout returns a dropout op with drop probability p in [0, 1) whose
// masks come from a generator seeded with seed.
func NewDropout(p float64, seed uint64) (*dropoutOp, error) {
	if !(p >= 0 && p < 1) {
		return nil, fmt.Errorf("vat: dropout rate %v outside [0, 1)", p)
	}
	return &dropoutOp{opBase: newOpBase(fmt.Sprintf("Dropout(%g)", p)), p: p, rng: rng.NewChunked(seed)}, nil
}

// A Stream is an op that draws random numbers every run (dropout): its
// state is the number of runs so far, which a checkpoint saves and a
// resumed run restores.
type Stream interface {
	Draws() uint64
	SetDraws(uint64)
}

// Draws returns how many masks the op has drawn.
func (op *dropoutOp) Draws() uint64 { return op.rng.Fills() }

// SetDraws makes the next mask the one that followed n draws.
func (op *dropoutOp) SetDraws(n uint64) { op.rng.SetFills(n) }

func (op *dropoutOp) Arity() int { return 1 }
func (op *dropoutOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return fnType(a, a)
}
func (op *dropoutOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: Dropout: shape unknown")
	}
	return s.Clone(), nil
}

func (op *dropoutOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	out := op.out.get(xs...)
	y := out.Data().([]float32)
	if cap(op.mask) < len(x) {
		op.mask = make([]float32, len(x))
	}
	op.mask = op.mask[:len(x)]
	scale := float32(1 / (1 - op.p))
	if a := backend.Active(); a != nil {
		// The device draws the mask the CPU would: both backends drop
		// the same units.
		if err := a.Bernoulli(op.mask, op.rng.Next(), 1-op.p, scale); err != nil {
			return nil, err
		}
		return gpuOut(out, a.Mul(op.name, y, x, op.mask))
	}
	op.rng.Bernoulli(op.mask, 1-op.p, scale)
	mask := op.mask
	kernels.ParallelChunks(len(y), func(lo, hi int) { kernels.Mul(y[lo:hi], x[lo:hi], mask[lo:hi]) })
	return out, nil
}

func (op *dropoutOp) DiffWRT(int) []bool { return []bool{true} }

func (op *dropoutOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	gx, err := G.ApplyOp(&dropoutGradOp{opBase: newOpBase("DropoutGrad"), fwd: op}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx}, nil
}

// dropoutGradOp multiplies the incoming gradient by the mask that its
// forward op drew in the same step.
type dropoutGradOp struct {
	opBase
	gradOnly
	fwd *dropoutOp
	out buffer
}

func (op *dropoutGradOp) Arity() int { return 1 }
func (op *dropoutGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return fnType(a, a)
}
func (op *dropoutGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return op.fwd.InferShape(in...)
}

func (op *dropoutGradOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	g, gs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	if len(op.fwd.mask) != len(g) {
		return nil, fmt.Errorf("vat: %s ran before its forward op", op.name)
	}
	out := op.out.get(gs...)
	gx := out.Data().([]float32)
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.Mul(op.name, gx, g, op.fwd.mask))
	}
	mask := op.fwd.mask
	kernels.ParallelChunks(len(gx), func(lo, hi int) { kernels.Mul(gx[lo:hi], g[lo:hi], mask[lo:hi]) })
	return out, nil
}
