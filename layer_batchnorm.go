package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/org/vat/internal/ops"
)

// BatchNorm normalizes each channel (C×H×W inputs) or feature (flat
// inputs) to zero mean and unit variance, then scales by γ (starting at 1)
// and shifts by β (starting at 0) (Ioffe & Szegedy, 2015). Training
// normalizes with the batch's statistics and updates running averages
// (momentum 0.99, ε = 1e-3: Keras' defaults); inference uses the running
// averages. VAT's probe and adversarial passes normalize with their own
// batch's statistics but never update the running averages (the official
// VAT code's update_batch_stats=False), and neither does Model.Gradients.
// It has no GPU path: in a cuda build it runs on the host copies.
func BatchNorm() Layer { return &batchNorm{} }

type batchNorm struct{}

// Batch normalization's constants, Keras' defaults.
const (
	batchNormEps      = 1e-3
	batchNormMomentum = 0.99
)

func (l *batchNorm) kind() string    { return "batchnorm" }
func (l *batchNorm) spec() layerSpec { return layerSpec{Layer: "BatchNorm"} }

func (l *batchNorm) output(in []int) ([]int, error) {
	if len(in) != 1 && len(in) != 3 {
		return nil, fmt.Errorf("BatchNorm: input %v, want C×H×W or features", in)
	}
	return in, nil
}

func (l *batchNorm) params(in []int) []paramSpec {
	return []paramSpec{{suffix: "gamma", shape: []int{in[0]}, one: true}, {suffix: "beta", shape: []int{in[0]}}}
}

func (l *batchNorm) build(s *scope, x *G.Node, w []*G.Node, _ bool) *G.Node {
	if s.err != nil {
		return nil
	}
	if x.Dims() != 2 && x.Dims() != 4 {
		s.err = fmt.Errorf("vat: BatchNorm: input of shape %v: put it before Flatten, or after a Dense layer", x.Shape())
		return nil
	}
	momentum := batchNormMomentum
	if s.statsMomentum != nil {
		momentum = *s.statsMomentum
	}
	return s.apply(ops.NewBatchNorm(x.Dims(), s.batchStats, s.updateStats, batchNormEps, momentum, s.stats[0], s.stats[1]), x, w[0], w[1])
}

// tangent is batch normalization's derivative at the recorded pass, with
// the derivative of the batch's statistics when that pass normalized with
// them (training), and with the statistics as constants otherwise
// (inference). It runs after the recorded pass's batch norm.
func (l *batchNorm) tangent(s *scope, d *G.Node, w []*G.Node, pass layerTrace) *G.Node {
	if s.err != nil {
		return nil
	}
	op, err := ops.NewBatchNormTangent(pass.out.Op())
	if err != nil {
		s.err = fmt.Errorf("vat: internal error: %w", err)
		return nil
	}
	return s.apply(op, d, w[0], pass.out)
}

// state is PyTorch's BatchNorm1d/2d: weight (γ), bias (β), running_mean,
// running_var and num_batches_tracked.
func (l *batchNorm) state(mod string, w []*Param, st *[2][]float32, count *int64) []stateEntry {
	return []stateEntry{plainEntry(mod+".weight", w[0]), plainEntry(mod+".bias", w[1]),
		sliceEntry(mod+".running_mean", st[0]), sliceEntry(mod+".running_var", st[1]),
		{name: mod + ".num_batches_tracked", shape: []int{}, count: count}}
}

// newStats returns the running averages' start: mean 0, variance 1 per
// channel (in[0]).
func (l *batchNorm) newStats(in []int) *[2][]float32 {
	c := in[0]
	st := &[2][]float32{make([]float32, c), make([]float32, c)}
	for j := range st[1] {
		st[1][j] = 1
	}
	return st
}

func init() {
	registerLayer("BatchNorm", func(layerSpec) (Layer, error) { return BatchNorm(), nil })
}
