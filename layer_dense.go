package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/org/vat/internal/ops"
)

// Dense is a fully connected layer with units outputs and a bias, on the
// flattened input: y = x·W + b with W of in×units (Keras' layout; PyTorch's
// Linear.weight is its transpose).
func Dense(units int) Layer { return &dense{units: units} }

type dense struct{ units int }

func (l *dense) kind() string    { return "dense" }
func (l *dense) spec() layerSpec { return layerSpec{Layer: "Dense", Units: l.units} }

func (l *dense) output(in []int) ([]int, error) {
	if l.units < 1 {
		return nil, fmt.Errorf("Dense(%d): want units >= 1", l.units)
	}
	return []int{l.units}, nil
}

func (l *dense) params(in []int) []paramSpec {
	n := size(in)
	return []paramSpec{{suffix: "kernel", shape: []int{n, l.units}, fanIn: n, fanOut: l.units}, {suffix: "bias", shape: []int{l.units}}}
}

func (l *dense) build(s *scope, x *G.Node, w []*G.Node, relu bool) *G.Node {
	if s.err != nil {
		return nil
	}
	return s.apply(ops.NewDense(relu, x.Dims()), x, w[0], w[1])
}

// tangent is the product without the bias.
func (l *dense) tangent(s *scope, d *G.Node, w []*G.Node, _ layerTrace) *G.Node {
	if s.err != nil {
		return nil
	}
	return s.apply(ops.NewDense(false, d.Dims()), d, w[0], s.zeros(w[1]))
}

// state is PyTorch's Linear: its weight is the kernel's transpose
// (units×in), then the bias.
func (l *dense) state(mod string, w []*Param, _ *[2][]float32, _ *int64) []stateEntry {
	k := w[0]
	in, units := k.Value.Shape()[0], k.Value.Shape()[1]
	data := k.Value.Data().([]float32)
	return []stateEntry{{name: mod + ".weight", shape: []int{units, in},
		get:  func() []float32 { return transpose(data, in, units) },
		set:  func(v []float32) { copy(data, transpose(v, units, in)) },
		host: func() []float32 { return data }},
		plainEntry(mod+".bias", w[1])}
}

func (l *dense) fusesReLU() {}
func (l *dense) logits()    {}

func init() {
	registerLayer("Dense", func(s layerSpec) (Layer, error) { return Dense(s.Units), nil })
}
