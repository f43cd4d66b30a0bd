package vat

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// Adadelta is Zeiler's adaptive learning-rate method (arXiv:1212.5701) with
// Keras' semantics, including its learning rate:
//
//	a ← ρ·a + (1−ρ)·g²
//	Δ ← g · sqrt(u + ε) / sqrt(a + ε)
//	θ ← θ − lr·Δ
//	u ← ρ·u + (1−ρ)·Δ²
//
// per parameter element, a and u starting at 0. The zero value means Keras'
// defaults: LR 1, Rho 0.95, Epsilon 1e-7. (Gorgonia has no Adadelta solver.)
type Adadelta struct {
	LR      float64 // learning rate; 0 means 1
	Rho     float64 // decay of both running averages, in (0, 1); 0 means 0.95
	Epsilon float64 // conditioning constant, > 0; 0 means 1e-7

	accGrad, accUpdate [][]float32
}

func (o *Adadelta) withDefaults() error {
	if o.LR == 0 {
		o.LR = 1
	}
	if o.Rho == 0 {
		o.Rho = 0.95
	}
	if o.Epsilon == 0 {
		o.Epsilon = 1e-7
	}
	switch {
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("vat: Adadelta.LR = %v: want a finite number > 0", o.LR)
	case !(o.Rho > 0 && o.Rho < 1):
		return fmt.Errorf("vat: Adadelta.Rho = %v: want a number in (0, 1)", o.Rho)
	case !(o.Epsilon > 0) || math.IsInf(o.Epsilon, 0):
		return fmt.Errorf("vat: Adadelta.Epsilon = %v: want a finite number > 0", o.Epsilon)
	}
	return nil
}

// step applies one update to params given their gradients, on the GPU when
// one is in use (the weights then stay there).
func (o *Adadelta) step(params []*Param, grads []*tensor.Dense) error {
	if o.accGrad == nil {
		for _, p := range params {
			n := p.Value.Shape().TotalSize()
			o.accGrad = append(o.accGrad, make([]float32, n))
			o.accUpdate = append(o.accUpdate, make([]float32, n))
		}
	}
	rho, eps, lr := float32(o.Rho), float32(o.Epsilon), float32(o.LR)
	if a := backend.Active(); a != nil {
		ws, gs := make([][]float32, len(params)), make([][]float32, len(params))
		for i, p := range params {
			ws[i], gs[i] = p.Value.Data().([]float32), grads[i].Data().([]float32)
		}
		return a.Adadelta(ws, gs, o.accGrad, o.accUpdate, rho, eps, lr)
	}
	// Pieces of every tensor on all cores (elements are independent).
	kernels.ParallelSlices(sizes(grads), func(i, lo, hi int) {
		w := params[i].Value.Data().([]float32)[lo:hi]
		g := grads[i].Data().([]float32)[lo:hi]
		a, u := o.accGrad[i][lo:hi], o.accUpdate[i][lo:hi]
		for j, gj := range g {
			a[j] = rho*a[j] + (1-rho)*gj*gj
			d := gj * float32(math.Sqrt(float64(u[j]+eps))/math.Sqrt(float64(a[j]+eps)))
			w[j] -= lr * d
			u[j] = rho*u[j] + (1-rho)*d*d
		}
	})
	return nil
}

// sizes returns the number of elements of each tensor.
func sizes(ts []*tensor.Dense) []int {
	n := make([]int, len(ts))
	for i, t := range ts {
		n[i] = t.Shape().TotalSize()
	}
	return n
}
