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
// With a GPU backend it updates the weights on the device, with the CPU's
// results. It is the Trainer's default optimizer.
type Adadelta struct {
	LR      float64 // learning rate; 0 means 1
	Rho     float64 // decay of both running averages, in (0, 1); 0 means 0.95
	Epsilon float64 // conditioning constant, > 0; 0 means 1e-7
}

// String returns "Adadelta(lr=…, rho=…, eps=…)".
func (o Adadelta) String() string {
	return fmt.Sprintf("Adadelta(lr=%g, rho=%g, eps=%g)", o.LR, o.Rho, o.Epsilon)
}

func (o Adadelta) withDefaults() (Optimizer, error) {
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
		return nil, fmt.Errorf("vat: Adadelta.LR = %v: want a finite number > 0", o.LR)
	case !(o.Rho > 0 && o.Rho < 1):
		return nil, fmt.Errorf("vat: Adadelta.Rho = %v: want a number in (0, 1)", o.Rho)
	case !(o.Epsilon > 0) || math.IsInf(o.Epsilon, 0):
		return nil, fmt.Errorf("vat: Adadelta.Epsilon = %v: want a finite number > 0", o.Epsilon)
	}
	return o, nil
}

func (o Adadelta) baseRate() float64 { return o.LR }

func (o Adadelta) record() optimizerRecord {
	return optimizerRecord{Name: "adadelta", LR: o.LR, Rho: o.Rho, Epsilon: o.Epsilon}
}

func (o Adadelta) newState(params []*Param) optimizerState {
	b := newBuffers(params, 2)
	return &adadeltaState{o: o, accGrad: b[0], accUpdate: b[1]}
}

type adadeltaState struct {
	o                  Adadelta
	accGrad, accUpdate [][]float32
}

func (s *adadeltaState) slots() []string        { return []string{"accum_grad", "accum_update"} }
func (s *adadeltaState) buffers() [][][]float32 { return [][][]float32{s.accGrad, s.accUpdate} }
func (s *adadeltaState) steps() int             { return 0 }
func (s *adadeltaState) setSteps(int)           {}

// step applies one update to params given their gradients, on the GPU when
// one is in use (the weights then stay there).
func (s *adadeltaState) step(params []*Param, grads []*tensor.Dense, lrate float64, _ bool) error {
	rho, eps, lr := float32(s.o.Rho), float32(s.o.Epsilon), float32(lrate)
	if a := backend.Active(); a != nil {
		ws, gs := hostBuffers(params, grads)
		return a.Adadelta(ws, gs, s.accGrad, s.accUpdate, rho, eps, lr)
	}
	// Pieces of every tensor on all cores (elements are independent).
	kernels.ParallelSlices(sizes(grads), func(i, lo, hi int) {
		w := params[i].Value.Data().([]float32)[lo:hi]
		g := grads[i].Data().([]float32)[lo:hi]
		kernels.AdadeltaUpdate(w, g, s.accGrad[i][lo:hi], s.accUpdate[i][lo:hi], rho, eps, lr)
	})
	return nil
}
