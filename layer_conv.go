package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/org/vat/internal/ops"
)

// Padding is a convolution's border handling.
type Padding int

const (
	// Valid convolves only where the kernel fits: H×W becomes
	// (H−k+1)×(W−k+1).
	Valid Padding = iota
	// Same pads the input with zeros so that H×W stays H×W (odd kernels).
	Same
)

// Conv2D is a 2-D convolution with stride 1, filters output channels, a
// kernel×kernel window and a bias: Keras' Conv2D(filters, kernel), PyTorch's
// Conv2d(C, filters, kernel). Its kernel is filters×C×kernel×kernel
// (PyTorch's layout); padding defaults to Valid.
func Conv2D(filters, kernel int, padding ...Padding) Layer {
	l := &conv2D{filters: filters, kernel: kernel}
	if len(padding) > 0 {
		l.padding = padding[0]
	}
	return l
}

type conv2D struct {
	filters, kernel int
	padding         Padding
}

func (l *conv2D) kind() string { return "conv" }

func (l *conv2D) spec() layerSpec {
	pad := "valid"
	if l.padding == Same {
		pad = "same"
	}
	return layerSpec{Layer: "Conv2D", Filters: l.filters, Kernel: l.kernel, Padding: pad}
}

func (l *conv2D) output(in []int) ([]int, error) {
	switch {
	case l.filters < 1 || l.kernel < 1:
		return nil, fmt.Errorf("Conv2D(%d, %d): want filters >= 1 and kernel >= 1", l.filters, l.kernel)
	case l.padding != Valid && l.padding != Same:
		return nil, fmt.Errorf("Conv2D: padding %d: want Valid or Same", l.padding)
	case l.padding == Same && l.kernel%2 == 0:
		return nil, fmt.Errorf("Conv2D(%d, %d, Same): same padding needs an odd kernel", l.filters, l.kernel)
	case len(in) != 3:
		return nil, fmt.Errorf("Conv2D: input %v, want C×H×W", in)
	case l.padding == Valid && (in[1] < l.kernel || in[2] < l.kernel):
		return nil, fmt.Errorf("Conv2D(%d, %d): input %v smaller than the kernel", l.filters, l.kernel, in)
	}
	if l.padding == Same {
		return []int{l.filters, in[1], in[2]}, nil
	}
	return []int{l.filters, in[1] - l.kernel + 1, in[2] - l.kernel + 1}, nil
}

func (l *conv2D) params(in []int) []paramSpec {
	area := l.kernel * l.kernel
	return []paramSpec{
		{suffix: "kernel", shape: []int{l.filters, in[0], l.kernel, l.kernel}, fanIn: in[0] * area, fanOut: l.filters * area},
		{suffix: "bias", shape: []int{l.filters}},
	}
}

func (l *conv2D) build(s *scope, x *G.Node, w []*G.Node, relu bool) *G.Node {
	return s.apply(ops.NewConv2d(relu), l.pad(s, x), w[0], w[1])
}

// pad pads x for Same padding.
func (l *conv2D) pad(s *scope, x *G.Node) *G.Node {
	if l.padding == Same && l.kernel > 1 {
		return s.apply(ops.NewPad(l.kernel/2, l.kernel/2), x)
	}
	return x
}

// tangent is the convolution without its bias.
func (l *conv2D) tangent(s *scope, d *G.Node, w []*G.Node, _ layerTrace) *G.Node {
	return s.apply(ops.NewConv2d(false), l.pad(s, d), w[0], s.zeros(w[1]))
}

// state is PyTorch's Conv2d: weight F×C×KH×KW (the layout here), bias.
func (l *conv2D) state(mod string, w []*Param, _ *[2][]float32, _ *int64) []stateEntry {
	return []stateEntry{plainEntry(mod+".weight", w[0]), plainEntry(mod+".bias", w[1])}
}

func (l *conv2D) fusesReLU() {}

// buildPooled is build followed by a 2×2 max-pool, in one op: for
// inference graphs (see Model.forward).
func (l *conv2D) buildPooled(s *scope, x *G.Node, w []*G.Node, relu bool) *G.Node {
	return s.apply(ops.NewConv2dPool(relu), l.pad(s, x), w[0], w[1])
}

func init() {
	registerLayer("Conv2D", func(s layerSpec) (Layer, error) {
		switch s.Padding {
		case "valid":
			return Conv2D(s.Filters, s.Kernel, Valid), nil
		case "same":
			return Conv2D(s.Filters, s.Kernel, Same), nil
		}
		return nil, fmt.Errorf("Conv2D padding %q: want valid or same", clip(s.Padding))
	})
}
