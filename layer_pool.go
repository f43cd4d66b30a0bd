package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/org/vat/internal/ops"
)

// MaxPool2D is max-pooling over size×size windows with stride size; an odd
// row or column at the border is dropped. Only size 2 is implemented.
func MaxPool2D(size int) Layer { return &maxPool2D{size: size} }

type maxPool2D struct{ size int }

func (l *maxPool2D) kind() string    { return "pool" }
func (l *maxPool2D) spec() layerSpec { return layerSpec{Layer: "MaxPool2D", Size: l.size} }

func (l *maxPool2D) output(in []int) ([]int, error) {
	switch {
	case l.size != 2:
		return nil, fmt.Errorf("MaxPool2D(%d): only 2×2 pooling is implemented", l.size)
	case len(in) != 3 || in[1] < 2 || in[2] < 2:
		return nil, fmt.Errorf("MaxPool2D: input %v, want C×H×W with H, W >= 2", in)
	}
	return []int{in[0], in[1] / 2, in[2] / 2}, nil
}

func (l *maxPool2D) params([]int) []paramSpec { return nil }

func (l *maxPool2D) build(s *scope, x *G.Node, _ []*G.Node, _ bool) *G.Node {
	return s.apply(ops.NewMaxPool(), x)
}

// tangent passes each window's value at the position the recorded pass
// chose.
func (l *maxPool2D) tangent(s *scope, d *G.Node, _ []*G.Node, pass layerTrace) *G.Node {
	return s.apply(ops.NewPoolSelect(), d, pass.in, pass.out)
}

func (l *maxPool2D) fusablePool() {}

func (l *maxPool2D) state(string, []*Param, *[2][]float32, *int64) []stateEntry { return nil }

func init() {
	registerLayer("MaxPool2D", func(s layerSpec) (Layer, error) { return MaxPool2D(s.Size), nil })
}
