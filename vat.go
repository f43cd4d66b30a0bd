package vat

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/ops"
)

// VATConfig holds the hyperparameters of Virtual Adversarial Training
// (Miyato, Maeda, Koyama, Ishii: "Virtual Adversarial Training: a
// Regularization Method for Supervised and Semi-Supervised Learning",
// TPAMI 2018, arXiv:1704.03976). The zero value means the Keras original's settings.
type VATConfig struct {
	// Xi is the length ξ of the probe perturbation in the power iteration.
	// 0 means 10 (the Keras original's value; the paper's code uses 1e-6).
	Xi float64
	// Eps is the length ε of the adversarial perturbation. 0 means 1.
	Eps float64
	// Ip is the number of power iterations. 0 means 1.
	Ip int
	// Alpha weighs the VAT term in the loss: CE + α·LDS. 0 means 1.
	Alpha float64
	// CleanGrad lets the gradient flow through the clean prediction p(y|x)
	// in the final KL term, as the Keras original's Keras code does. By default p(y|x)
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
// Algorithm 1, in the Keras original's form):
//
//	d ~ N(0, I)
//	repeat ip times:
//	    d ← ∇_d KL(p(y|x) ‖ p(y|x + ξ·d/‖d‖))   (summed over the batch)
//	r_adv = ε·d/‖d‖
//
// with norms per sample. The gradient is taken with respect to d, through
// the normalization, as SPEC.md, the Keras original and the PyTorch peer do. The
// paper's code takes it with respect to r = ξ·d/‖d‖ instead; the two differ
// by the component along d, which the normalization removes. With the
// paper's ξ = 1e-6 that component is small; with the Keras original's ξ = 10 the KL
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
