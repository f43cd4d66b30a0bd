package vat

import (
	"fmt"
	"math"
	"sync/atomic"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/ops"
	"github.com/org/vat/internal/rng"
)

// VATConfig holds the hyperparameters of Virtual Adversarial Training
// (Miyato, Maeda, Koyama, Ishii: "Virtual Adversarial Training: a
// Regularization Method for Supervised and Semi-Supervised Learning",
// TPAMI 2018, arXiv:1704.03976). The zero value means the seed's settings.
type VATConfig struct {
	// Xi is the length ξ of the probe perturbation in the power iteration.
	// 0 means 10 (the seed's value; the paper's code uses 1e-6).
	Xi float64
	// Eps is the length ε of the adversarial perturbation. 0 means 1.
	Eps float64
	// Ip is the number of power iterations. 0 means 1.
	Ip int
	// Alpha weighs the VAT term in the loss: CE + α·LDS. 0 means 1.
	Alpha float64
	// CleanGrad lets the gradient flow through the clean prediction p(y|x)
	// in the final KL term, as the seed's Keras code does. By default p(y|x)
	// is a constant there, as in the paper's official code.
	CleanGrad bool
	// Probe chooses how the power iteration multiplies d by the KL's
	// curvature: FiniteDifference (the default, the paper's Algorithm 1,
	// with Xi) or Exact.
	Probe Probe
}

// Probe is how VAT's power iteration computes H·d, H being the Hessian of
// r ↦ KL(p(y|x) ‖ p(y|x + r)) at r = 0.
type Probe int

const (
	// FiniteDifference takes the gradient of KL(p(y|x) ‖ p(y|x + ξ·d/‖d‖))
	// with respect to d: the paper's Algorithm 1. In float32 it needs a ξ
	// far above the paper's 1e-6: x + ξ·d rounds back to x on bright pixels,
	// and once the model is confident the KL's gradient is lost to
	// cancellation.
	FiniteDifference Probe = iota
	// Exact computes H·d = Jᵀ F J d with no ξ: J d by one tangent pass
	// through the network (the clean pass's ReLU masks and max-pool
	// choices, batch normalization with its batch statistics' derivative
	// in training, no biases), F
	// the softmax's Fisher matrix diag(p) − p·pᵀ, and Jᵀ by one backward
	// pass. It is exact for networks of the package's layers without
	// Dropout (whose KL is piecewise quadratic in r near 0 up to the
	// softmax), at any scale.
	Exact
)

// String returns "finite-difference" or "exact".
func (p Probe) String() string {
	switch p {
	case FiniteDifference:
		return "finite-difference"
	case Exact:
		return "exact"
	}
	return fmt.Sprintf("Probe(%d)", int(p))
}

// withDefaults fills in zero fields and validates the rest.
func (c VATConfig) withDefaults() (VATConfig, error) {
	if c.Xi == 0 {
		c.Xi = 10
	}
	if c.Eps == 0 {
		c.Eps = 1
	}
	if c.Ip == 0 {
		c.Ip = 1
	}
	if c.Alpha == 0 {
		c.Alpha = 1
	}
	switch {
	case !(c.Xi > 0) || math.IsInf(c.Xi, 0):
		return c, fmt.Errorf("vat: VATConfig.Xi = %v: want a finite number > 0", c.Xi)
	case !(c.Eps > 0) || math.IsInf(c.Eps, 0):
		return c, fmt.Errorf("vat: VATConfig.Eps = %v: want a finite number > 0", c.Eps)
	case c.Ip < 1 || c.Ip > 100:
		return c, fmt.Errorf("vat: VATConfig.Ip = %d: want 1 to 100 power iterations", c.Ip)
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 0):
		return c, fmt.Errorf("vat: VATConfig.Alpha = %v: want a finite number > 0", c.Alpha)
	case c.Probe != FiniteDifference && c.Probe != Exact:
		return c, fmt.Errorf("vat: VATConfig.Probe = %d: want FiniteDifference or Exact", c.Probe)
	}
	return c, nil
}

// vatInputs are the graph inputs the VAT term needs besides the batch: the
// random start direction, and one all-zero probe per power iteration (see
// adversarialDirection).
type vatInputs struct {
	noise  *G.Node   // d ~ N(0, I), shaped like x, drawn anew every step
	probes []*G.Node // zeros, shaped like x
}

func newVATInputs(g *G.ExprGraph, ip int, shape ...int) vatInputs {
	in := vatInputs{noise: G.NewTensor(g, G.Float32, len(shape), G.WithShape(shape...), G.WithName("vat/noise"))}
	for k := 0; k < ip; k++ {
		in.probes = append(in.probes, G.NewTensor(g, G.Float32, len(shape), G.WithShape(shape...), G.WithName(fmt.Sprintf("vat/probe%d", k))))
	}
	return in
}

