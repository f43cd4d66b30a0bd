package vat

import (
	"encoding/json"
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/ops"
)

// VATConfig holds the hyperparameters of Virtual Adversarial Training
// (Miyato, Maeda, Koyama, Ishii: "Virtual Adversarial Training: a
// Regularization Method for Supervised and Semi-Supervised Learning",
// TPAMI 2018, arXiv:1704.03976).
//
// The zero value adapts to the data, so that one default serves inputs of
// any scale. In Trainer and SemiTrainer the power iteration is Exact for a
// network without Dropout or BatchNorm and FiniteDifference otherwise, and
// ε is a fraction of the data's scale (DataScale: the root-mean-square
// distance of a training sample from the mean sample), measured once when
// training starts: 0.05 in Trainer; in SemiTrainer the fraction is chosen
// from the labeled samples by a search over 0.05, 0.2 and 0.7
// (SemiSupervisedConfig.EpsSearch, SelectEps' rule), which keeps 0.05
// unless another is significantly better on held-out labels.
// Config().VAT then shows the values chosen.
//
// What the defaults were measured on (README, docs/defaults): on two
// moons, 20-D Gaussian blobs (MLPs with and without batch norm, 500 and
// 5,000 updates) and MNIST with 1,000 labels, ε = 0.05 of the scale beats
// training on the labels alone on every split, with either probe (with
// batch norm evaluated on population statistics, SemiSupervisedConfig's
// default). Larger fractions collapse the blobs over long runs. They are
// not a good choice everywhere: on MNIST with 100 labels (1200-1200 MLP,
// with or without batch norm) every default-sized ε tried (0.05-0.2 of the
// scale) ends worse than supervised training, while the finite-difference
// probe at ε = 5 (0.69 of the scale) reaches 1.7-4 %
// (docs/defaults/mnist100.md, docs/semisup). The search, which chooses the
// scale from the labeled samples alone, tells the two kinds of data apart:
// it beat supervised training on every split of all four datasets
// (docs/defaults/select.md), which is why SemiTrainer runs it by default
// (since version 0.8.0). For MNIST a published recipe (Recipes) or that
// setting also works.
//
// How to choose ε yourself: ε is a length in the input's own units, the
// radius within which VAT asks the prediction not to change. It should be
// well below the distance between classes and above the noise the model
// should ignore. Start from the default and try a few EpsScale values
// around it on a labeled validation split, never on the test set:
// SelectEps does that. Too large an ε flattens the prediction across class
// boundaries. The official MNIST code used ε = 0.3 (pixels in [0, 1];
// 0.04 of MNIST's scale, 7.26); the TPAMI network, with Gaussian noise on
// every hidden layer, ε = 5. ξ, the finite-difference probe's length, only
// needs to be small next to ε and large enough for float32: the default
// (1e-3 of the scale) is; the paper's 1e-6 is not in float32.
//
// NewVATTerm and Model.Gradients see no dataset: there a zero Eps means 1,
// a zero Xi 10 (the Keras original's values) and the zero Probe
// FiniteDifference.
type VATConfig struct {
	// Xi is the length ξ of the finite-difference probe. 0 means 1e-3 of
	// the data's scale (10 without data).
	Xi float64
	// Eps is the length ε of the adversarial perturbation, in the input's
	// units. 0 means EpsScale × the data's scale (1 without data).
	Eps float64
	// EpsScale sets ε relative to the data's scale when Eps is 0, in
	// (0, 10]; 0 means 0.05, or in SemiTrainer the scale its search
	// chooses (SemiSupervisedConfig.EpsSearch). Setting both Eps and
	// EpsScale is an error.
	EpsScale float64
	// Ip is the number of power iterations. 0 means 1.
	Ip int
	// Alpha weighs the VAT term in the loss: CE + α·LDS. 0 means 1.
	Alpha float64
	// CleanGrad lets the gradient flow through the clean prediction p(y|x)
	// in the final KL term, as the Keras original does. By default p(y|x)
	// is a constant there, as in the paper's official code.
	CleanGrad bool
	// Probe chooses how the power iteration multiplies d by the KL's
	// curvature: ProbeAuto (the zero value: Exact for a network without
	// Dropout or BatchNorm), FiniteDifference (the paper's Algorithm 1,
	// with Xi) or Exact.
	Probe Probe
}

// Probe is how VAT's power iteration computes H·d, H being the Hessian of
// r ↦ KL(p(y|x) ‖ p(y|x + r)) at r = 0.
type Probe int

