package vat

import (
	"fmt"
	"math"
	"slices"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
	"github.com/org/vat/internal/rng"
)

// Image geometry and classes of the model (MNIST).
const (
	ImageRows = 28
	ImageCols = 28
	Classes   = 10
)

// ModelConfig configures NewModel. The zero value is Keras' mnist_cnn without
// dropout, initialized from seed 0.
type ModelConfig struct {
	// Dropout inserts Keras' two dropout layers (rates 0.25 and 0.5) into the
	// training graphs. Inference never drops.
	Dropout bool
	// Seed fixes the initial weights.
	Seed uint64
}

// Param is one trainable tensor of a Model.
type Param struct {
	// Name is "layer/kernel" or "layer/bias", e.g. "conv1/kernel".
	Name string
	// Value is the live tensor (float32). Kernels are laid out as PyTorch's:
	// convolutions F×C×KH×KW, dense layers in×out (x·W).
	Value *tensor.Dense
	// fanIn and fanOut are the Glorot fans of a kernel; 0 for biases and
	// batch-normalization scales, which start at 0, or at 1 when one is set.
	fanIn, fanOut int
	one           bool
}

// Model is a classifier: a stack of layers (see Sequential) with its
// weights. NewModel builds the preset, Keras' MNIST CNN
// (examples/mnist_cnn.py):
//
//	input 1×28×28
//	conv 3×3, 32 filters, ReLU   → 32×26×26
//	conv 3×3, 32 filters, ReLU   → 32×24×24
//	max-pool 2×2                 → 32×12×12
//	dropout 0.25                   (only with ModelConfig.Dropout)
//	flatten                      → 4608
//	dense 128, ReLU              → 128
//	dropout 0.5                    (only with ModelConfig.Dropout)
//	dense 10                     → logits (softmax in the loss)
//
// with Glorot-uniform kernels and zero biases: 600,810 float32 parameters.
// A Model is safe for concurrent use by Predict/Evaluate; training it while
// predicting is not.
type Model struct {
	cfg     ModelConfig
	inShape []int           // one sample's shape, e.g. 1×28×28
	layers  []Layer         // in order
	weights [][]int         // per layer: indices into params
	stats   []*[2][]float32 // per layer: BatchNorm's running mean and variance, else nil
	fused   []bool          // per layer: a ReLU after it is fused into it
	classes int             // the last layer's units
	params  []*Param

	// Saving (weights.go): each layer's PyTorch module name, whether the
	// model is NewModel's preset, and each BatchNorm layer's count of
	// running-average updates (PyTorch's num_batches_tracked).
	modules   []string
	preset    bool
	bnBatches []int64

	prep *Preprocessing // how inputs are made from images, if known (preprocessing.go)

	mu    sync.Mutex
	evals map[int]*evalGraph     // inference graphs by batch size
	grads map[gradKey]*stepGraph // Gradients' graphs
	dirs  map[dirKey]*dirGraph   // Robustness' graphs
}

// NewModel returns Keras' MNIST CNN, freshly initialized from cfg.Seed.
func NewModel(cfg ModelConfig) (*Model, error) {
	layers := presetLayers(cfg.Dropout)
	m, err := Sequential(presetShape(), cfg.Seed, layers...)
	if err != nil {
		return nil, err
	}
	m.cfg, m.preset = cfg, true
	m.modules = presetModules(layers)
	return m, nil
}

// presetLayers returns the preset's layers, with or without dropout.
func presetLayers(dropout bool) []Layer {
	layers := []Layer{Conv2D(32, 3), ReLU(), Conv2D(32, 3), ReLU(), MaxPool2D(2)}
	if dropout {
		layers = append(layers, Dropout(0.25))
	}
	layers = append(layers, Flatten(), Dense(128), ReLU())
	if dropout {
		layers = append(layers, Dropout(0.5))
	}
	return append(layers, Dense(Classes))
}

func presetShape() []int { return []int{1, ImageRows, ImageCols} }

// presetModules names the preset's layers as the PyTorch peer's module
// does: conv1, conv2, fc1, fc2 (layers without weights have no name).
func presetModules(layers []Layer) []string {
	names := make([]string, len(layers))
	conv, fc := 0, 0
	for i, l := range layers {
		switch l.kind() {
		case "conv":
			conv++
			names[i] = fmt.Sprintf("conv%d", conv)
		case "dense":
			fc++
			names[i] = fmt.Sprintf("fc%d", fc)
		}
	}
	return names
}