// bindVATInputs adds VAT's inputs for a batch of the given shape to s's
// graph: the start direction, bound to a fresh tensor that the caller
// fills every step (returned), and the all-zero probes. It also returns
// the input nodes to hand to the compiler.
func bindVATInputs(s *scope, ip int, shape []int) (vatInputs, *tensor.Dense, G.Nodes) {
	in := newVATInputs(s.g, ip, shape...)
	noise := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	bind := func(n *G.Node, v *tensor.Dense) {
		if err := G.Let(n, v); err != nil && s.err == nil {
			s.err = fmt.Errorf("vat: binding %v: %w", n.Name(), err)
		}
	}
	bind(in.noise, noise)
	nodes := G.Nodes{in.noise}
	for _, z := range in.probes {
		bind(z, tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32)))
		nodes = append(nodes, z)
	}
	return in, noise, nodes
}

// vatObjective builds the training loss CE + α·LDS from the clean logits of
// x and their cross-entropy ce, with
//
//	LDS(x, θ) = KL( p(y|x, θ̂) ‖ p(y|x + r_adv, θ) )
//
// averaged over the batch. probe and adversarial apply the model to another
// input (the first in the power iteration, the second in the final term,
// whose weight gradient counts). θ̂ means p(y|x) is a constant in LDS, as in
// the paper's code; with cfg.CleanGrad the gradient also flows through it,
// as in the seed. It returns the loss, LDS's value and r_adv.
func vatObjective(s *scope, cfg VATConfig, in vatInputs, probe passes, x, labels, logits, ce *G.Node) (loss, lds, rAdv *G.Node) {
	lds, rAdv, advLogits := vatTerm(s, cfg, in, probe, x, logits, false)
	if cfg.CleanGrad {
		// CE and KL share the clean logits: one op (see jointLossOp); lds
		// then only reports the value.
		return s.apply(ops.NewJointLoss(cfg.Alpha), logits, labels, advLogits), lds, rAdv
	}
	return weightedSum(s, []float64{1, cfg.Alpha}, ce, lds), lds, rAdv
}

// passes are the ways VAT applies the model besides the clean pass: probe
// (the finite-difference power iteration, at x + ξ·d), tangent (the exact
// one: J·d at the clean pass; nil where the model is not the package's) and
// adversarial (at x + r_adv, the pass whose weight gradient counts).
type passes struct {
	probe, tangent, adversarial func(*G.Node) *G.Node
	// coupled: the tangent map mixes samples (batch normalization with
	// the batch's statistics), so the exact probe scales its Fisher
	// products once for the batch, not per sample.
	coupled bool
}

// vatPasses returns the passes of a model: probe and tangent with the
// weights w of the clean pass recorded in trace, adversarial with the
// weights adv.
func (m *Model) vatPasses(s *scope, w weights, trace []layerTrace, adv weights) passes {
	return passes{
		probe:       func(in *G.Node) *G.Node { return m.forward(s, w, in) },
		tangent:     func(in *G.Node) *G.Node { return m.tangent(s, w, trace, in) },
		adversarial: func(in *G.Node) *G.Node { return m.forward(s, adv, in) },
		coupled:     s.batchStats && m.hasBatchNorm(),
	}
}

// vatTerm builds r_adv by power iteration and LDS = KL(p(y|x) ‖ p(y|x +
// r_adv)). p(y|x) is a constant in the power iteration, and in LDS unless
// cleanGrad. It returns LDS, r_adv and the adversarial logits.
func vatTerm(s *scope, cfg VATConfig, in vatInputs, ps passes, x, logits *G.Node, cleanGrad bool) (lds, rAdv, advLogits *G.Node) {
	pConst := stopGradient(s, logits)
	rAdv = perturbation(s, cfg, in, ps, x, pConst)
	advLogits = ps.adversarial(add(s, x, rAdv))
	p := pConst
	if cleanGrad {
		p = logits
	}
	return klDivergence(s, p, advLogits, Mean), rAdv, advLogits
}

// perturbation returns r_adv by the power iteration cfg.Probe chooses:
// exactPerturbation with ps.tangent, or adversarialPerturbation with
// ps.probe.
func perturbation(s *scope, cfg VATConfig, in vatInputs, ps passes, x, pConst *G.Node) *G.Node {
	if cfg.Probe == Exact {
		return exactPerturbation(s, cfg, in, ps.tangent, ps.coupled, pConst)
	}
	return adversarialPerturbation(s, cfg, in, ps.probe, x, pConst)
}

