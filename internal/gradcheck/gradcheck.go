// Package gradcheck checks the symbolic gradients of Gorgonia graphs
// against finite differences, for the tests of github.com/org/vat's ops,
// losses and VAT term. It depends on Gorgonia only, so that the ops'
// own tests can use it.
package gradcheck

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/chewxy/hm"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// RandTensor returns a float32 tensor of the given shape with entries drawn
// uniformly from [lo, hi).
func RandTensor(rng *rand.Rand, lo, hi float64, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	for i := range t.Data().([]float32) {
		t.Data().([]float32)[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return t
}

// ScalarCost reduces a node to a scalar that depends on every element with
// its own random weight, Σ out ⊙ R, so that a gradient check sees every
// output position. Scalars pass through.
func ScalarCost(rng *rand.Rand, out *G.Node) (*G.Node, error) {
	if out.IsScalar() {
		return out, nil
	}
	return Project(out, RandTensor(rng, -1, 1, out.Shape()...))
}

// Project returns Σ x ⊙ r for a fixed tensor r. The tests use it instead of
// Gorgonia's HadamardProd and Sum, so that their graphs, like the package's,
// hold only the package's ops (also in the cuda build).
func Project(x *G.Node, r *tensor.Dense) (*G.Node, error) {
	return G.ApplyOp(&projectOp{r: r.Data().([]float32), rank: x.Dims()}, x)
}

// projectOp is Σ x ⊙ r; its gradient is g·r.
type projectOp struct {
	r    []float32
	rank int
}

func (op *projectOp) ReturnsPtr() bool      { return false }
func (op *projectOp) CallsExtern() bool     { return false }
func (op *projectOp) OverwritesInput() int  { return -1 }
func (op *projectOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "gradcheck.Project#%p", op) }
func (op *projectOp) Hashcode() uint32      { return hashOf(op) }
func (op *projectOp) String() string        { return "Project" }
func (op *projectOp) Arity() int            { return 1 }
func (op *projectOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(&G.TensorType{Dims: op.rank, Of: a}, a)
}
func (op *projectOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (op *projectOp) Do(in ...G.Value) (G.Value, error) {
	x, err := floats(in[0])
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
	g, err := G.ApplyOp(&projectGradOp{fwd: op, shape: in[0].Shape()}, grad)
	return G.Nodes{g}, err
}

type projectGradOp struct {
	fwd   *projectOp
	shape tensor.Shape
}

func (op *projectGradOp) ReturnsPtr() bool      { return false }
func (op *projectGradOp) CallsExtern() bool     { return false }
func (op *projectGradOp) OverwritesInput() int  { return -1 }
func (op *projectGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "gradcheck.ProjectGrad#%p", op) }
func (op *projectGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *projectGradOp) String() string        { return "ProjectGrad" }
func (op *projectGradOp) Arity() int            { return 1 }
func (op *projectGradOp) DiffWRT(n int) []bool  { return make([]bool, n) }
func (op *projectGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("gradcheck: no second-order gradient")
}
func (op *projectGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, &G.TensorType{Dims: op.fwd.rank, Of: a})
}
func (op *projectGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *projectGradOp) Do(in ...G.Value) (G.Value, error) {
	g, err := Scalar(in[0])
	if err != nil {
		return nil, err
	}
	out := tensor.New(tensor.WithShape(op.shape...), tensor.Of(tensor.Float32))
	for i, r := range op.fwd.r {
		out.Data().([]float32)[i] = g * r
	}
	return out, nil
}

// Case describes one finite-difference check: inputs are created with
// the given values, build applies the op under test, and the gradient with
// respect to inputs[wrt...] is compared with central differences.
type Case struct {
	Name   string
	Inputs []*tensor.Dense
	Wrt    []int
	Build  func(in []*G.Node) (*G.Node, error)
	// Atol is the absolute tolerance; 0 means 2e-3.
	Atol float64
	// Directional switches from per-element differences to directional
	// derivatives along this many random unit directions, plus the
	// direction of the symbolic gradient itself (see checkDirectional).
	Directional int
}

