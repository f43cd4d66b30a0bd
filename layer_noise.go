package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// Dropout zeroes each unit with probability rate during training, and
// scales the kept ones by 1/(1−rate) ("inverted" dropout), so that
// inference (which never drops) needs no rescaling. Its masks come from the
// training run's seed; VAT's probe and adversarial passes drop too, as in
// the training pass: each pass draws its own mask. The exact probe cannot
// linearize it (use FiniteDifference with Dropout).
func Dropout(rate float64) Layer { return &dropoutLayer{rate: rate} }

type dropoutLayer struct{ rate float64 }

func (l *dropoutLayer) kind() string    { return "dropout" }
func (l *dropoutLayer) spec() layerSpec { return layerSpec{Layer: "Dropout", Rate: l.rate} }

func (l *dropoutLayer) output(in []int) ([]int, error) {
	if !(l.rate >= 0 && l.rate < 1) {
		return nil, fmt.Errorf("Dropout(%v): want a rate in [0, 1)", l.rate)
	}
	return in, nil
}

func (l *dropoutLayer) params([]int) []paramSpec { return nil }

func (l *dropoutLayer) build(s *scope, x *G.Node, _ []*G.Node, _ bool) *G.Node {
	return dropout(s, x, l.rate)
}

// tangent refuses a dropping layer: its masks make the network's map
// random, with no tangent to take.
func (l *dropoutLayer) tangent(s *scope, d *G.Node, _ []*G.Node, _ layerTrace) *G.Node {
	if s.dropout && l.rate > 0 && s.err == nil {
		s.err = fmt.Errorf("vat: VATConfig.Probe = Exact: the network has Dropout(%g), which the exact probe does not linearize; use FiniteDifference", l.rate)
	}
	return d
}

func (l *dropoutLayer) state(string, []*Param, *[2][]float32, *int64) []stateEntry { return nil }
func (l *dropoutLayer) linear() bool                                               { return l.rate == 0 }

// GaussianNoise adds zero-mean Gaussian noise of standard deviation
// stddev to every unit during training, fresh in every pass (each of VAT's
// passes draws its own, like Dropout's masks), and nothing at inference.
// The VAT paper's MNIST network puts GaussianNoise(0.5) on every hidden
// layer (Miyato et al., TPAMI 2018, appendix C, after Salimans et al.,
// 2016). The exact probe treats it as the identity (the noise is additive).
func GaussianNoise(stddev float64) Layer { return &gaussianNoise{stddev: stddev} }

type gaussianNoise struct{ stddev float64 }

func (l *gaussianNoise) kind() string { return "gaussiannoise" }
func (l *gaussianNoise) spec() layerSpec {
	return layerSpec{Layer: "GaussianNoise", Stddev: l.stddev}
}

func (l *gaussianNoise) output(in []int) ([]int, error) {
	if !(l.stddev > 0 && l.stddev <= 100) {
		return nil, fmt.Errorf("GaussianNoise(%v): want a stddev in (0, 100]", l.stddev)
	}
	return in, nil
}

func (l *gaussianNoise) params([]int) []paramSpec { return nil }

func (l *gaussianNoise) build(s *scope, x *G.Node, _ []*G.Node, _ bool) *G.Node {
	return noise(s, x, l.stddev)
}

// tangent is the identity: the noise is additive.
func (l *gaussianNoise) tangent(_ *scope, d *G.Node, _ []*G.Node, _ layerTrace) *G.Node { return d }

func (l *gaussianNoise) state(string, []*Param, *[2][]float32, *int64) []stateEntry { return nil }

func init() {
	registerLayer("Dropout", func(s layerSpec) (Layer, error) { return Dropout(s.Rate), nil })
	registerLayer("GaussianNoise", func(s layerSpec) (Layer, error) { return GaussianNoise(s.Stddev), nil })
}
