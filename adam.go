package vat

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// Adam is Kingma and Ba's optimizer (arXiv:1412.6980), with the learning
// rate schedule of the official VAT code (takerum/vat_tf): constant, then
// decaying linearly to zero over the last part of training, where β₁ also
// drops to DecayBeta1. Per parameter element, at step t:
//
//	m ← β₁·m + (1−β₁)·g,   v ← β₂·v + (1−β₂)·g²
//	θ ← θ − lr_t · m̂ / (√v̂ + ε),   m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
//
// The zero value means LR 0.001, Beta1 0.9, Beta2 0.999, Epsilon 1e-8,
// DecayStart 2/3 and DecayBeta1 0.5. (Gorgonia's AdamSolver has no
// schedule, and keeps state this package could not checkpoint.) With a GPU
// backend it updates the weights on the device, with the CPU's results.
type Adam struct {
	LR      float64 // initial learning rate, > 0; 0 means 0.001
	Beta1   float64 // first moment's decay, in [0, 1); 0 means 0.9
	Beta2   float64 // second moment's decay, in [0, 1); 0 means 0.999
	Epsilon float64 // > 0; 0 means 1e-8
	// DecayStart is the fraction of training after which the learning rate
	// decays linearly to zero at the last step, in (0, 1]; 0 means 2/3
	// (the official code: 80 of 120 epochs on SVHN), 1 means no decay.
	DecayStart float64
	// DecayBeta1 replaces Beta1 while the rate decays, in [0, 1); 0 means
	// 0.5, as in the official code. Set it to Beta1 to keep β₁.
	DecayBeta1 float64

	t    int
	m, v [][]float32
}

func (o *Adam) withDefaults() error {
	def := func(x *float64, d float64) {
		if *x == 0 {
			*x = d
		}
	}
	def(&o.LR, 0.001)
	def(&o.Beta1, 0.9)
	def(&o.Beta2, 0.999)
	def(&o.Epsilon, 1e-8)
	def(&o.DecayStart, 2.0/3)
	def(&o.DecayBeta1, 0.5)
	switch {
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("vat: Adam.LR = %v: want a finite number > 0", o.LR)
	case !(o.Beta1 >= 0 && o.Beta1 < 1):
		return fmt.Errorf("vat: Adam.Beta1 = %v: want a number in [0, 1)", o.Beta1)
	case !(o.Beta2 >= 0 && o.Beta2 < 1):
		return fmt.Errorf("vat: Adam.Beta2 = %v: want a number in [0, 1)", o.Beta2)
	case !(o.Epsilon > 0) || math.IsInf(o.Epsilon, 0):
		return fmt.Errorf("vat: Adam.Epsilon = %v: want a finite number > 0", o.Epsilon)
	case !(o.DecayStart > 0 && o.DecayStart <= 1):
		return fmt.Errorf("vat: Adam.DecayStart = %v: want a fraction in (0, 1]", o.DecayStart)
	case !(o.DecayBeta1 >= 0 && o.DecayBeta1 < 1):
		return fmt.Errorf("vat: Adam.DecayBeta1 = %v: want a number in [0, 1)", o.DecayBeta1)
	}
	return nil
}

// Schedule returns the learning rate and β₁ of step (0-based) out of steps.
func (o *Adam) Schedule(step, steps int) (lr, beta1 float64) {
	start := int(math.Round(o.DecayStart * float64(steps)))
	if step < start || start >= steps {
		return o.LR, o.Beta1
	}
	return o.LR * float64(steps-step) / float64(steps-start), o.DecayBeta1
}

// step applies one update with learning rate lr and first-moment decay b1.
func (o *Adam) step(params []*Param, grads []*tensor.Dense, lr, b1 float64) error {
	if o.m == nil {
		for _, p := range params {
			n := p.Value.Shape().TotalSize()
			o.m = append(o.m, make([]float32, n))
			o.v = append(o.v, make([]float32, n))
		}
	}
	o.t++
	// Bias corrections with the β₁ in force: Kingma and Ba's 1−β₁ᵗ.
	c1 := 1 - math.Pow(b1, float64(o.t))
	c2 := 1 - math.Pow(o.Beta2, float64(o.t))
	step := float32(lr * math.Sqrt(c2) / c1)
	beta1, beta2, eps := float32(b1), float32(o.Beta2), float32(o.Epsilon*math.Sqrt(c2))
	if a := backend.Active(); a != nil {
		ws, gs := make([][]float32, len(params)), make([][]float32, len(params))
		for i, p := range params {
			ws[i], gs[i] = p.Value.Data().([]float32), grads[i].Data().([]float32)
		}
		return a.Adam(ws, gs, o.m, o.v, beta1, beta2, step, eps)
	}
	// Pieces of every tensor on all cores (elements are independent).
	kernels.ParallelSlices(sizes(grads), func(i, lo, hi int) {
		w := params[i].Value.Data().([]float32)[lo:hi]
		g := grads[i].Data().([]float32)[lo:hi]
		m, v := o.m[i][lo:hi], o.v[i][lo:hi]
		for j, gj := range g {
			m[j] = beta1*m[j] + (1-beta1)*gj
			v[j] = beta2*v[j] + (1-beta2)*gj*gj
			w[j] -= step * m[j] / (float32(math.Sqrt(float64(v[j]))) + eps)
		}
	})
	for _, p := range params {
		backend.MarkHostWritten(p.Value.Data().([]float32))
	}
	return nil
}
