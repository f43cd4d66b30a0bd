package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/ops"
	"github.com/org/vat/internal/rng"
)

// The graphs hold only the package's own ops and no Gorgonia statements
// (Read, Let): every op returns a buffer it owns, so after a run the outputs
// are read straight from their nodes. This keeps the graphs independent of
// Gorgonia's CUDA machinery in the `cuda` build, where its stock ops would be
// moved to the GPU and a Read node makes the compiled program free a GPU
// register that does not exist (gorgonia v0.9.18, compile.go insertFree).

// stepSpec describes a training step's graph: a labeled batch (with its
// cross-entropy), optionally an unlabeled batch, VAT's term on either or
// both, and the unlabeled predictions' entropy.
type stepSpec struct {
	labeled, unlabeled int        // batch sizes; unlabeled 0 means no unlabeled batch
	vat                *VATConfig // nil: no VAT term
	vatOnLabeled       bool       // VAT on the labeled batch (supervised VAT: the only batch)
	entMin             float64    // β of the entropy term, on the unlabeled batch
	balance            float64    // γ of the class-balance term, on the unlabeled batch
	prior              []float64  // the class-balance term's π
	align              bool       // the unlabeled VAT term's target is aligned (SemiSupervisedConfig.Align)
	dropout            bool       // dropout and noise layers draw (training), or are the identity
	updateStats        bool       // the labeled clean pass updates batch norm's running averages
	seed               uint64     // the scope's seed, from which every random layer's stream comes
}

// stepGraph is one compiled training step for fixed batch sizes: the
// model's forward passes, the loss
//
//	CE(labeled) + α·LDS + β·H(unlabeled) + γ·KL(p̄(unlabeled) ‖ π)
//
// with LDS over the batches VAT is on (the mean over their samples), and
// its gradients with respect to every weight. Supervised training is the
// labeled batch alone, with VAT on it; semi-supervised training adds the
// unlabeled batch. One builder serves both, so VAT's wiring (vatOn) is
// written once.
type stepGraph struct {
	vm G.VM

	xl, yl, xu *tensor.Dense   // bound to the inputs, filled in place each step (xu nil without an unlabeled batch)
	noise      []*tensor.Dense // VAT's start directions (unlabeled batch first), drawn anew each step

	sum     interface{ SetWeight(int, float64) } // the loss's weighted sum; nil when one joint op computes it
	alphaAt int                                  // α's position in sum
	betaAt  int                                  // β's position in sum

	loss, ce       *G.Node        // outputs
	lds, ent, rAdv *G.Node        // nil when off (rAdv: the labeled batch's, supervised VAT only)
	bal            *G.Node        // the class-balance KL; nil when off
	align          *ops.AlignedKL // the unlabeled batch's LDS when its target is aligned; nil when off
	grads          []*G.Node      // ∂loss/∂param, in Model.params order

	streams []ops.Stream // the dropout and noise ops, whose draw counts checkpoints save
}

// newTrainGraph builds the supervised training graph for batches of n.
func newTrainGraph(m *Model, n int, vat *VATConfig, seed uint64) (*stepGraph, error) {
	return buildTrainGraph(m, n, vat, seed, true, true) // dropout drops, batch norm learns its averages
}

// buildTrainGraph is newTrainGraph with dropout on or off, and with or
// without updates of batch normalization's running averages.
func buildTrainGraph(m *Model, n int, vat *VATConfig, seed uint64, dropout, updateStats bool) (*stepGraph, error) {
	return newStepGraph(m, stepSpec{labeled: n, vat: vat, vatOnLabeled: vat != nil, dropout: dropout, updateStats: updateStats,
		seed: rng.SplitMix64(seed ^ uint64(n))})
}

