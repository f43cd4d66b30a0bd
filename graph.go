package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// trainGraph is one compiled training step for a fixed batch size: the
// model's forward pass, the loss (cross-entropy, plus α·LDS with VAT), its
// gradients with respect to every weight, and the values read out of it.
type trainGraph struct {
	batch int
	g     *G.ExprGraph
	vm    G.VM

	x, y  *tensor.Dense // bound to the inputs; filled in place each step
	noise *tensor.Dense // nil without VAT
	rAdv  *tensor.Dense // r_adv of the last step, read out; nil without VAT

	loss, ce, lds G.Value         // read out each step (lds nil without VAT)
	grads         []*tensor.Dense // ∂loss/∂param, same order as Model.params
}

// newTrainGraph builds and compiles the training graph for batches of n.
func newTrainGraph(m *Model, n int, vat *VATConfig, seed uint64) (*trainGraph, error) {
	s, weights := m.newScope(m.cfg.Dropout, splitmix64(seed^uint64(n)))
	tg := &trainGraph{batch: n, g: s.g}
	tg.x = tensor.New(tensor.WithShape(n, 1, ImageRows, ImageCols), tensor.Of(tensor.Float32))
	tg.y = tensor.New(tensor.WithShape(n, Classes), tensor.Of(tensor.Float32))
	x := G.NewTensor(s.g, G.Float32, 4, G.WithShape(tg.x.Shape()...), G.WithValue(tg.x), G.WithName("x"))
	y := G.NewMatrix(s.g, G.Float32, G.WithShape(n, Classes), G.WithValue(tg.y), G.WithName("labels"))
	inputs := append(G.Nodes{x, y}, weights...)

	forward := func(in *G.Node) *G.Node { return m.forward(s, in) }
	logits := forward(x)
	ce := s.apply(newCrossEntropyOp(), logits, y)
	loss := ce
	var lds, rAdv *G.Node
	if vat != nil {
		vin := newVATInputs(s.g, vat.Ip, tg.x.Shape()...)
		tg.noise = tensor.New(tensor.WithShape(tg.x.Shape()...), tensor.Of(tensor.Float32))
		if err := G.Let(vin.noise, tg.noise); err != nil {
			return nil, err
		}
		inputs = append(inputs, vin.noise)
		for _, z := range vin.probes {
			if err := G.Let(z, tensor.New(tensor.WithShape(tg.x.Shape()...), tensor.Of(tensor.Float32))); err != nil {
				return nil, err
			}
			inputs = append(inputs, z)
		}
		lds, rAdv = virtualAdversarialLoss(s, *vat, vin, forward, x, logits)
		loss = weightedSum(s, []float64{1, vat.Alpha}, ce, lds) // CE + α·LDS
	}
	if s.err != nil {
		return nil, s.err
	}
	grads, err := G.Grad(loss, weights...)
	if err != nil {
		return nil, fmt.Errorf("vat: differentiating the loss: %w", err)
	}

	// Read nodes copy the results out of the machine's registers, into
	// tensors allocated once.
	outputs := G.Nodes{G.Read(loss, &tg.loss), G.Read(ce, &tg.ce)}
	if lds != nil {
		tg.rAdv = tensor.New(tensor.WithShape(tg.x.Shape()...), tensor.Of(tensor.Float32))
		v := G.Value(tg.rAdv)
		outputs = append(outputs, G.Read(lds, &tg.lds), G.Read(rAdv, &v))
	}
	tg.grads = make([]*tensor.Dense, len(grads))
	for i, gn := range grads {
		tg.grads[i] = tensor.New(tensor.WithShape(gn.Shape()...), tensor.Of(tensor.Float32))
		v := G.Value(tg.grads[i])
		outputs = append(outputs, G.Read(gn, &v))
	}
	// Compile only what the outputs need: the first Grad call of the power
	// iteration also built weight gradients of the perturbed branch that no
	// output uses.
	prog, locMap, err := G.CompileFunction(s.g, inputs, outputs)
	if err != nil {
		return nil, fmt.Errorf("vat: compiling the training graph: %w", err)
	}
	tg.vm = G.NewTapeMachine(s.g, G.WithPrecompiled(prog, locMap))
	return tg, nil
}

// run executes one step on the values already in x, y (and noise).
func (tg *trainGraph) run() (loss, ce, lds float64, err error) {
	tg.vm.Reset()
	tg.loss, tg.ce, tg.lds = nil, nil, nil
	if err = tg.vm.RunAll(); err != nil {
		return 0, 0, 0, fmt.Errorf("vat: training step: %w", err)
	}
	l, err1 := scalar32("loss", 0, tg.loss)
	c, err2 := scalar32("ce", 0, tg.ce)
	if err1 != nil || err2 != nil {
		return 0, 0, 0, fmt.Errorf("vat: training step produced no loss")
	}
	if tg.lds != nil {
		v, _ := scalar32("lds", 0, tg.lds)
		lds = float64(v)
	}
	return float64(l), float64(c), lds, nil
}

// evalGraph is the inference graph for a fixed batch size: logits only, no
// dropout.
type evalGraph struct {
	vm     G.VM
	x      *tensor.Dense
	logits G.Value
}

func newEvalGraph(m *Model, n int) (*evalGraph, error) {
	s, weights := m.newScope(false, 0)
	eg := &evalGraph{x: tensor.New(tensor.WithShape(n, 1, ImageRows, ImageCols), tensor.Of(tensor.Float32))}
	x := G.NewTensor(s.g, G.Float32, 4, G.WithShape(eg.x.Shape()...), G.WithValue(eg.x), G.WithName("x"))
	logits := m.forward(s, x)
	if s.err != nil {
		return nil, s.err
	}
	eg.logits = tensor.New(tensor.WithShape(n, Classes), tensor.Of(tensor.Float32))
	out := G.Read(logits, &eg.logits)
	prog, locMap, err := G.CompileFunction(s.g, append(G.Nodes{x}, weights...), G.Nodes{out})
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
	return eg.logits.Data().([]float32), nil
}