// Check compares the symbolic gradient of a random projection of
// the op's output against central differences of the same function.
//
// Tolerance: the cost is evaluated in float32 (relative precision 6e-8) and
// the step is h = 1e-2, so rounding contributes about 1e-5·|cost|/h to each
// difference, and the truncation error is O(h²) times the third derivative.
// Each element must satisfy |fd − an| <= atol + 2e-2·|an|. Kinks (ReLU, max)
// are avoided by the inputs' construction in each test.
func Check(t testing.TB, seed uint64, c Case) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	g := G.NewGraph()
	nodes := make([]*G.Node, len(c.Inputs))
	for i, v := range c.Inputs {
		nodes[i] = G.NewTensor(g, G.Float32, v.Dims(), G.WithShape(v.Shape()...), G.WithValue(v), G.WithName(string(rune('a'+i))))
	}
	out, err := c.Build(nodes)
	if err != nil {
		t.Fatalf("%s: build: %v", c.Name, err)
	}
	cost, err := ScalarCost(rng, out)
	if err != nil {
		t.Fatalf("%s: cost: %v", c.Name, err)
	}
	wrt := make(G.Nodes, len(c.Wrt))
	for i, w := range c.Wrt {
		wrt[i] = nodes[w]
	}
	grads, err := G.Grad(cost, wrt...)
	if err != nil {
		t.Fatalf("%s: Grad: %v", c.Name, err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	eval := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatalf("%s: run: %v", c.Name, err)
		}
		s, err := Scalar(cost.Value())
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
	if c.Directional > 0 {
		checkDirectional(t, rng, c, eval, analytic)
		return
	}
	const h = 1e-2
	atol := c.Atol
	if atol == 0 {
		atol = 2e-3
	}
	for i, w := range c.Wrt {
		data := c.Inputs[w].Data().([]float32)
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
				t.Errorf("%s: d/d input %d [%d]: symbolic %.6g, finite difference %.6g", c.Name, w, j, an, fd)
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
func checkDirectional(t testing.TB, rng *rand.Rand, c Case, eval func() float64, analytic [][]float32) {
	t.Helper()
	const h = 1e-2
	for i, w := range c.Wrt {
		data := c.Inputs[w].Data().([]float32)
		g := analytic[i]
		gnorm := Norm(g)
		if gnorm == 0 {
			t.Fatalf("%s: gradient with respect to input %d is zero", c.Name, w)
		}
		orig := append([]float32(nil), data...)
		for k := 0; k <= c.Directional; k++ {
			v := make([]float64, len(data))
			if k == c.Directional {
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
				t.Errorf("%s: input %d, direction %d: symbolic %.6g, finite difference %.6g (‖g‖ = %.3g)", c.Name, w, k, an, fd, gnorm)
			}
		}
	}
}

// hashOf hashes an op by its address: two ops never merge in a graph.
func hashOf(op any) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%p", op)
	return h.Sum32()
}

// floats returns the data of a float32 tensor value.
func floats(v G.Value) ([]float32, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, fmt.Errorf("gradcheck: %T is not a tensor", v)
	}
	d, ok := t.Data().([]float32)
	if !ok {
		return nil, fmt.Errorf("gradcheck: tensor of %v, want float32", t.Dtype())
	}
	return d, nil
}

// Scalar reads a float32 scalar value (a *G.F32 or a one-element tensor).
func Scalar(v G.Value) (float32, error) {
	switch s := v.(type) {
	case *G.F32:
		return float32(*s), nil
	case tensor.Tensor:
		if d, ok := s.Data().([]float32); ok && len(d) == 1 {
			return d[0], nil
		}
		if d, ok := s.Data().(float32); ok {
			return d, nil
		}
	}
	return 0, fmt.Errorf("gradcheck: %T is not a float32 scalar", v)
}

// Norm is the L2 norm of x, in float64.
func Norm(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}
