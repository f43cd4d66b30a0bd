package vat

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// Adam is Kingma and Ba's optimizer (arXiv:1412.6980). Per parameter
// element, at step t:
//
//	m ← β₁·m + (1−β₁)·g,   v ← β₂·v + (1−β₂)·g²
//	θ ← θ − lr_t · m̂ / (√v̂ + ε),   m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
//
// with lr_t from the trainer's Schedule. While the schedule is in its final
// decay phase (LinearDecay after its Start), β₁ is DecayBeta1, as in the
// official VAT code (takerum/vat_tf), which drops β₁ to 0.5 while the rate
// decays to zero. The zero value means LR 0.001, Beta1 0.9, Beta2 0.999,
// Epsilon 1e-8 and DecayBeta1 0.5. (Gorgonia's AdamSolver has no schedule,
// and keeps state this package could not checkpoint.) With a GPU backend it
// updates the weights on the device, with the CPU's results. It is the
// semi-supervised trainer's default optimizer, at LR 0.002.
type Adam struct {
	LR      float64 // base learning rate, > 0; 0 means 0.001
	Beta1   float64 // first moment's decay, in [0, 1); 0 means 0.9
	Beta2   float64 // second moment's decay, in [0, 1); 0 means 0.999
	Epsilon float64 // > 0; 0 means 1e-8
	// DecayBeta1 replaces Beta1 while the schedule decays, in [0, 1); 0
	// means 0.5, as in the official code. Set it to Beta1 to keep β₁.
	DecayBeta1 float64
}

// String returns "Adam(lr=…, beta1=…, …)".
func (o Adam) String() string {
	return fmt.Sprintf("Adam(lr=%g, beta1=%g, beta2=%g, eps=%g, decay_beta1=%g)", o.LR, o.Beta1, o.Beta2, o.Epsilon, o.DecayBeta1)
}

func (o Adam) withDefaults() (Optimizer, error) {
	def := func(x *float64, d float64) {
		if *x == 0 {
			*x = d
		}
	}
	def(&o.LR, 0.001)
	def(&o.Beta1, 0.9)
	def(&o.Beta2, 0.999)
	def(&o.Epsilon, 1e-8)
	def(&o.DecayBeta1, 0.5)
	switch {
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return nil, fmt.Errorf("vat: Adam.LR = %v: want a finite number > 0", o.LR)
	case !(o.Beta1 >= 0 && o.Beta1 < 1):
		return nil, fmt.Errorf("vat: Adam.Beta1 = %v: want a number in [0, 1)", o.Beta1)
	case !(o.Beta2 >= 0 && o.Beta2 < 1):
		return nil, fmt.Errorf("vat: Adam.Beta2 = %v: want a number in [0, 1)", o.Beta2)
	case !(o.Epsilon > 0) || math.IsInf(o.Epsilon, 0):
		return nil, fmt.Errorf("vat: Adam.Epsilon = %v: want a finite number > 0", o.Epsilon)
	case !(o.DecayBeta1 >= 0 && o.DecayBeta1 < 1):
		return nil, fmt.Errorf("vat: Adam.DecayBeta1 = %v: want a number in [0, 1)", o.DecayBeta1)
	}
	return o, nil
}

func (o Adam) baseRate() float64 { return o.LR }

func (o Adam) record() optimizerRecord {
	return optimizerRecord{Name: "adam", LR: o.LR, Beta1: o.Beta1, Beta2: o.Beta2, Epsilon: o.Epsilon, DecayBeta1: o.DecayBeta1}
}

func (o Adam) newState(params []*Param) optimizerState {
	b := newBuffers(params, 2)
	return &adamState{o: o, m: b[0], v: b[1]}
}

type adamState struct {
	o    Adam
	t    int
	m, v [][]float32
}

func (s *adamState) slots() []string        { return []string{"m", "v"} }
func (s *adamState) buffers() [][][]float32 { return [][][]float32{s.m, s.v} }
func (s *adamState) steps() int             { return s.t }
func (s *adamState) setSteps(t int)         { s.t = t }

// step applies one update with learning rate lr, and β₁ = DecayBeta1 when
// decaying.
func (s *adamState) step(params []*Param, grads []*tensor.Dense, lr float64, decaying bool) error {
	b1 := s.o.Beta1
	if decaying {
		b1 = s.o.DecayBeta1
	}
	s.t++
	// Bias corrections with the β₁ in force: Kingma and Ba's 1−β₁ᵗ.
	c1 := 1 - math.Pow(b1, float64(s.t))
	c2 := 1 - math.Pow(s.o.Beta2, float64(s.t))
	step := float32(lr * math.Sqrt(c2) / c1)
	beta1, beta2, eps := float32(b1), float32(s.o.Beta2), float32(s.o.Epsilon*math.Sqrt(c2))
	if a := backend.Active(); a != nil {
		ws, gs := hostBuffers(params, grads)
		return a.Adam(ws, gs, s.m, s.v, beta1, beta2, step, eps)
	}
	// Pieces of every tensor on all cores (elements are independent).
	kernels.ParallelSlices(sizes(grads), func(i, lo, hi int) {
		w := params[i].Value.Data().([]float32)[lo:hi]
		g := grads[i].Data().([]float32)[lo:hi]
		kernels.AdamUpdate(w, g, s.m[i][lo:hi], s.v[i][lo:hi], beta1, beta2, step, eps)
	})
	for _, p := range params {
		backend.MarkHostWritten(p.Value.Data().([]float32))
	}
	return nil
}
