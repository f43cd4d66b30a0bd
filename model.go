package vat

import (
	"fmt"
	"math"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
	"github.com/org/vat/internal/ops"
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
	// fanIn and fanOut are the Glorot fans of a kernel; 0 for biases.
	fanIn, fanOut int
}

// Model is Keras' MNIST CNN (examples/mnist_cnn.py):
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
	cfg    ModelConfig
	params []*Param

	mu    sync.Mutex
	evals map[int]*evalGraph      // inference graphs by batch size
	grads map[gradKey]*trainGraph // Gradients' graphs
}

// NewModel returns a freshly initialized model.
func NewModel(cfg ModelConfig) (*Model, error) {
	m := &Model{cfg: cfg, evals: map[int]*evalGraph{}, grads: map[gradKey]*trainGraph{}}
	add := func(name string, fanIn, fanOut int, shape ...int) {
		m.params = append(m.params, &Param{Name: name, fanIn: fanIn, fanOut: fanOut,
			Value: tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))})
	}
	add("conv1/kernel", 1*9, 32*9, 32, 1, 3, 3)
	add("conv1/bias", 0, 0, 32)
	add("conv2/kernel", 32*9, 32*9, 32, 32, 3, 3)
	add("conv2/bias", 0, 0, 32)
	add("dense1/kernel", 4608, 128, 4608, 128)
	add("dense1/bias", 0, 0, 128)
	add("dense2/kernel", 128, Classes, 128, Classes)
	add("dense2/bias", 0, 0, Classes)
	m.initWeights(cfg.Seed)
	return m, nil
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

// syncParams copies the weights from the GPU and marks the host copies as
// the newest, so that a caller's writes reach the next step.
func (m *Model) syncParams(a *backend.Accelerator) {
	for _, p := range m.params {
		d := p.Value.Data().([]float32)
		if err := a.SyncHost(d); err != nil {
			// A failed copy leaves the device's value authoritative; the
			// next op reports the device's error.
			continue
		}
		a.MarkHost(d)
	}
}

// NumParams returns the number of scalar parameters (600,810).
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.params {
		n += p.Value.Shape().TotalSize()
	}
	return n
}

// Config returns the configuration the model was built with.
func (m *Model) Config() ModelConfig { return m.cfg }

// scope carries what layer functions need while they build one graph: the
// graph, whether dropout is active and where its seeds come from. The first
// error sticks; later layers become no-ops, so model code reads top to
// bottom without error checks after every line.
type scope struct {
	g        *G.ExprGraph
	dropout  bool
	seed     uint64
	dropouts uint64 // dropout ops created so far, to give each its own stream
	err      error
}

func newScope(dropout bool, seed uint64) *scope {
	return &scope{g: G.NewGraph(), dropout: dropout, seed: seed}
}

// weights is one set of input nodes bound to the model's live tensors, so
// that optimizer updates reach every graph without copying. A forward pass
// whose gradient is needed gets a set of its own: each weight node then has
// one differentiable consumer, and Gorgonia's Grad adds no summing ops of
// its own (which would bring Gorgonia's stock ops back into the graph).
type weights struct {
	nodes []*G.Node // in Model.params order
	named map[string]*G.Node
}

// weightNodes adds a weight set to s's graph; tag tells sets apart.
func (m *Model) weightNodes(s *scope, tag string) weights {
	w := weights{named: map[string]*G.Node{}}
	for _, p := range m.params {
		n := G.NewTensor(s.g, G.Float32, p.Value.Dims(), G.WithShape(p.Value.Shape()...),
			G.WithValue(p.Value), G.WithName(p.Name+tag))
		w.nodes = append(w.nodes, n)
		w.named[p.Name] = n
	}
	return w
}

// forward builds the network on the batch x (N×1×28×28) with the weights w
// and returns the logits (N×10).
func (m *Model) forward(s *scope, w weights, x *G.Node) *G.Node {
	n := x.Shape()[0]
	h := conv2D(s, x, w, "conv1", true)
	s.assertShape(h, n, 32, 26, 26)
	h = conv2D(s, h, w, "conv2", true)
	s.assertShape(h, n, 32, 24, 24)
	h = maxPool2x2(s, h)
	s.assertShape(h, n, 32, 12, 12)
	h = dropout(s, h, 0.25)
	h = dense(s, h, w, "dense1", true) // flattens 32×12×12 → 4608
	s.assertShape(h, n, 128)
	h = dropout(s, h, 0.5)
	h = dense(s, h, w, "dense2", false)
	s.assertShape(h, n, Classes)
	return h
}

func (s *scope) assertShape(x *G.Node, want ...int) {
	if s.err == nil && !x.Shape().Eq(tensor.Shape(want)) {
		s.err = fmt.Errorf("vat: internal error: layer output %v has shape %v, want %v", x.Name(), x.Shape(), want)
	}
}

func (s *scope) apply(op G.Op, in ...*G.Node) *G.Node {
	if s.err != nil {
		return nil
	}
	out, err := G.ApplyOp(op, in...)
	if err != nil {
		s.err = fmt.Errorf("vat: building %v: %w", op, err)
		return nil
	}
	return out
}

// conv2D is a 3×3 "valid" convolution with bias (and ReLU) using the
// weights name+"/kernel" and name+"/bias".
func conv2D(s *scope, x *G.Node, w weights, name string, relu bool) *G.Node {
	return s.apply(ops.NewConv2d(relu), x, w.named[name+"/kernel"], w.named[name+"/bias"])
}

// maxPool2x2 halves the height and width.
func maxPool2x2(s *scope, x *G.Node) *G.Node { return s.apply(ops.NewMaxPool(), x) }

// dense is a fully connected layer (and ReLU); it flattens x first.
func dense(s *scope, x *G.Node, w weights, name string, relu bool) *G.Node {
	if s.err != nil {
		return nil
	}
	return s.apply(ops.NewDense(relu, x.Dims()), x, w.named[name+"/kernel"], w.named[name+"/bias"])
}

// dropout drops with the given rate when the scope trains with dropout, and
// is the identity otherwise.
func dropout(s *scope, x *G.Node, rate float64) *G.Node {
	if s.err != nil || !s.dropout {
		return x
	}
	op, err := ops.NewDropout(rate, rng.SplitMix64(s.seed^rng.SplitMix64(rng.Dropout)^s.dropouts))
	s.dropouts++
	if err != nil {
		s.err = err
		return nil
	}
	return s.apply(op, x)
}
