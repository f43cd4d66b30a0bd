package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/org/vat/internal/ops"
)

// ReLU is max(0, x), elementwise.
func ReLU() Layer { return relu{} }

type relu struct{}

func (relu) kind() string                   { return "relu" }
func (relu) spec() layerSpec                { return layerSpec{Layer: "ReLU"} }
func (relu) output(in []int) ([]int, error) { return in, nil }
func (relu) params([]int) []paramSpec       { return nil }
func (relu) build(s *scope, x *G.Node, _ []*G.Node, _ bool) *G.Node {
	return s.apply(ops.NewReLU(), x)
}

// tangent masks d where the recorded pass's output is 0.
func (relu) tangent(s *scope, d *G.Node, _ []*G.Node, pass layerTrace) *G.Node {
	return s.apply(ops.NewMask(), d, pass.out)
}

func (relu) state(string, []*Param, *[2][]float32, *int64) []stateEntry { return nil }
func (relu) fusableReLU()                                               {}

// LeakyReLU is x for x > 0 and slope·x otherwise, elementwise, with slope
// in (0, 1) (Keras' LeakyReLU(negative_slope), PyTorch's LeakyReLU). Its
// tangent for the exact probe scales the direction by 1 or slope where the
// clean pass was positive or not. It is not fused into the layer before
// it, and has no GPU path: in a cuda build it runs on the host copies
// (each use copies its input from the device and its output back).
func LeakyReLU(slope float64) Layer { return &leakyReLU{slope: slope} }

type leakyReLU struct{ slope float64 }

func (l *leakyReLU) kind() string    { return "leakyrelu" }
func (l *leakyReLU) spec() layerSpec { return layerSpec{Layer: "LeakyReLU", Slope: l.slope} }

func (l *leakyReLU) output(in []int) ([]int, error) {
	if !(l.slope > 0 && l.slope < 1) {
		return nil, fmt.Errorf("LeakyReLU(%v): want a slope in (0, 1)", l.slope)
	}
	return in, nil
}

func (l *leakyReLU) params([]int) []paramSpec { return nil }

func (l *leakyReLU) build(s *scope, x *G.Node, _ []*G.Node, _ bool) *G.Node {
	op, err := ops.NewLeakyReLU(l.slope)
	if err != nil && s.err == nil {
		s.err = err
	}
	return s.apply(op, x)
}

func (l *leakyReLU) tangent(s *scope, d *G.Node, _ []*G.Node, pass layerTrace) *G.Node {
	op, err := ops.NewLeakyScale(l.slope)
	if err != nil && s.err == nil {
		s.err = err
	}
	return s.apply(op, d, pass.out)
}

func (l *leakyReLU) state(string, []*Param, *[2][]float32, *int64) []stateEntry { return nil }

func init() {
	registerLayer("ReLU", func(layerSpec) (Layer, error) { return ReLU(), nil })
	registerLayer("LeakyReLU", func(s layerSpec) (Layer, error) { return LeakyReLU(s.Slope), nil })
}
