package vat

import (
	G "gorgonia.org/gorgonia"
)

// Flatten turns each sample into a vector (C×H×W → C·H·W). The graph keeps
// the tensor as it is: a following Dense layer flattens its input itself,
// and the elementwise layers do not care.
func Flatten() Layer { return flatten{} }

type flatten struct{}

func (flatten) kind() string                                           { return "flatten" }
func (flatten) spec() layerSpec                                        { return layerSpec{Layer: "Flatten"} }
func (flatten) output(in []int) ([]int, error)                         { return []int{size(in)}, nil }
func (flatten) params([]int) []paramSpec                               { return nil }
func (flatten) build(_ *scope, x *G.Node, _ []*G.Node, _ bool) *G.Node { return x }
func (flatten) tangent(_ *scope, d *G.Node, _ []*G.Node, _ layerTrace) *G.Node {
	return d
}
func (flatten) state(string, []*Param, *[2][]float32, *int64) []stateEntry { return nil }

func init() {
	registerLayer("Flatten", func(layerSpec) (Layer, error) { return Flatten(), nil })
}
