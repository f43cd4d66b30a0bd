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

// trainGraph is one compiled training step for a fixed batch size: the
// model's forward pass, the loss (cross-entropy, plus α·LDS with VAT), and
// its gradients with respect to every weight.
type trainGraph struct {
	vm G.VM

	x, y  *tensor.Dense // bound to the inputs; filled in place each step
	noise *tensor.Dense // nil without VAT

	loss, ce, lds, rAdv *G.Node   // outputs (lds, rAdv nil without VAT)
	grads               []*G.Node // ∂loss/∂param, in Model.params order

	streams []ops.Stream // the dropout ops, whose draw counts checkpoints save
}

// newTrainGraph builds and compiles the training graph for batches of n.
func newTrainGraph(m *Model, n int, vat *VATConfig, seed uint64) (*trainGraph, error) {
	return buildTrainGraph(m, n, vat, seed, true, true) // dropout drops, batch norm learns its averages
}

// buildTrainGraph is newTrainGraph with dropout on or off, and with or
// without updates of batch normalization's running averages.
func buildTrainGraph(m *Model, n int, vat *VATConfig, seed uint64, dropout, updateStats bool) (*trainGraph, error) {
	s := newScope(dropout, rng.SplitMix64(seed^uint64(n)))
	tg := &trainGraph{}
	tg.x = tensor.New(tensor.WithShape(append([]int{n}, m.inShape...)...), tensor.Of(tensor.Float32))
	tg.y = tensor.New(tensor.WithShape(n, m.classes), tensor.Of(tensor.Float32))
	x := G.NewTensor(s.g, G.Float32, tg.x.Dims(), G.WithShape(tg.x.Shape()...), G.WithValue(tg.x), G.WithName("x"))
	y := G.NewMatrix(s.g, G.Float32, G.WithShape(n, m.classes), G.WithValue(tg.y), G.WithName("labels"))
	clean := m.weightNodes(s, "")
	inputs := append(G.Nodes{x, y}, clean.nodes...)
	wrt := clean.nodes

	s.batchStats, s.updateStats = true, updateStats // the clean pass alone updates running averages
	var trace []layerTrace
	s.trace = &trace // the exact probe linearizes the network at the clean pass
	logits := m.forward(s, clean, x)
	s.trace, s.updateStats = nil, false
	tg.ce = s.apply(ops.NewCrossEntropy(), logits, y)
	tg.loss = tg.ce
	if vat != nil {
		vin, noise, vnodes := bindVATInputs(s, vat.Ip, tg.x.Shape())
		tg.noise = noise
		inputs = append(inputs, vnodes...)
		// The power iteration needs no weight gradient and reuses the clean
		// set; the adversarial pass, whose gradient is part of the loss's,
		// gets its own.
		adv := m.weightNodes(s, "@adv")
		inputs = append(inputs, adv.nodes...)
		wrt = append(wrt, adv.nodes...)
		tg.loss, tg.lds, tg.rAdv = vatObjective(s, *vat, vin, m.vatPasses(s, clean, trace, adv), x, y, logits, tg.ce)
		inputs = append(inputs, s.consts...)
	}
	if s.err != nil {
		return nil, s.err
	}
	grads, err := G.Grad(tg.loss, wrt...)
	if err != nil {
		return nil, fmt.Errorf("vat: differentiating the loss: %w", err)
	}
	tg.grads = grads[:len(clean.nodes)]
	if vat != nil { // ∂loss/∂w = the clean pass's part + the adversarial pass's part
		for i := range tg.grads {
			tg.grads[i] = add(s, grads[i], grads[len(clean.nodes)+i])
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	outputs := append(G.Nodes{tg.loss, tg.ce}, tg.grads...)
	if vat != nil {
		outputs = append(outputs, tg.lds, tg.rAdv)
	}
	// Compile only what the outputs need: the first Grad call of the power
	// iteration also built weight gradients of the perturbed branch that no
	// output uses.
	prog, locMap, err := G.CompileFunction(s.g, inputs, outputs)
	if err != nil {
		return nil, fmt.Errorf("vat: compiling the training graph: %w", err)
	}
	tg.vm = G.NewTapeMachine(s.g, G.WithPrecompiled(prog, locMap))
	tg.streams = s.streams
	return tg, nil
}

// run executes one step on the values already in x, y (and noise).
func (tg *trainGraph) run() (loss, ce, lds float64, err error) {
	tg.vm.Reset()
	if err = tg.vm.RunAll(); err != nil {
		return 0, 0, 0, fmt.Errorf("vat: training step: %w", err)
	}
	l, err1 := ops.Scalar32("loss", 0, tg.loss.Value())
	c, err2 := ops.Scalar32("ce", 0, tg.ce.Value())
	if err1 != nil || err2 != nil {
		return 0, 0, 0, fmt.Errorf("vat: training step produced no loss")
	}
	if tg.lds != nil {
		v, _ := ops.Scalar32("lds", 0, tg.lds.Value())
		lds = float64(v)
	}
	return float64(l), float64(c), lds, nil
}

// grad returns ∂loss/∂param i of the last run, on the host.
func (tg *trainGraph) grad(i int) (*tensor.Dense, error) {
	g := tg.grads[i].Value().(*tensor.Dense)
	return g, backend.SyncToHost(g.Data().([]float32))
}

// adversarial returns r_adv of the last run on the host (nil without VAT).
func (tg *trainGraph) adversarial() (*tensor.Dense, error) {
	if tg.rAdv == nil {
		return nil, nil
	}
	r := tg.rAdv.Value().(*tensor.Dense)
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
	s := newScope(false, 0)
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
