package vat

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"github.com/org/vat/internal/ops"
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
func vatObjective(s *scope, cfg VATConfig, in vatInputs, probe, adversarial func(*G.Node) *G.Node, x, labels, logits, ce *G.Node) (loss, lds, rAdv *G.Node) {
	// In the power iteration p(y|x) is a constant: only the perturbed branch
	// depends on r.
	pConst := stopGradient(s, logits)
	rAdv = adversarialPerturbation(s, cfg, in, probe, x, pConst)
	advLogits := adversarial(add(s, x, rAdv))
	lds = klDivergence(s, pConst, advLogits, Mean)
	if cfg.CleanGrad {
		// CE and KL share the clean logits: one op (see jointLossOp); ce
		// then only reports the value.
		return s.apply(ops.NewJointLoss(cfg.Alpha), logits, labels, advLogits), lds, rAdv
	}
	return weightedSum(s, []float64{1, cfg.Alpha}, ce, lds), lds, rAdv
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
		dist := klDivergence(s, pConst, forward(add(s, x, r)), Sum)
		d = stopGradient(s, gradient(s, dist, z))
	}
	return l2Normalize(s, d, cfg.Eps)
}

// The helpers below are the graph operations that VAT uses, in the scope's
// sticky-error style.

func stopGradient(s *scope, x *G.Node) *G.Node { return s.apply(ops.NewStopGradient(), x) }

func l2Normalize(s *scope, x *G.Node, scale float64) *G.Node {
	if s.err != nil {
		return nil
	}
	return s.apply(ops.NewL2Normalize(scale, x.Dims()), x)
}

func klDivergence(s *scope, p, q *G.Node, r Reduction) *G.Node { return s.apply(ops.NewKL(r), p, q) }

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