// adversarialPerturbation approximates r_adv = argmax_{‖r‖≤ε} KL(p(y|x) ‖
// p(y|x+r)) by power iteration on the Hessian of the KL (the paper's
// Algorithm 1, in the seed's form):
//
//	d ~ N(0, I)
//	repeat ip times:
//	    d ← ∇_d KL(p(y|x) ‖ p(y|x + ξ·d/‖d‖))   (summed over the batch)
//	r_adv = ε·d/‖d‖
//
// with norms per sample. The gradient is taken with respect to d, through
// the normalization, as SPEC.md, the seed and the PyTorch peer do. The
// paper's code takes it with respect to r = ξ·d/‖d‖ instead; the two differ
// by the component along d, which the normalization removes. With the
// paper's ξ = 1e-6 that component is small; with the seed's ξ = 10 the KL
// grows steeply along the random start direction itself, and keeping that
// component would pull r_adv back towards the random noise.
//
// Gorgonia differentiates only with respect to input nodes, so each
// iteration writes d as d + z with z an all-zero input (a "probe") and
// differentiates with respect to z. Each new d passes through StopGradient,
// so neither d nor r_adv feeds the weight gradients.
func adversarialPerturbation(s *scope, cfg VATConfig, in vatInputs, forward func(*G.Node) *G.Node, x, pConst *G.Node) *G.Node {
	d := in.noise
	for _, z := range in.probes {
		d = add(s, d, z) // = d, with z to differentiate by
		r := l2Normalize(s, d, cfg.Xi)
		// Only dist's gradient is used: NewKLRoot computes no value.
		dist := s.apply(ops.NewKLRoot(ops.Sum), pConst, forward(add(s, x, r)))
		d = stopGradient(s, gradient(s, dist, z))
	}
	return l2Normalize(s, d, cfg.Eps)
}

// exactPerturbation approximates r_adv by power iteration on H, the KL's
// Hessian at r = 0, computed exactly (the Exact probe):
//
//	d ← N(0, I) / ‖·‖
//	repeat ip times:
//	    d ← H·d / ‖H·d‖,   H·d = ∇_u ½ (J·u)ᵀ F (J·u) at u = d
//	r_adv = ε·d
//
// with J·u the network's tangent map at the clean pass (tangent) and F the
// softmax's Fisher matrix at the clean prediction (see ops.NewFisherQuadratic;
// ops.NewFisherDirection scales F·J·u per sample so that a confident
// prediction's tiny curvature does not underflow float32).
// As with the finite-difference probe, u is written d + z with z an all-zero
// input, and each new d passes through StopGradient.
func exactPerturbation(s *scope, cfg VATConfig, in vatInputs, tangent func(*G.Node) *G.Node, coupled bool, pConst *G.Node) *G.Node {
	if s.err == nil && tangent == nil {
		s.err = fmt.Errorf("vat: VATConfig.Probe = Exact needs a network of the package's layers (Sequential or NewModel)")
	}
	d := l2Normalize(s, in.noise, 1)
	for _, z := range in.probes {
		u := add(s, d, z)
		fisher := ops.NewFisherDirection()
		if coupled {
			fisher = ops.NewFisherDirectionBatch()
		}
		q := s.apply(fisher, pConst, tangent(u))
		d = l2Normalize(s, stopGradient(s, gradient(s, q, z)), 1)
	}
	return l2Normalize(s, d, cfg.Eps)
}

// The helpers below are the graph operations that VAT uses, in the scope's
// sticky-error style.

func stopGradient(s *scope, x *G.Node) *G.Node { return s.apply(ops.NewStopGradient(), x) }

// hasBatchNorm reports whether the network has a layer with running
// statistics (BatchNorm), whose tangent map mixes the batch's samples.
func (m *Model) hasBatchNorm() bool {
	for _, st := range m.stats {
		if st != nil {
			return true
		}
	}
	return false
}

func l2Normalize(s *scope, x *G.Node, scale float64) *G.Node {
	if s.err != nil {
		return nil
	}
	return s.apply(ops.NewL2Normalize(scale, x.Dims()), x)
}

func klDivergence(s *scope, p, q *G.Node, r Reduction) *G.Node {
	return s.apply(ops.NewKL(ops.Reduction(r)), p, q)
}

func add(s *scope, a, b *G.Node) *G.Node { return s.apply(ops.NewAdd(), a, b) }

// gradient returns ∂cost/∂wrt, wrt being an input node.
func gradient(s *scope, cost, wrt *G.Node) *G.Node {
	if s.err != nil {
		return nil
	}
	g, err := G.Grad(cost, wrt)
	if err != nil {
		s.err = fmt.Errorf("vat: differentiating %v: %w", cost, err)
		return nil
	}
	return g[0]
}

// weightedSum returns Σ w_i·x_i of scalar nodes.
func weightedSum(s *scope, w []float64, x ...*G.Node) *G.Node {
	return s.apply(ops.NewWeightedSum(w...), x...)
}

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
// fields mean the seed's settings (VATConfig); seed fixes the random
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
	v.LDS, v.RAdv, _ = vatTerm(s, cfg, in, passes{probe: apply, adversarial: apply}, x, logits, cfg.CleanGrad)
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