// Sequential returns a classifier made of layers applied in order to inputs
// of shape inputShape (one sample: C×H×W for images, or a flat vector's
// length), with Glorot-uniform kernels and zero biases drawn from seed. The
// last layer must be a Dense layer, or Dense then BatchNorm (the official
// 2015 VAT code's MNIST network normalizes its logits): its units are the
// classes, and its outputs the logits. Datasets must hold samples of inputShape's size
// (images of H×W for C×H×W = 1×H×W, or vectors) with labels below the
// number of classes.
//
//	m, err := vat.Sequential([]int{1, 28, 28}, seed,
//		vat.Conv2D(32, 3), vat.ReLU(), vat.MaxPool2D(2),
//		vat.Flatten(), vat.Dense(128), vat.ReLU(), vat.Dense(10))
func Sequential(inputShape []int, seed uint64, layers ...Layer) (*Model, error) {
	if len(inputShape) == 0 || size(inputShape) <= 0 {
		return nil, fmt.Errorf("vat: Sequential: input shape %v: want positive sizes", inputShape)
	}
	for _, d := range inputShape {
		if d <= 0 {
			return nil, fmt.Errorf("vat: Sequential: input shape %v: want positive sizes", inputShape)
		}
	}
	if len(layers) == 0 {
		return nil, fmt.Errorf("vat: Sequential: no layers")
	}
	if !endsWithLogits(layers) {
		return nil, fmt.Errorf("vat: Sequential: the last layer is %s, want Dense, or Dense then BatchNorm (its outputs are the logits)", layers[len(layers)-1].kind())
	}
	m := &Model{cfg: ModelConfig{Seed: seed}, inShape: append([]int(nil), inputShape...), layers: layers,
		evals: map[int]*evalGraph{}, grads: map[gradKey]*stepGraph{}, dirs: map[dirKey]*dirGraph{},
		modules: moduleNames(len(layers)), bnBatches: make([]int64, len(layers))}
	count := map[string]int{}
	shape := m.inShape
	for i, l := range layers {
		if l == nil {
			return nil, fmt.Errorf("vat: Sequential: layer %d is nil", i+1)
		}
		out, err := l.output(shape)
		if err != nil {
			return nil, fmt.Errorf("vat: Sequential: layer %d: %w", i+1, err)
		}
		var idx []int
		if specs := l.params(shape); len(specs) > 0 {
			count[l.kind()]++
			for _, p := range specs {
				idx = append(idx, len(m.params))
				m.params = append(m.params, &Param{Name: fmt.Sprintf("%s%d/%s", l.kind(), count[l.kind()], p.suffix),
					fanIn: p.fanIn, fanOut: p.fanOut, one: p.one, Value: tensor.New(tensor.WithShape(p.shape...), tensor.Of(tensor.Float32))})
			}
		}
		m.weights = append(m.weights, idx)
		var st *[2][]float32
		if sl, ok := l.(statsLayer); ok {
			st = sl.newStats(shape)
		}
		m.stats = append(m.stats, st)
		next := false
		if i+1 < len(layers) {
			_, next = layers[i+1].(fusableReLU)
		}
		_, fuses := l.(fusesReLU)
		m.fused = append(m.fused, next && fuses)
		shape = out
	}
	m.classes = shape[0]
	m.initWeights(seed)
	return m, nil
}

// clone returns a new model with m's layers, weights, batch normalization
// statistics and saving details: a copy to train apart from m (the ε
// search's candidates).
func (m *Model) clone() (*Model, error) {
	c, err := Sequential(m.inShape, m.cfg.Seed, slices.Clone(m.layers)...)
	if err != nil {
		return nil, err
	}
	c.cfg, c.preset, c.modules, c.prep = m.cfg, m.preset, slices.Clone(m.modules), m.prep
	for i, p := range m.Params() {
		copy(c.params[i].Value.Data().([]float32), p.Value.Data().([]float32))
	}
	for i, st := range m.stats {
		if st != nil {
			copy(c.stats[i][0], st[0])
			copy(c.stats[i][1], st[1])
		}
	}
	copy(c.bnBatches, m.bnBatches)
	return c, nil
}

