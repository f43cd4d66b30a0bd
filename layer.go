package vat

import (
	"fmt"
	"strings"

	G "gorgonia.org/gorgonia"
)

// A Layer is one step of a Sequential network. The constructors make them,
// one family per file: Conv2D (layer_conv.go), MaxPool2D (layer_pool.go),
// Dense (layer_dense.go), ReLU and LeakyReLU (layer_activation.go), Dropout
// and GaussianNoise (layer_noise.go), BatchNorm (layer_batchnorm.go) and
// Flatten (layer_flatten.go). A ReLU right after a Conv2D or a Dense layer
// is fused into it (one op, one pass over the output); in inference graphs
// on the CPU a 2×2 max-pool right after a Conv2D (and its ReLU) is too.
//
// Each layer carries all of its behaviour: its output shape, weights,
// forward pass, tangent map (for VAT's exact probe), state-dict entries and
// its description in a weights file's header. Nothing else in the package
// looks at a layer's concrete type; adding a layer means one file and its
// test.
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
	// tangent adds the layer's linear map at a recorded pass to s's graph:
	// J·d for the direction d, with weights w and the layer's input and
	// output in that pass (see Model.tangent). A fused ReLU is applied by
	// the caller.
	tangent(s *scope, d *G.Node, w []*G.Node, pass layerTrace) *G.Node
	// spec describes the layer for a weights file's header.
	spec() layerSpec
	// state lists the layer's entries of the model's state dict, under
	// PyTorch's module name mod, given its weights w and, for a layer with
	// running statistics, those and their update count.
	state(mod string, w []*Param, stats *[2][]float32, count *int64) []stateEntry
}

// Optional behaviours, found by interface, not by concrete type.
type (
	// fusesReLU is a layer whose op can apply a following ReLU itself.
	fusesReLU interface{ fusesReLU() }
	// fusableReLU is the ReLU that such a layer absorbs.
	fusableReLU interface{ fusableReLU() }
	// statsLayer keeps running statistics (BatchNorm): newStats returns
	// their initial values for input shape in.
	statsLayer interface {
		newStats(in []int) *[2][]float32
	}
	// fusesPool is a layer whose inference op can apply a following 2×2
	// max-pool itself (and the ReLU before it, if relu): buildPooled
	// builds both.
	fusesPool interface {
		buildPooled(s *scope, x *G.Node, w []*G.Node, relu bool) *G.Node
	}
	// fusablePool is the max-pool that such a layer absorbs.
	fusablePool interface{ fusablePool() }
	// logitsLayer can end a classifier: its outputs are the logits.
	logitsLayer interface{ logits() }
	// randomLayer may have no tangent map (Dropout while it drops):
	// linear reports whether it has one.
	randomLayer interface{ linear() bool }
)

// paramSpec describes one weight tensor of a layer: its name suffix, shape
// and Glorot fans (0 for a bias, which starts at zero).
type paramSpec struct {
	suffix        string
	shape         []int
	fanIn, fanOut int
	one           bool // a scale that starts at 1 (fans 0)
}

// layerSpec describes one layer in a file's header: the constructor's name
// and arguments.
type layerSpec struct {
	Layer   string  `json:"layer"`
	Filters int     `json:"filters,omitempty"`
	Kernel  int     `json:"kernel,omitempty"`
	Padding string  `json:"padding,omitempty"`
	Size    int     `json:"size,omitempty"`
	Units   int     `json:"units,omitempty"`
	Rate    float64 `json:"rate,omitempty"`
	Stddev  float64 `json:"stddev,omitempty"`
	Slope   float64 `json:"slope,omitempty"`
}

// String writes the spec as its constructor call, e.g. Dense(128).
func (s layerSpec) String() string {
	var args []string
	for _, a := range []struct {
		set bool
		v   string
	}{
		{s.Filters != 0, fmt.Sprint(s.Filters)}, {s.Kernel != 0, fmt.Sprint(s.Kernel)}, {s.Padding != "", s.Padding},
		{s.Size != 0, fmt.Sprint(s.Size)}, {s.Units != 0, fmt.Sprint(s.Units)}, {s.Rate != 0, fmt.Sprint(s.Rate)},
		{s.Stddev != 0, fmt.Sprint(s.Stddev)}, {s.Slope != 0, fmt.Sprint(s.Slope)},
	} {
		if a.set {
			args = append(args, a.v)
		}
	}
	return clip(s.Layer) + "(" + strings.Join(args, ", ") + ")"
}

// layerDecoders turn a header's layer description back into the layer, by
// its Layer name; each layer's file registers its own.
var layerDecoders = map[string]func(layerSpec) (Layer, error){}

// registerLayer registers the decoder of the layers named name.
func registerLayer(name string, decode func(layerSpec) (Layer, error)) {
	if _, dup := layerDecoders[name]; dup {
		panic("vat: layer " + name + " registered twice")
	}
	layerDecoders[name] = decode
}

// layer returns the layer s describes.
func (s layerSpec) layer() (Layer, error) {
	decode, ok := layerDecoders[s.Layer]
	if !ok {
		return nil, fmt.Errorf("unknown layer %q", clip(s.Layer))
	}
	return decode(s)
}

// size is the number of values in a shape.
func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