const (
	// ProbeAuto is Exact for a network without Dropout or BatchNorm,
	// FiniteDifference otherwise (and in NewVATTerm and Model.Gradients).
	ProbeAuto Probe = iota
	// FiniteDifference takes the gradient of KL(p(y|x) ‖ p(y|x + ξ·d/‖d‖))
	// with respect to d: the paper's Algorithm 1. In float32 it needs a ξ
	// far above the paper's 1e-6: x + ξ·d rounds back to x on bright pixels,
	// and once the model is confident the KL's gradient is lost to
	// cancellation.
	FiniteDifference
	// Exact computes H·d = Jᵀ F J d with no ξ: J d by one tangent pass
	// through the network (the clean pass's ReLU masks and max-pool
	// choices, batch normalization with its batch statistics' derivative
	// in training, no biases), F the softmax's Fisher matrix diag(p) −
	// p·pᵀ, and Jᵀ by one backward pass. It is exact for networks of the
	// package's layers without Dropout (whose KL is piecewise quadratic in
	// r near 0 up to the softmax), at any scale.
	Exact
)

// String returns "auto", "finite-difference" or "exact".
func (p Probe) String() string {
	switch p {
	case ProbeAuto:
		return "auto"
	case FiniteDifference:
		return "finite-difference"
	case Exact:
		return "exact"
	}
	return fmt.Sprintf("Probe(%d)", int(p))
}

// MarshalJSON writes the probe's name.
func (p Probe) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// UnmarshalJSON reads a probe's name, or the number a checkpoint written
// before ProbeAuto existed holds (0 finite difference, 1 exact).
func (p *Probe) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		for _, q := range []Probe{ProbeAuto, FiniteDifference, Exact} {
			if q.String() == name {
				*p = q
				return nil
			}
		}
		return fmt.Errorf("probe %q: want auto, finite-difference or exact", clip(name))
	}
	var old int
	if err := json.Unmarshal(b, &old); err != nil || old < 0 || old > 1 {
		return fmt.Errorf("probe %s: want a name, or 0 or 1 in an older file", clip(string(b)))
	}
	*p = []Probe{FiniteDifference, Exact}[old]
	return nil
}

// Defaults relative to the data's scale (see VATConfig): ε for either
// probe, and the finite-difference probe's ξ.
const (
	defaultEpsScale = 0.05
	defaultXiScale  = 1e-3
)

// withDefaults fills in the fields whose defaults need no data, validates
// every field, and, for callers without data (NewVATTerm, Gradients),
// fills in the Keras original's ξ and ε and the finite-difference probe.
func (c VATConfig) withDefaults() (VATConfig, error) {
	c, err := c.validated()
	if err != nil {
		return c, err
	}
	return c.resolve(1, false, false), nil
}

// validated fills in Ip and Alpha and validates every field, leaving the
// data-relative ones (Xi, Eps 0; ProbeAuto) as they are.
func (c VATConfig) validated() (VATConfig, error) {
	if c.Ip == 0 {
		c.Ip = 1
	}
	if c.Alpha == 0 {
		c.Alpha = 1
	}
	switch {
	case !(c.Xi >= 0) || math.IsInf(c.Xi, 0):
		return c, fmt.Errorf("vat: VATConfig.Xi = %v: want a finite number > 0 (0: relative to the data)", c.Xi)
	case !(c.Eps >= 0) || math.IsInf(c.Eps, 0):
		return c, fmt.Errorf("vat: VATConfig.Eps = %v: want a finite number > 0 (0: relative to the data)", c.Eps)
	case !(c.EpsScale >= 0 && c.EpsScale <= 10):
		return c, fmt.Errorf("vat: VATConfig.EpsScale = %v: want a number in (0, 10] (0 means %g)", c.EpsScale, defaultEpsScale)
	case c.Eps > 0 && c.EpsScale > 0:
		return c, fmt.Errorf("vat: VATConfig.Eps = %v and EpsScale = %v: want one of them", c.Eps, c.EpsScale)
	case c.Ip < 1 || c.Ip > 100:
		return c, fmt.Errorf("vat: VATConfig.Ip = %d: want 1 to 100 power iterations", c.Ip)
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 0):
		return c, fmt.Errorf("vat: VATConfig.Alpha = %v: want a finite number > 0", c.Alpha)
	case c.Probe != ProbeAuto && c.Probe != FiniteDifference && c.Probe != Exact:
		return c, fmt.Errorf("vat: VATConfig.Probe = %d: want ProbeAuto, FiniteDifference or Exact", c.Probe)
	}
	return c, nil
}

