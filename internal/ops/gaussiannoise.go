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

// gaussianNoiseOp adds zero-mean Gaussian noise, fresh every run from its
// own seeded generator:
//
//	y = x + σ·n,  n ~ N(0, 1) elementwise
//
// Its gradient is the identity. Training-time noise on hidden layers is the
// regularizer of Salimans et al. (2016), which the VAT paper's MNIST network
// uses (σ = 0.5; Miyato et al. 2018, appendix C). On a GPU the noise comes
// from the device generator (rng.PhiloxNormals): other draws than the
// CPU's, from the same seed and fill count.
type gaussianNoiseOp struct {
	opBase
	sigma float32
	rng   rng.Chunked
	noise []float32
	out   buffer
}

// NewGaussianNoise returns the op with standard deviation sigma > 0, its
// noise drawn from a generator seeded with seed.
func NewGaussianNoise(sigma float64, seed uint64) (*gaussianNoiseOp, error) {
	if !(sigma > 0) {
		return nil, fmt.Errorf("vat: Gaussian noise stddev %v, want > 0", sigma)
	}
	return &gaussianNoiseOp{opBase: newOpBase(fmt.Sprintf("GaussianNoise(%g)", sigma)), sigma: float32(sigma), rng: rng.NewChunked(seed)}, nil
}

// Draws returns how many noise tensors the op has drawn.
func (op *gaussianNoiseOp) Draws() uint64 { return op.rng.Fills() }

// SetDraws makes the next noise the one that followed n draws.
func (op *gaussianNoiseOp) SetDraws(n uint64) { op.rng.SetFills(n) }

func (op *gaussianNoiseOp) Arity() int { return 1 }
func (op *gaussianNoiseOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return fnType(a, a)
}
func (op *gaussianNoiseOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: GaussianNoise: shape unknown")
	}
	return s.Clone(), nil
}

func (op *gaussianNoiseOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 1, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	out := op.out.get(xs...)
	y := out.Data().([]float32)
	if cap(op.noise) < len(x) {
		op.noise = make([]float32, len(x))
	}
	op.noise = op.noise[:len(x)]
	if a := backend.Active(); a != nil {
		if err := a.Normals(&op.rng, op.noise); err != nil {
			return nil, err
		}
		return gpuOut(out, a.Axpby(y, 1, x, op.sigma, op.noise))
	}
	op.rng.Normals(op.noise)
	noise, sigma := op.noise, op.sigma
	kernels.ParallelChunks(len(y), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = x[i] + sigma*noise[i]
		}
	})
	return out, nil
}

func (op *gaussianNoiseOp) DiffWRT(int) []bool { return []bool{true} }

// SymDiff: additive noise passes the gradient through unchanged.
func (op *gaussianNoiseOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{grad}, nil
}
