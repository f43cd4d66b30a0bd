package vat

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// SGD is stochastic gradient descent with optional momentum (classical or
// Nesterov's) and L2 weight decay, as PyTorch's torch.optim.SGD. Per
// parameter element, with learning rate lr from the trainer's Schedule:
//
//	g ← g + λ·θ                   (weight decay λ)
//	v ← μ·v + g                   (momentum μ; v starts at 0)
//	θ ← θ − lr·v                  (classical)
//	θ ← θ − lr·(g + μ·v)          (Nesterov)
//
// Without momentum it is θ ← θ − lr·g. The zero value means LR 0.01, no
// momentum and no weight decay. Weight decay applies to every parameter,
// biases and batch normalization's γ and β included, as PyTorch's does by
// default. With a GPU backend SGD runs on the host: each step copies the
// weights and gradients back and the updated weights out again.
type SGD struct {
	LR          float64 // learning rate, > 0; 0 means 0.01
	Momentum    float64 // μ in [0, 1); 0 means none
	Nesterov    bool    // Nesterov's momentum (needs Momentum > 0)
	WeightDecay float64 // λ >= 0, added as λ·θ to the gradient; 0 means none
}

// String returns "SGD(lr=…, momentum=…, …)".
func (o SGD) String() string {
	return fmt.Sprintf("SGD(lr=%g, momentum=%g, nesterov=%t, weight_decay=%g)", o.LR, o.Momentum, o.Nesterov, o.WeightDecay)
}

func (o SGD) withDefaults() (Optimizer, error) {
	if o.LR == 0 {
		o.LR = 0.01
	}
	switch {
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return nil, fmt.Errorf("vat: SGD.LR = %v: want a finite number > 0", o.LR)
	case !(o.Momentum >= 0 && o.Momentum < 1):
		return nil, fmt.Errorf("vat: SGD.Momentum = %v: want a number in [0, 1)", o.Momentum)
	case o.Nesterov && o.Momentum == 0:
		return nil, fmt.Errorf("vat: SGD.Nesterov is set with SGD.Momentum = 0: want a momentum in (0, 1)")
	case !(o.WeightDecay >= 0) || math.IsInf(o.WeightDecay, 0):
		return nil, fmt.Errorf("vat: SGD.WeightDecay = %v: want a finite number >= 0", o.WeightDecay)
	}
	return o, nil
}

func (o SGD) baseRate() float64 { return o.LR }

func (o SGD) record() optimizerRecord {
	return optimizerRecord{Name: "sgd", LR: o.LR, Momentum: o.Momentum, Nesterov: o.Nesterov, WeightDecay: o.WeightDecay}
}

func (o SGD) newState(params []*Param) optimizerState {
	s := &sgdState{o: o}
	if o.Momentum > 0 {
		s.v = newBuffers(params, 1)[0]
	}
	return s
}

type sgdState struct {
	o SGD
	v [][]float32 // nil without momentum
}

func (s *sgdState) slots() []string {
	if s.v == nil {
		return nil
	}
	return []string{"velocity"}
}

func (s *sgdState) buffers() [][][]float32 {
	if s.v == nil {
		return nil
	}
	return [][][]float32{s.v}
}

func (s *sgdState) steps() int   { return 0 }
func (s *sgdState) setSteps(int) {}

func (s *sgdState) step(params []*Param, grads []*tensor.Dense, lrate float64, _ bool) error {
	ws, gs := hostBuffers(params, grads)
	if err := backend.SyncToHost(append(ws, gs...)...); err != nil {
		return err
	}
	lr, mu, wd := float32(lrate), float32(s.o.Momentum), float32(s.o.WeightDecay)
	kernels.ParallelSlices(sizes(grads), func(i, lo, hi int) {
		w, g := ws[i][lo:hi], gs[i][lo:hi]
		var v []float32
		if s.v != nil {
			v = s.v[i][lo:hi]
		}
		for j, gj := range g {
			gj += wd * w[j]
			if v == nil {
				w[j] -= lr * gj
				continue
			}
			v[j] = mu*v[j] + gj
			if s.o.Nesterov {
				w[j] -= lr * (gj + mu*v[j])
			} else {
				w[j] -= lr * v[j]
			}
		}
	})
	backend.MarkHostWritten(ws...)
	return nil
}