// newStepGraph builds and compiles the step sp describes.
func newStepGraph(m *Model, sp stepSpec) (*stepGraph, error) {
	s := newScope(sp.dropout, sp.seed)
	g := &stepGraph{}
	tensorOf := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	lshape := append([]int{sp.labeled}, m.inShape...)
	g.xl, g.yl = tensorOf(lshape...), tensorOf(sp.labeled, m.classes)
	xl := G.NewTensor(s.g, G.Float32, len(lshape), G.WithShape(lshape...), G.WithValue(g.xl), G.WithName("x"))
	yl := G.NewMatrix(s.g, G.Float32, G.WithShape(sp.labeled, m.classes), G.WithValue(g.yl), G.WithName("labels"))
	L := m.weightNodes(s, "")
	inputs := append(G.Nodes{xl, yl}, L.nodes...)
	sets := [][]*G.Node{L.nodes} // the weight sets whose gradients sum to ∂loss/∂w

	s.batchStats, s.updateStats = true, sp.updateStats // the labeled clean pass alone updates running averages
	var traceL, traceU []layerTrace                    // the clean passes, which the exact probe linearizes
	s.trace = &traceL
	logitsL := m.forward(s, L, xl)
	s.trace, s.updateStats = nil, false
	g.ce = s.apply(ops.NewCrossEntropy(), logitsL, yl)
	terms, coefs := []*G.Node{g.ce}, []float64{1}

	// vatOn adds the VAT term on batch x, whose clean pass with weights w
	// gave logits and was recorded in trace, and returns LDS and r_adv.
	// The power iteration needs no weight gradient and reuses w; the
	// adversarial pass, whose gradient is part of the loss's, gets a
	// weight set of its own. With cleanGrad the gradient flows through
	// the clean prediction too.
	vatOn := func(x, logits *G.Node, w weights, trace []layerTrace, tag string, cleanGrad bool, align *ops.AlignedKL) (lds, rAdv, advLogits *G.Node) {
		vin, nz, vnodes := bindVATInputs(s, sp.vat.Ip, x.Shape().Clone())
		g.noise = append(g.noise, nz)
		inputs = append(inputs, vnodes...)
		adv := m.weightNodes(s, "@adv"+tag)
		inputs = append(inputs, adv.nodes...)
		sets = append(sets, adv.nodes)
		return vatTerm(s, *sp.vat, vin, m.vatPasses(s, w, trace, adv), x, logits, cleanGrad, align)
	}
	vat := sp.vat
	if sp.unlabeled == 0 {
		if vat != nil { // supervised VAT: CE + α·LDS on the one batch
			var advLogits *G.Node
			g.lds, g.rAdv, advLogits = vatOn(xl, logitsL, L, traceL, "", false, nil)
			if vat.CleanGrad {
				// CE and KL share the clean logits: one op (see
				// ops.NewJointLoss); lds then only reports the value.
				g.loss = s.apply(ops.NewJointLoss(vat.Alpha), logitsL, yl, advLogits)
			} else {
				g.alphaAt = len(terms)
				terms, coefs = append(terms, g.lds), append(coefs, vat.Alpha)
			}
		}
	} else {
		ushape := append([]int{sp.unlabeled}, m.inShape...)
		g.xu = tensorOf(ushape...)
		xu := G.NewTensor(s.g, G.Float32, len(ushape), G.WithShape(ushape...), G.WithValue(g.xu), G.WithName("x/unlabeled"))
		U := m.weightNodes(s, "@u")
		inputs = append(inputs, xu)
		inputs = append(inputs, U.nodes...)
		s.trace = &traceU
		logitsU := m.forward(s, U, xu)
		s.trace = nil
		if sp.entMin > 0 || sp.balance > 0 || (vat != nil && vat.CleanGrad) {
			sets = append(sets, U.nodes) // the entropy's and the balance's gradients flow through the unlabeled clean pass
		}
		if vat != nil {
			if sp.align {
				g.align = ops.NewAlignedKL(m.classes)
			}
			g.lds, _, _ = vatOn(xu, logitsU, U, traceU, "u", vat.CleanGrad, g.align)
			if sp.vatOnLabeled {
				ldsL, _, _ := vatOn(xl, logitsL, L, traceL, "l", vat.CleanGrad, nil)
				n := float64(sp.labeled + sp.unlabeled)
				g.lds = weightedSum(s, []float64{float64(sp.unlabeled) / n, float64(sp.labeled) / n}, g.lds, ldsL)
			}
			g.alphaAt = len(terms)
			terms, coefs = append(terms, g.lds), append(coefs, vat.Alpha)
		}
		if sp.entMin > 0 {
			g.ent = s.apply(ops.NewEntropy(), logitsU)
			g.betaAt = len(terms)
			terms, coefs = append(terms, g.ent), append(coefs, sp.entMin)
		}
		if sp.balance > 0 {
			g.bal = s.apply(ops.NewClassBalance(sp.prior), logitsU)
			terms, coefs = append(terms, g.bal), append(coefs, sp.balance)
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	inputs = append(inputs, s.consts...)
	if g.loss == nil {
		if len(terms) == 1 {
			g.loss = g.ce
		} else {
			sum := ops.NewWeightedSum(coefs...)
			g.sum = sum
			g.loss = s.apply(sum, terms...)
		}
	}
	var wrt []*G.Node
	for _, set := range sets {
		wrt = append(wrt, set...)
	}
	if s.err != nil {
		return nil, s.err
	}
	grads, err := G.Grad(g.loss, wrt...)
	if err != nil {
		return nil, fmt.Errorf("vat: differentiating the loss: %w", err)
	}
	np := len(m.params)
	g.grads = grads[:np]
	for k := 1; k < len(sets); k++ { // ∂loss/∂w sums every pass's part
		for i := range g.grads {
			g.grads[i] = add(s, g.grads[i], grads[k*np+i])
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	outputs := append(G.Nodes{g.loss, g.ce}, g.grads...)
	for _, n := range []*G.Node{g.lds, g.rAdv, g.ent, g.bal} {
		if n != nil {
			outputs = append(outputs, n)
		}
	}
	// Compile only what the outputs need: the first Grad call of the power
	// iteration also built weight gradients of the perturbed branch that no
	// output uses.
	prog, locMap, err := G.CompileFunction(s.g, inputs, outputs)
	if err != nil {
		return nil, fmt.Errorf("vat: compiling the training graph: %w", err)
	}
	g.vm = G.NewTapeMachine(s.g, G.WithPrecompiled(prog, locMap))
	g.streams = s.streams
	return g, nil
}

// setAlpha sets VAT's weight α for the next run (a warm-up changes it).
func (g *stepGraph) setAlpha(alpha float64) {
	if g.sum != nil && g.lds != nil {
		g.sum.SetWeight(g.alphaAt, alpha)
	}
}

// setBeta sets the entropy's weight β for the next run.
func (g *stepGraph) setBeta(beta float64) {
	if g.sum != nil && g.ent != nil {
		g.sum.SetWeight(g.betaAt, beta)
	}
}

// run executes one step on the values already in the inputs and returns
// the loss and its parts (0 for a part that is off).
func (g *stepGraph) run() (loss, ce, lds, ent float64, err error) {
	g.vm.Reset()
	if err = g.vm.RunAll(); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("vat: training step: %w", err)
	}
	if _, err := ops.Scalar32("loss", 0, g.loss.Value()); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("vat: training step produced no loss")
	}
	return scalarOf(g.loss), scalarOf(g.ce), scalarOf(g.lds), scalarOf(g.ent), nil
}

// balance returns the class-balance KL of the last run (0 when off).
func (g *stepGraph) balance() float64 { return scalarOf(g.bal) }

// scalarOf returns the scalar value of a loss node after a run, 0 for a
// nil node (a part that is off).
func scalarOf(n *G.Node) float64 {
	if n == nil {
		return 0
	}
	v, _ := ops.Scalar32("loss", 0, n.Value())
	return float64(v)
}

// grad returns ∂loss/∂param i of the last run, on the host.
func (g *stepGraph) grad(i int) (*tensor.Dense, error) {
	t := g.grads[i].Value().(*tensor.Dense)
	return t, backend.SyncToHost(t.Data().([]float32))
}

// adversarial returns the labeled batch's r_adv of the last run on the
// host (nil without supervised VAT).
func (g *stepGraph) adversarial() (*tensor.Dense, error) {
	if g.rAdv == nil {
		return nil, nil
	}
	r := g.rAdv.Value().(*tensor.Dense)
	return r, backend.SyncToHost(r.Data().([]float32))
}

// evalGraph is the inference graph for a fixed batch size: logits only, no
// dropout.
type evalGraph struct {
	vm     G.VM
	x      *tensor.Dense
	logits *G.Node
}

func newEvalGraph(m *Model, n int) (*evalGraph, error) {
	return buildEvalGraph(m, n, backend.Active() == nil)
}

// buildEvalGraph is newEvalGraph, with layers fusing what follows them
// (inference-only ops, on the CPU) when fuse is set.
func buildEvalGraph(m *Model, n int, fuse bool) (*evalGraph, error) {
	s := newScope(false, 0)
	s.inference = fuse
	w := m.weightNodes(s, "")
	eg := &evalGraph{x: tensor.New(tensor.WithShape(append([]int{n}, m.inShape...)...), tensor.Of(tensor.Float32))}
	x := G.NewTensor(s.g, G.Float32, eg.x.Dims(), G.WithShape(eg.x.Shape()...), G.WithValue(eg.x), G.WithName("x"))
	eg.logits = m.forward(s, w, x)
	if s.err != nil {
		return nil, s.err
	}
	prog, locMap, err := G.CompileFunction(s.g, append(G.Nodes{x}, w.nodes...), G.Nodes{eg.logits})
	if err != nil {
		return nil, fmt.Errorf("vat: compiling the inference graph: %w", err)
	}
	eg.vm = G.NewTapeMachine(s.g, G.WithPrecompiled(prog, locMap))
	return eg, nil
}

// run returns the logits of the images already in x.
func (eg *evalGraph) run() ([]float32, error) {
	eg.vm.Reset()
	if err := eg.vm.RunAll(); err != nil {
		return nil, fmt.Errorf("vat: inference: %w", err)
	}
	logits := eg.logits.Value().Data().([]float32)
	return logits, backend.SyncToHost(logits)
}
