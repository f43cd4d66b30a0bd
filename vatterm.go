package vat

import (
	"fmt"
	"sync/atomic"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/rng"
)

// VATTerm is Virtual Adversarial Training's term in a graph of the
// caller's own, made by NewVATTerm: the local distributional smoothness
//
//	LDS(x, θ) = 1/N Σ_i KL( p(y|x_i, θ̂) ‖ p(y|x_i + r_adv,i, θ) )
//
// and the adversarial perturbation r_adv at which it is measured. Add
// α·LDS to the training loss (it needs no labels, so x may be unlabeled
// data) and differentiate the total with respect to the weights as usual.
//
// The term has two inputs of its own besides x: the random start
// direction d of the power iteration, which must be drawn anew before
// every run (Resample, or SetNoise), and one all-zero probe per power
// iteration. Both are bound to tensors in the graph, so a TapeMachine over
// the whole graph needs nothing more; a program compiled with
// CompileFunction lists Inputs among its inputs.
type VATTerm struct {
	// LDS is the scalar loss, averaged over the batch (before α).
	LDS *G.Node
	// RAdv is the adversarial perturbation r_adv, shaped like x; each
	// sample has L2 norm ε.
	RAdv *G.Node

	noise  *tensor.Dense
	inputs G.Nodes
	rng    rng.Chunked
}

// NewVATTerm adds VAT's term for the classifier forward to the graph of x,
// whose clean logits (N×K, softmax not applied) are logits. cfg's zero
// fields mean the Keras original's settings (VATConfig); seed fixes the random
// directions that Resample draws.
//
// forward(in) must build the caller's network on the node in (shaped like
// x) with the same weight nodes that computed logits, and return in's
// logits; NewVATTerm calls it 1 + cfg.Ip times. The network must be
// deterministic in its input (no dropout: its masks would differ between
// the passes) and every op in it must survive a second differentiation,
// since the power iteration takes a gradient inside the graph that the
// training loss is differentiated again. Measured with Gorgonia v0.9.18:
// Mul (matrix products), Add, BroadcastAdd, HadamardProd, Rectify,
// LeakyRelu, Tanh, Sigmoid, Softplus, Exp, Square, Cube, Neg, Reshape,
// Conv2d and MaxPool2D do; SoftMax, LogSoftMax and Dropout panic. Work on
// logits, with this package's CrossEntropy, KLDivergence and Entropy, which
// take logits.
//
// The gradient of the power iteration is taken with respect to d, through
// the normalization (see adversarialPerturbation); with cfg.CleanGrad the
// gradient of LDS also flows into the clean logits.
func NewVATTerm(x, logits *G.Node, forward func(in *G.Node) (*G.Node, error), cfg VATConfig, seed uint64) (*VATTerm, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	switch {
	case x == nil || logits == nil || forward == nil:
		return nil, fmt.Errorf("vat: NewVATTerm: x, logits and forward must not be nil")
	case x.Graph() == nil || x.Graph() != logits.Graph():
		return nil, fmt.Errorf("vat: NewVATTerm: x and logits must be in one graph")
	case x.Dims() < 2 || x.Dtype() != G.Float32:
		return nil, fmt.Errorf("vat: NewVATTerm: x is %v of %v, want a float32 batch (N×…)", x.Shape(), x.Dtype())
	case logits.Dims() != 2 || logits.Shape()[0] != x.Shape()[0]:
		return nil, fmt.Errorf("vat: NewVATTerm: logits have shape %v, want %d×K for x of shape %v", logits.Shape(), x.Shape()[0], x.Shape())
	}
	s := &scope{g: x.Graph()}
	apply := func(in *G.Node) *G.Node {
		if s.err != nil {
			return nil
		}
		out, err := forward(in)
		switch {
		case err != nil:
			s.err = fmt.Errorf("vat: NewVATTerm: forward: %w", err)
		case out == nil || !out.Shape().Eq(logits.Shape()):
			s.err = fmt.Errorf("vat: NewVATTerm: forward returned %v, want logits of shape %v", out, logits.Shape())
		}
		return out
	}
	v := &VATTerm{noise: tensor.New(tensor.WithShape(x.Shape()...), tensor.Of(tensor.Float32)),
		rng: rng.NewChunked(rng.SplitMix64(seed ^ rng.SplitMix64(rng.Noise)))}
	id := vatTerms.Add(1) // input nodes need unique names: Gorgonia merges look-alikes
	in := vatInputs{noise: G.NewTensor(s.g, G.Float32, x.Dims(), G.WithShape(x.Shape()...), G.WithValue(v.noise),
		G.WithName(fmt.Sprintf("vat/noise#%d", id)))}
	v.inputs = G.Nodes{in.noise}
	for k := 0; k < cfg.Ip; k++ {
		z := G.NewTensor(s.g, G.Float32, x.Dims(), G.WithShape(x.Shape()...),
			G.WithValue(tensor.New(tensor.WithShape(x.Shape()...), tensor.Of(tensor.Float32))),
			G.WithName(fmt.Sprintf("vat/probe%d#%d", k, id)))
		in.probes = append(in.probes, z)
		v.inputs = append(v.inputs, z)
	}
	v.LDS, v.RAdv, _ = vatTerm(s, cfg, in, passes{probe: apply, adversarial: apply}, x, logits, cfg.CleanGrad, nil)
	if s.err != nil {
		return nil, s.err
	}
	v.Resample()
	return v, nil
}

// vatTerms numbers the terms made by NewVATTerm.
var vatTerms atomic.Uint64

// Resample draws a new random direction d ~ N(0, I) from the term's seeded
// stream, for the next run of the graph. Call it before every training
// step.
func (v *VATTerm) Resample() {
	d := v.noise.Data().([]float32)
	v.rng.Normals(d)
	backend.MarkHostWritten(d)
}

// SetNoise sets the random direction d for the next run (len(d) must be
// x's size): for callers who draw their own, or who compare the term with
// another implementation on the same noise.
func (v *VATTerm) SetNoise(d []float32) error {
	dst := v.noise.Data().([]float32)
	if len(d) != len(dst) {
		return fmt.Errorf("vat: VATTerm.SetNoise: %d values, want %d (x's shape %v)", len(d), len(dst), v.noise.Shape())
	}
	copy(dst, d)
	backend.MarkHostWritten(dst)
	return nil
}

// Inputs returns the term's own input nodes (the noise, then the probes),
// for programs compiled with gorgonia.CompileFunction.
func (v *VATTerm) Inputs() G.Nodes { return append(G.Nodes(nil), v.inputs...) }
