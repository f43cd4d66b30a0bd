package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/ops"
	"github.com/org/vat/internal/rng"
)

// scope carries what layer functions need while they build one graph: the
// graph, whether dropout is active and where its seeds come from. The first
// error sticks; later layers become no-ops, so model code reads top to
// bottom without error checks after every line.
type scope struct {
	g        *G.ExprGraph
	dropout  bool
	seed     uint64
	dropouts uint64       // dropout ops created so far, to give each its own stream
	streams  []ops.Stream // the dropout ops, in creation order, for checkpoints
	err      error

	// Batch normalization: batchStats normalizes with the batch's
	// statistics (training graphs) instead of the running averages
	// (inference); updateStats lets a pass update the running averages
	// (the clean training pass only); stats are the current layer's
	// running mean and variance, set by Model.forward.
	batchStats, updateStats bool
	stats                   *[2][]float32
	// statsOf, when set, replaces each layer's running averages (by layer
	// index; nil entries keep the layer's own) and statsMomentum their
	// momentum: population statistics collect each batch's statistics
	// this way (batchnorm_stats.go).
	statsOf       []*[2][]float32
	statsMomentum *float64

	// inference: the graph only computes outputs (no gradient, no
	// trace), on the CPU, so layers may fuse what follows them
	// (fusesPool).
	inference bool

	// The exact probe: trace, when set, records each layer's input and
	// output as forward builds them; consts are the constant inputs (zero
	// biases) that tangent adds, which the graph's compiler must be given.
	trace  *[]layerTrace
	consts []*G.Node
}

// layerTrace is one layer's input and output in a recorded pass (for a
// layer whose ReLU is fused, the output after the ReLU).
type layerTrace struct{ in, out *G.Node }

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

// dropout drops with the given rate when the scope trains with dropout, and
// is the identity otherwise.
func dropout(s *scope, x *G.Node, rate float64) *G.Node {
	return stochastic(s, x, func(seed uint64) (streamOp, error) { return ops.NewDropout(rate, seed) })
}

// noise adds GaussianNoise's noise when the scope trains (as dropout), and
// is the identity otherwise.
func noise(s *scope, x *G.Node, stddev float64) *G.Node {
	return stochastic(s, x, func(seed uint64) (streamOp, error) { return ops.NewGaussianNoise(stddev, seed) })
}

// streamOp is an op that draws random numbers every run.
type streamOp interface {
	G.Op
	ops.Stream
}

// stochastic applies the op that newOp makes, seeded from the scope's seed
// and the number of random layers before it (one family of streams for
// dropout masks and noise), and records it among the streams a checkpoint
// saves.
func stochastic(s *scope, x *G.Node, newOp func(seed uint64) (streamOp, error)) *G.Node {
	if s.err != nil || !s.dropout {
		return x
	}
	op, err := newOp(rng.SplitMix64(s.seed ^ rng.SplitMix64(rng.Dropout) ^ s.dropouts))
	s.dropouts++
	if err != nil {
		s.err = err
		return nil
	}
	s.streams = append(s.streams, op)
	return s.apply(op, x)
}

// zeros returns a constant all-zero input shaped like x (a bias the
// tangent map leaves out), registered in s.consts.
func (s *scope) zeros(x *G.Node) *G.Node {
	if s.err != nil {
		return nil
	}
	z := G.NewTensor(s.g, G.Float32, x.Dims(), G.WithShape(x.Shape()...),
		G.WithValue(tensor.New(tensor.WithShape(x.Shape()...), tensor.Of(tensor.Float32))),
		G.WithName(fmt.Sprintf("zeros#%d", len(s.consts))))
	s.consts = append(s.consts, z)
	return z
}

func stopGradient(s *scope, x *G.Node) *G.Node { return s.apply(ops.NewStopGradient(), x) }

func l2Normalize(s *scope, x *G.Node, scale float64) *G.Node {
	if s.err != nil {
		return nil
	}
	return s.apply(ops.NewL2Normalize(scale, x.Dims()), x)
}

func klDivergence(s *scope, p, q *G.Node, r Reduction) *G.Node {
	return s.apply(ops.NewKL(ops.Reduction(r)), p, q)
}

func add(s *scope, a, b *G.Node) *G.Node { return s.apply(ops.NewAdd(), a, b) }

// gradient returns ∂cost/∂wrt, wrt being an input node.
func gradient(s *scope, cost, wrt *G.Node) *G.Node {
	if s.err != nil {
		return nil
	}
	g, err := G.Grad(cost, wrt)
	if err != nil {
		s.err = fmt.Errorf("vat: differentiating %v: %w", cost, err)
		return nil
	}
	return g[0]
}

// weightedSum returns Σ w_i·x_i of scalar nodes.
func weightedSum(s *scope, w []float64, x ...*G.Node) *G.Node {
	return s.apply(ops.NewWeightedSum(w...), x...)
}
