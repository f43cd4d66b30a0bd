package vat

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/chewxy/hm"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// randTensor returns a float32 tensor of the given shape with entries drawn
// uniformly from [lo, hi).
func randTensor(rng *rand.Rand, lo, hi float64, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	for i := range t.Data().([]float32) {
		t.Data().([]float32)[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return t
}

// scalarCost reduces a node to a scalar that depends on every element with
// its own random weight, Σ out ⊙ R, so that a gradient check sees every
// output position. Scalars pass through.
func scalarCost(rng *rand.Rand, out *G.Node) (*G.Node, error) {
	if out.IsScalar() {
		return out, nil
	}
	return project(out, randTensor(rng, -1, 1, out.Shape()...))
}

// project returns Σ x ⊙ r for a fixed tensor r. The tests use it instead of
// Gorgonia's HadamardProd and Sum, so that their graphs, like the package's,
// hold only the package's ops (also in the cuda build).
func project(x *G.Node, r *tensor.Dense) (*G.Node, error) {
	return G.ApplyOp(&projectOp{opBase: newOpBase("Project"), r: r.Data().([]float32), rank: x.Dims()}, x)
}

// projectOp is Σ x ⊙ r; its gradient is g·r.
type projectOp struct {
	opBase
	r    []float32
	rank int
}

func (op *projectOp) Arity() int    { return 1 }
func (op *projectOp) Type() hm.Type { return fnType(tensorType(op.rank), scalarType()) }
func (op *projectOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (op *projectOp) Do(in ...G.Value) (G.Value, error) {
	x, _, err := f32s(op.name, 0, in[0])
	if err != nil {
		return nil, err
	}
	var s float64
	for i, v := range x {
		s += float64(v) * float64(op.r[i])
	}
	return G.NewF32(float32(s)), nil
}
func (op *projectOp) DiffWRT(int) []bool { return []bool{true} }
func (op *projectOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&projectGradOp{opBase: newOpBase("ProjectGrad"), fwd: op, shape: in[0].Shape()}, grad)
	return G.Nodes{g}, err
}

type projectGradOp struct {
	opBase
	gradOnly
	fwd   *projectOp
	shape tensor.Shape
	out   buffer
}

func (op *projectGradOp) Arity() int    { return 1 }
func (op *projectGradOp) Type() hm.Type { return fnType(scalarType(), tensorType(op.fwd.rank)) }
func (op *projectGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *projectGradOp) Do(in ...G.Value) (G.Value, error) {
	g, err := scalar32(op.name, 0, in[0])
	if err != nil {
		return nil, err
	}
	out := op.out.get(op.shape...)
	for i, r := range op.fwd.r {
		out.Data().([]float32)[i] = g * r
	}
	return out, nil
}

// gradCase describes one finite-difference check: inputs are created with
// the given values, build applies the op under test, and the gradient with
// respect to inputs[wrt...] is compared with central differences.
type gradCase struct {
	name   string
	inputs []*tensor.Dense
	wrt    []int
	build  func(in []*G.Node) (*G.Node, error)
	// atol is the absolute tolerance; 0 means 2e-3.
	atol float64
	// directional switches from per-element differences to directional
	// derivatives along this many random unit directions, plus the
	// direction of the symbolic gradient itself (see checkDirectional).
	directional int
}

// checkGradients compares the symbolic gradient of a random projection of
// the op's output against central differences of the same function.
//
// Tolerance: the cost is evaluated in float32 (relative precision 6e-8) and
// the step is h = 1e-2, so rounding contributes about 1e-5·|cost|/h to each
// difference, and the truncation error is O(h²) times the third derivative.
// Each element must satisfy |fd − an| <= atol + 2e-2·|an|. Kinks (ReLU, max)
// are avoided by the inputs' construction in each test.
func checkGradients(t *testing.T, seed uint64, c gradCase) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	g := G.NewGraph()
	nodes := make([]*G.Node, len(c.inputs))
	for i, v := range c.inputs {
		nodes[i] = G.NewTensor(g, G.Float32, v.Dims(), G.WithShape(v.Shape()...), G.WithValue(v), G.WithName(string(rune('a'+i))))
	}
	out, err := c.build(nodes)
	if err != nil {
		t.Fatalf("%s: build: %v", c.name, err)
	}
	cost, err := scalarCost(rng, out)
	if err != nil {
		t.Fatalf("%s: cost: %v", c.name, err)
	}
	wrt := make(G.Nodes, len(c.wrt))
	for i, w := range c.wrt {
		wrt[i] = nodes[w]
	}
	grads, err := G.Grad(cost, wrt...)
	if err != nil {
		t.Fatalf("%s: Grad: %v", c.name, err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	eval := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatalf("%s: run: %v", c.name, err)
		}
		s, err := scalar32("cost", 0, cost.Value())
		if err != nil {
			t.Fatal(err)
		}
		return float64(s)
	}
	eval()
	analytic := make([][]float32, len(grads))
	for i, gn := range grads {
		analytic[i] = append([]float32(nil), gn.Value().Data().([]float32)...)
	}
	if c.directional > 0 {
		checkDirectional(t, rng, c, eval, analytic)
		return
	}
	const h = 1e-2
	atol := c.atol
	if atol == 0 {
		atol = 2e-3
	}
	for i, w := range c.wrt {
		data := c.inputs[w].Data().([]float32)
		// Check every element of small inputs, an even sample of large ones.
		step := 1 + len(data)/300
		for j := 0; j < len(data); j += step {
			orig := data[j]
			data[j] = orig + h
			fp := eval()
			data[j] = orig - h
			fm := eval()
			data[j] = orig
			fd := (fp - fm) / (2 * h)
			an := float64(analytic[i][j])
			if math.Abs(fd-an) > atol+2e-2*math.Abs(an) {
				t.Errorf("%s: d/d input %d [%d]: symbolic %.6g, finite difference %.6g", c.name, w, j, an, fd)
			}
		}
	}
}

// checkDirectional compares directional derivatives: for unit directions v,
// (f(x+hv) − f(x−hv))/2h against ⟨g, v⟩. A whole network of ReLUs and
// max-pools is piecewise smooth, and a one-element step meets a kink often
// enough to spoil per-element differences; a step spread over all elements
// moves each pre-activation by ~1e-5, so few units cross a kink and each
// contributes little. Tolerance: |fd − ⟨g,v⟩| <= 1e-3·‖g‖ + 2e-2·|⟨g,v⟩|,
// where a random v gives |⟨g,v⟩| ≈ ‖g‖/sqrt(n), so 1e-3·‖g‖ is a few per cent
// of it for inputs of a few thousand elements; along v = g/‖g‖, ⟨g,v⟩ = ‖g‖.
func checkDirectional(t *testing.T, rng *rand.Rand, c gradCase, eval func() float64, analytic [][]float32) {
	t.Helper()
	const h = 1e-2
	for i, w := range c.wrt {
		data := c.inputs[w].Data().([]float32)
		g := analytic[i]
		gnorm := sampleNorm(g)
		if gnorm == 0 {
			t.Fatalf("%s: gradient with respect to input %d is zero", c.name, w)
		}
		orig := append([]float32(nil), data...)
		for k := 0; k <= c.directional; k++ {
			v := make([]float64, len(data))
			if k == c.directional {
				for j := range v {
					v[j] = float64(g[j]) / gnorm
				}
			} else {
				var n float64
				for j := range v {
					v[j] = rng.NormFloat64()
					n += v[j] * v[j]
				}
				for j := range v {
					v[j] /= math.Sqrt(n)
				}
			}
			var an float64
			for j := range v {
				an += float64(g[j]) * v[j]
			}
			for j := range data {
				data[j] = orig[j] + float32(h*v[j])
			}
			fp := eval()
			for j := range data {
				data[j] = orig[j] - float32(h*v[j])
			}
			fm := eval()
			copy(data, orig)
			fd := (fp - fm) / (2 * h)
			if math.Abs(fd-an) > 1e-3*gnorm+2e-2*math.Abs(an) {
				t.Errorf("%s: input %d, direction %d: symbolic %.6g, finite difference %.6g (‖g‖ = %.3g)", c.name, w, k, an, fd, gnorm)
			}
		}
	}
}