// needsScale reports whether resolving c needs the data's scale.
func (c VATConfig) needsScale() bool { return c.Eps == 0 || c.Xi == 0 }

// resolve fills in the data-relative fields of a validated config: with
// data, ε and ξ relative to the data's scale and the exact probe where
// exactOK; without data (scale 1, !data), the Keras original's ξ = 10,
// ε = 1 and the finite-difference probe.
func (c VATConfig) resolve(scale float64, data, exactOK bool) VATConfig {
	if !data {
		if c.Xi == 0 {
			c.Xi = 10
		}
		if c.Eps == 0 {
			c.Eps = 1
		}
		if c.Probe == ProbeAuto {
			c.Probe = FiniteDifference
		}
		return c
	}
	if c.Probe == ProbeAuto {
		c.Probe = FiniteDifference
		if exactOK {
			c.Probe = Exact
		}
	}
	if c.Eps == 0 {
		f := c.EpsScale
		if f == 0 {
			f = defaultEpsScale
		}
		c.Eps, c.EpsScale = f*scale, 0
	}
	if c.Xi == 0 {
		c.Xi = defaultXiScale * scale
	}
	return c
}

// forModel resolves a validated config for training m on data of the
// given scale (DataScale): ε and ξ relative to it where zero, and
// ProbeAuto as the exact probe for a network without Dropout or
// BatchNorm, the finite-difference one otherwise.
func (c VATConfig) forModel(m *Model, scale float64) VATConfig {
	return c.resolve(scale, true, m.exactProbeOK() && !m.hasBatchNorm())
}

// DataScale returns the data's scale that VATConfig's defaults are
// relative to: the root-mean-square distance of a sample from the mean
// sample, √(Σ_j Var(x_j)), over the samples of the datasets given (labeled
// and unlabeled alike; up to 20,000 of them, evenly spaced), in float64.
// It is 7.26 for MNIST's training images (pixels in [0, 1]). A dataset
// whose samples are all equal has scale 0; the trainers then use 1.
func DataScale(ds ...*Dataset) float64 {
	var sum, sq []float64
	n := 0
	for _, d := range ds {
		if d.Len() == 0 {
			continue
		}
		px := size(d.shape())
		if sum == nil {
			sum, sq = make([]float64, px), make([]float64, px)
		}
		if px != len(sum) {
			continue
		}
		step := max(1, d.Len()/20000)
		for i := 0; i < d.Len(); i += step {
			for j, v := range d.Images[i*px : (i+1)*px] {
				sum[j] += float64(v)
				sq[j] += float64(v) * float64(v)
			}
			n++
		}
	}
	if n == 0 {
		return 0
	}
	var v float64
	for j := range sum {
		m := sum[j] / float64(n)
		v += math.Max(0, sq[j]/float64(n)-m*m)
	}
	return math.Sqrt(v)
}

// orOne returns x, or 1 for 0.
func scaleOrOne(x float64) float64 {
	if x > 0 {
		return x
	}
	return 1
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
// cleanGrad. With align, LDS is align's divergence, whose target is p(y|x)
// reweighted per class (SemiSupervisedConfig.Align); the power iteration
// still probes around p(y|x) itself. It returns LDS, r_adv and the
// adversarial logits.
func vatTerm(s *scope, cfg VATConfig, in vatInputs, ps passes, x, logits *G.Node, cleanGrad bool, align *ops.AlignedKL) (lds, rAdv, advLogits *G.Node) {
	pConst := stopGradient(s, logits)
	rAdv = perturbation(s, cfg, in, ps, x, pConst)
	advLogits = ps.adversarial(add(s, x, rAdv))
	p := pConst
	if cleanGrad {
		p = logits
	}
	if align != nil {
		return s.apply(align, p, advLogits), rAdv, advLogits
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
// exactProbeOK reports whether the exact probe can linearize the network:
// no layer lacks a tangent map.
func (m *Model) exactProbeOK() bool {
	for _, l := range m.layers {
		if r, ok := l.(randomLayer); ok && !r.linear() {
			return false
		}
	}
	return true
}

func (m *Model) hasBatchNorm() bool {
	for _, st := range m.stats {
		if st != nil {
			return true
		}
	}
	return false
}
