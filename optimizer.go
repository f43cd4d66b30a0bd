package vat

import (
	"fmt"
	"slices"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
)

// An Optimizer is a training method's settings: Adadelta, Adam or SGD.
// A value holds settings only, never state: each trainer keeps its own
// (running averages, moments, velocities), so one Optimizer value may
// configure any number of trainers, and Config never returns state that
// two trainers could share. The learning rate a step uses is the
// optimizer's base rate shaped by the trainer's Schedule.
type Optimizer interface {
	// String names the optimizer and its settings, for logs.
	String() string
	// withDefaults fills in zero settings and validates the rest.
	withDefaults() (Optimizer, error)
	// baseRate is the learning rate the schedule starts from.
	baseRate() float64
	// newState returns fresh state for params.
	newState(params []*Param) optimizerState
	// record describes the settings for a checkpoint.
	record() optimizerRecord
}

// optimizerState is one trainer's optimizer state.
type optimizerState interface {
	// step updates params from grads with learning rate lr; decaying
	// says the schedule is in its final decay phase (Adam's DecayBeta1).
	step(params []*Param, grads []*tensor.Dense, lr float64, decaying bool) error
	// slots names the per-parameter state tensors, and buffers returns
	// them (slot-major: buffers()[k][i] is slot k of parameter i).
	slots() []string
	buffers() [][][]float32
	// steps is the number of updates made (Adam's t), for checkpoints.
	steps() int
	setSteps(int)
}

// optimizerRecord is an optimizer's settings in a checkpoint's header.
type optimizerRecord struct {
	Name        string  `json:"name"` // "adadelta", "adam" or "sgd"
	LR          float64 `json:"lr"`
	Rho         float64 `json:"rho,omitempty"`
	Epsilon     float64 `json:"epsilon,omitempty"`
	Beta1       float64 `json:"beta1,omitempty"`
	Beta2       float64 `json:"beta2,omitempty"`
	DecayBeta1  float64 `json:"decay_beta1,omitempty"`
	Momentum    float64 `json:"momentum,omitempty"`
	Nesterov    bool    `json:"nesterov,omitempty"`
	WeightDecay float64 `json:"weight_decay,omitempty"`
}

// optimizer returns the optimizer r describes, validated.
func (r optimizerRecord) optimizer() (Optimizer, error) {
	var o Optimizer
	switch r.Name {
	case "adadelta":
		o = Adadelta{LR: r.LR, Rho: r.Rho, Epsilon: r.Epsilon}
	case "adam":
		o = Adam{LR: r.LR, Beta1: r.Beta1, Beta2: r.Beta2, Epsilon: r.Epsilon, DecayBeta1: r.DecayBeta1}
	case "sgd":
		o = SGD{LR: r.LR, Momentum: r.Momentum, Nesterov: r.Nesterov, WeightDecay: r.WeightDecay}
	default:
		return nil, fmt.Errorf("optimizer %q: want adadelta, adam or sgd", clip(r.Name))
	}
	return o.withDefaults()
}

// optimizerOrDefault validates o, or returns def (validated) when o is nil.
func optimizerOrDefault(o, def Optimizer) (Optimizer, error) {
	if o == nil {
		o = def
	}
	return o.withDefaults()
}

// newBuffers returns k zeroed buffers per parameter, slot-major.
func newBuffers(params []*Param, k int) [][][]float32 {
	bufs := make([][][]float32, k)
	for s := range bufs {
		for _, p := range params {
			bufs[s] = append(bufs[s], make([]float32, p.Value.Shape().TotalSize()))
		}
	}
	return bufs
}

// hostBuffers returns the weights' and gradients' host slices.
func hostBuffers(params []*Param, grads []*tensor.Dense) (ws, gs [][]float32) {
	ws, gs = make([][]float32, len(params)), make([][]float32, len(params))
	for i, p := range params {
		ws[i], gs[i] = p.Value.Data().([]float32), grads[i].Data().([]float32)
	}
	return ws, gs
}

// syncState copies an optimizer's state from the GPU, if one holds it.
func syncState(st optimizerState) error {
	var hs [][]float32
	for _, b := range st.buffers() {
		hs = append(hs, b...)
	}
	return backend.SyncToHost(hs...)
}

// sizes returns the number of elements of each tensor.
func sizes(ts []*tensor.Dense) []int {
	n := make([]int, len(ts))
	for i, t := range ts {
		n[i] = t.Shape().TotalSize()
	}
	return n
}

// cloneBuffers deep-copies slot-major buffers.
func cloneBuffers(b [][][]float32) [][][]float32 {
	out := make([][][]float32, len(b))
	for k := range b {
		for _, x := range b[k] {
			out[k] = append(out[k], slices.Clone(x))
		}
	}
	return out
}