// endsWithLogits reports whether layers end with a layer that gives
// logits (Dense), optionally followed by running statistics on them
// (BatchNorm: the official 2015 VAT code normalizes its logits).
func endsWithLogits(layers []Layer) bool {
	last := layers[len(layers)-1]
	if _, ok := last.(statsLayer); ok && len(layers) > 1 {
		last = layers[len(layers)-2]
	}
	_, ok := last.(logitsLayer)
	return ok
}

// initWeights draws every kernel from Glorot's uniform distribution,
// U(−l, l) with l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010;
// Keras' glorot_uniform, where a convolution's fans are channels × kernel
// area), and zeroes the biases.
func (m *Model) initWeights(seed uint64) {
	for i, p := range m.params {
		d := p.Value.Data().([]float32)
		if p.fanIn == 0 {
			kernels.Zero(d)
			if p.one {
				for j := range d {
					d[j] = 1
				}
			}
			continue
		}
		rng := rng.New(seed, rng.Init, uint64(i))
		limit := math.Sqrt(6 / float64(p.fanIn+p.fanOut))
		for j := range d {
			d[j] = float32((2*rng.Float64() - 1) * limit)
		}
	}
}

// Params returns the model's parameters in layer order. The tensors are the
// live weights: reading them is safe between training steps, and writing them
// changes the model. With a GPU backend, Params first copies the weights
// from the GPU; writes made after a later training step need a new call to
// Params before them, since training changes the GPU's copy only.
func (m *Model) Params() []Param {
	out := make([]Param, len(m.params))
	for i, p := range m.params {
		out[i] = *p
	}
	if a := backend.Active(); a != nil {
		m.syncParams(a)
	}
	return out
}

// syncParams copies the weights and batch normalization's running
// averages from the GPU and marks the host copies as the newest, so that a
// caller's writes reach the next step.
func (m *Model) syncParams(a *backend.Accelerator) {
	var hs [][]float32
	for _, p := range m.params {
		hs = append(hs, p.Value.Data().([]float32))
	}
	for _, st := range m.stats {
		if st != nil {
			hs = append(hs, st[0], st[1])
		}
	}
	for _, d := range hs {
		if err := a.SyncHost(d); err != nil {
			// A failed copy leaves the device's value authoritative; the
			// next op reports the device's error.
			continue
		}
		a.MarkHost(d)
	}
}

// NumParams returns the number of scalar parameters (600,810 for the preset).
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.params {
		n += p.Value.Shape().TotalSize()
	}
	return n
}

// Config returns the configuration NewModel built the model with; for a
// Sequential model only Seed is set.
func (m *Model) Config() ModelConfig { return m.cfg }

// forward builds the network on the batch x (N × the input shape) with the
// weights w and returns the logits (N × classes).
func (m *Model) forward(s *scope, w weights, x *G.Node) *G.Node {
	h := x
	skip := -1 // a max-pool fused into the layer before it
	for i, l := range m.layers {
		if i > 0 && m.fused[i-1] || i == skip {
			continue // this ReLU (or max-pool) was fused into the layer before
		}
		ws := make([]*G.Node, len(m.weights[i]))
		for j, k := range m.weights[i] {
			ws[j] = w.nodes[k]
		}
		s.stats = m.stats[i]
		if s.statsOf != nil && s.statsOf[i] != nil {
			s.stats = s.statsOf[i]
		}
		in := h
		next := i + 1 // the layer after this one and its fused ReLU
		if m.fused[i] {
			next++
		}
		pooler, fuses := l.(fusesPool)
		if fuses && s.inference && s.trace == nil && next < len(m.layers) {
			if _, ok := m.layers[next].(fusablePool); ok {
				if h = pooler.buildPooled(s, h, ws, m.fused[i]); s.err != nil {
					return nil
				}
				skip = next
				continue
			}
		}
		if h = l.build(s, h, ws, m.fused[i]); s.err != nil {
			return nil
		}
		if s.trace != nil {
			*s.trace = append(*s.trace, layerTrace{in, h})
			if m.fused[i] {
				*s.trace = append(*s.trace, layerTrace{h, h}) // the fused ReLU
			}
		}
	}
	s.assertShape(h, x.Shape()[0], m.classes)
	return h
}

// countStatUpdate records that a training step's clean pass updated every
// BatchNorm layer's running averages (PyTorch's num_batches_tracked).
func (m *Model) countStatUpdate() {
	for i, st := range m.stats {
		if st != nil {
			m.bnBatches[i]++
		}
	}
}
