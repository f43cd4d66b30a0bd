package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/org/vat/internal/ops"
)

// A Layer is one step of a Sequential network. The constructors below make
// them: Conv2D, MaxPool2D, Dense, ReLU, Dropout, Flatten and BatchNorm. A ReLU right
// after a Conv2D or a Dense layer is fused into it (one op, one pass over
// the output).
type Layer interface {
	// kind names the layer family; layers with weights are numbered
	// within their family (conv1, conv2, dense1, ...).
	kind() string
	// output returns the per-sample output shape for the per-sample
	// input shape in, or an error that says what does not fit.
	output(in []int) ([]int, error)
	// params lists the layer's weights for input shape in.
	params(in []int) []paramSpec
	// build adds the layer to s's graph on x with weights w; relu says that
	// a ReLU follows and is fused.
	build(s *scope, x *G.Node, w []*G.Node, relu bool) *G.Node
	// spec describes the layer for a weights file's header.
	spec() layerSpec
}

// paramSpec describes one weight tensor of a layer: its name suffix, shape
// and Glorot fans (0 for a bias, which starts at zero).
type paramSpec struct {
	suffix        string
	shape         []int
	fanIn, fanOut int
	one           bool // a scale that starts at 1 (fans 0)
}

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
	if l.padding == Same && l.kernel > 1 {
		x = s.apply(ops.NewPad(l.kernel/2, l.kernel/2), x)
	}
	return s.apply(ops.NewConv2d(relu), x, w[0], w[1])
}

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

// Dropout zeroes each unit with probability rate during training, and
// scales the kept ones by 1/(1−rate) ("inverted" dropout), so that
// inference (which never drops) needs no rescaling. Its masks come from the

// ... as in the training pass: each pass draws its own mask.
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
	return s.apply(ops.NewBatchNorm(x.Dims(), s.batchStats, s.updateStats, batchNormEps, batchNormMomentum, s.stats[0], s.stats[1]), x, w[0], w[1])
}

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

// size is the number of values in a shape.
func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
