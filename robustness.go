package vat

import (
	"encoding/json"
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
	"github.com/org/vat/internal/ops"
	"github.com/org/vat/internal/rng"
)

// Direction is a kind of input perturbation for Model.Robustness.
type Direction int

const (
	// Random is an isotropic Gaussian direction.
	Random Direction = iota
	// VirtualAdversarial is VAT's r_adv: the direction in which the
	// model's prediction changes fastest (the power iteration on the KL
	// divergence that training uses). It needs no labels.
	VirtualAdversarial
	// Adversarial is the fast gradient method with an L2 norm (Goodfellow
	// et al., 2015; Miyato et al., 2016): the gradient of the
	// cross-entropy with respect to the input. It needs the labels.
	Adversarial
)

var directionNames = [...]string{"random", "virtual-adversarial", "adversarial"}

// String returns "random", "virtual-adversarial" or "adversarial".
func (d Direction) String() string {
	if d < 0 || int(d) >= len(directionNames) {
		return fmt.Sprintf("Direction(%d)", int(d))
	}
	return directionNames[d]
}

// MarshalJSON writes the direction's name.
func (d Direction) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// DefaultRobustnessEps are the perturbation norms Robustness measures by
// default. An MNIST digit's L2 norm is about 9.
var DefaultRobustnessEps = []float64{0, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5}

// RobustnessConfig configures Model.Robustness. The zero value measures all
// three directions at DefaultRobustnessEps, with the Keras original's power
// iteration (ξ = 10, one iteration).
type RobustnessConfig struct {
	// Eps are the perturbations' L2 norms, each >= 0; nil means
	// DefaultRobustnessEps.
	Eps []float64
	// Directions to measure; nil means Random, VirtualAdversarial and
	// Adversarial.
	Directions []Direction
	// VAT sets the power iteration of VirtualAdversarial: Xi and Ip (zero
	// values mean VATConfig's defaults; Eps and Alpha are not used).
	VAT VATConfig
	// Seed fixes the random directions and the power iteration's start.
	Seed uint64
}

func (c RobustnessConfig) withDefaults() (RobustnessConfig, error) {
	if c.Eps == nil {
		c.Eps = DefaultRobustnessEps
	}
	if c.Directions == nil {
		c.Directions = []Direction{Random, VirtualAdversarial, Adversarial}
	}
	for _, e := range c.Eps {
		if !(e >= 0) || math.IsInf(e, 0) {
			return c, fmt.Errorf("vat: RobustnessConfig.Eps holds %v: want finite norms >= 0", e)
		}
	}
	for _, d := range c.Directions {
		if d < Random || d > Adversarial {
			return c, fmt.Errorf("vat: RobustnessConfig.Directions holds %v: want Random, VirtualAdversarial or Adversarial", d)
		}
	}
	v, err := c.VAT.withDefaults()
	if err != nil {
		return c, fmt.Errorf("vat: RobustnessConfig.VAT: %w", err)
	}
	v.Eps, v.Alpha = 1, 1 // unit directions
	c.VAT = v
	return c, nil
}

// RobustnessPoint is the model's behaviour on a test set moved by Eps in
// one direction.
type RobustnessPoint struct {
	Direction Direction `json:"direction"`
	Eps       float64   `json:"eps"`
	// Accuracy is the fraction of perturbed images classified right.
	Accuracy float64 `json:"accuracy"`
	// Changed is the fraction whose predicted class differs from the
	// unperturbed image's: how far from smooth the classifier is there,
	// whatever the labels.
	Changed float64 `json:"changed"`
}

// Robustness measures the model's test accuracy when every image x of d is
// replaced by x + ε·u, with u a unit-norm direction of each kind in cfg
// and ε each norm in cfg (pixels are not clipped to [0, 1]). Directions are
// computed in inference mode: no dropout, batch normalization with its
// running averages. It returns one point per direction and norm, in that
// order.
func (m *Model) Robustness(d *Dataset, cfg RobustnessConfig) ([]RobustnessPoint, error) {
	if err := d.validate("robustness", m); err != nil {
		return nil, err
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	n := d.Len()
	labels := d.Labels
	clean, err := m.Predict(d.Images)
	if err != nil {
		return nil, err
	}
	var out []RobustnessPoint
	moved := make([]float32, len(d.Images))
	var adv, vadv []float32 // computed together, once
	for _, dir := range c.Directions {
		var u []float32
		switch {
		case dir == Random:
			u = m.randomDirections(len(d.Images), c.Seed)
		case adv == nil:
			if adv, vadv, err = m.adversarialDirections(d.Images, labels, c); err != nil {
				return nil, err
			}
			fallthrough
		default:
			u = adv
			if dir == VirtualAdversarial {
				u = vadv
			}
		}
		for _, eps := range c.Eps {
			e := float32(eps)
			kernels.ParallelFor(n, func(_, i int) {
				px := len(d.Images) / n
				for j := i * px; j < (i+1)*px; j++ {
					moved[j] = d.Images[j] + e*u[j]
				}
			})
			pred, err := m.Predict(moved)
			if err != nil {
				return nil, err
			}
			p := RobustnessPoint{Direction: dir, Eps: eps}
			for i, k := range pred {
				if k == labels[i] {
					p.Accuracy++
				}
				if k != clean[i] {
					p.Changed++
				}
			}
			p.Accuracy /= float64(n)
			p.Changed /= float64(n)
			out = append(out, p)
		}
	}
	return out, nil
}

// Directions returns, for each sample of images (of the model's input
// shape), a unit-norm perturbation direction of the given kind (see
// Direction), computed as Robustness does. labels are needed for
// Adversarial only (nil otherwise is fine). An all-zero gradient gives an
// all-zero direction.
func (m *Model) Directions(images []float32, labels []int, dir Direction, cfg RobustnessConfig) ([]float32, error) {
	n, err := m.sampleCount(images)
	if err != nil {
		return nil, err
	}
	cfg.Directions = []Direction{dir}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if dir == Adversarial {
		if len(labels) != n {
			return nil, fmt.Errorf("vat: Directions: %d labels for %d samples", len(labels), n)
		}
		for i, l := range labels {
			if l < 0 || l >= m.classes {
				return nil, fmt.Errorf("vat: Directions: label %d of sample %d outside 0-%d", l, i, m.classes-1)
			}
		}
	}
	if dir == Random {
		return m.randomDirections(len(images), c.Seed), nil
	}
	if labels == nil {
		labels = make([]int, n) // not used by VirtualAdversarial
	}
	adv, vadv, err := m.adversarialDirections(images, labels, c)
	if dir == VirtualAdversarial {
		return vadv, err
	}
	return adv, err
}

// randomDirections returns unit Gaussian directions for samples of the
// model's input shape, size values in all.
func (m *Model) randomDirections(total int, seed uint64) []float32 {
	px := size(m.inShape)
	u := make([]float32, total)
	r := rng.NewChunked(rng.SplitMix64(seed ^ rng.SplitMix64(rng.Robust)))
	r.Normals(u)
	kernels.ParallelFor(total/px, func(_, i int) { normalize(u[i*px : (i+1)*px]) })
	return u
}

// adversarialDirections computes both adversarial directions of every
// sample, in batches: the fast gradient method's and VAT's.
func (m *Model) adversarialDirections(images []float32, labels []int, c RobustnessConfig) (adv, vadv []float32, err error) {
	px := size(m.inShape)
	n := len(images) / px
	adv, vadv = make([]float32, len(images)), make([]float32, len(images))
	noise := rng.NewChunked(rng.SplitMix64(c.Seed ^ rng.SplitMix64(rng.Noise)))
	m.mu.Lock()
	defer m.mu.Unlock()
	for first := 0; first < n; first += evalBatch {
		b := min(evalBatch, n-first)
		key := dirKey{n: b, xi: c.VAT.Xi, ip: c.VAT.Ip}
		dg, ok := m.dirs[key]
		if !ok {
			var err error
			if dg, err = newDirGraph(m, b, c.VAT); err != nil {
				return nil, nil, err
			}
			m.dirs[key] = dg
		}
		x, y, d := dg.x.Data().([]float32), dg.y.Data().([]float32), dg.noise.Data().([]float32)
		copy(x, images[first*px:(first+b)*px])
		kernels.Zero(y)
		for i := 0; i < b; i++ {
			y[i*m.classes+labels[first+i]] = 1
		}
		noise.Normals(d)
		backend.MarkHostWritten(x, y, d)
		dg.vm.Reset()
		if err := dg.vm.RunAll(); err != nil {
			return nil, nil, fmt.Errorf("vat: Directions: %w", err)
		}
		a, v := dg.adv.Value().Data().([]float32), dg.vadv.Value().Data().([]float32)
		if err := backend.SyncToHost(a, v); err != nil {
			return nil, nil, err
		}
		copy(adv[first*px:], a)
		copy(vadv[first*px:], v)
	}
	return adv, vadv, nil
}

// normalize scales v to unit L2 norm (an all-zero v stays zero).
func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	k := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= k
	}
}

// dirKey identifies a directions graph: batch size and power iteration.
type dirKey struct {
	n  int
	xi float64
	ip int
}

// dirGraph computes both adversarial directions of a batch in inference
// mode: ∇ₓCE normalized (adv) and VAT's r_adv at unit norm (vadv).
type dirGraph struct {
	vm          G.VM
	x, y, noise *tensor.Dense
	adv, vadv   *G.Node
}

func newDirGraph(m *Model, n int, vc VATConfig) (*dirGraph, error) {
	s := newScope(false, 0) // no dropout; batch normalization with its running averages
	shape := append([]int{n}, m.inShape...)
	dg := &dirGraph{x: tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32)),
		y: tensor.New(tensor.WithShape(n, m.classes), tensor.Of(tensor.Float32))}
	x := G.NewTensor(s.g, G.Float32, len(shape), G.WithShape(shape...), G.WithValue(dg.x), G.WithName("x"))
	y := G.NewMatrix(s.g, G.Float32, G.WithShape(n, m.classes), G.WithValue(dg.y), G.WithName("labels"))
	z := G.NewTensor(s.g, G.Float32, len(shape), G.WithShape(shape...),
		G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))), G.WithName("fgm/probe"))
	inputs := G.Nodes{x, y, z}

	// The fast gradient method: ∇_z CE(f(x + z), y) at z = 0.
	wf := m.weightNodes(s, "@fgm")
	inputs = append(inputs, wf.nodes...)
	ce := s.apply(ops.NewCrossEntropy(), m.forward(s, wf, add(s, x, z)), y)
	dg.adv = l2Normalize(s, gradient(s, ce, z), 1)

	// VAT's direction, as training finds it.
	w := m.weightNodes(s, "")
	inputs = append(inputs, w.nodes...)
	vin, noise, vnodes := bindVATInputs(s, vc.Ip, shape)
	dg.noise = noise
	inputs = append(inputs, vnodes...)
	var trace []layerTrace
	s.trace = &trace
	pConst := stopGradient(s, m.forward(s, w, x))
	s.trace = nil
	dg.vadv = perturbation(s, vc, vin, m.vatPasses(s, w, trace, w), x, pConst) // no adversarial pass here
	inputs = append(inputs, s.consts...)
	if s.err != nil {
		return nil, s.err
	}
	prog, locMap, err := G.CompileFunction(s.g, inputs, G.Nodes{dg.adv, dg.vadv})
	if err != nil {
		return nil, fmt.Errorf("vat: compiling the directions graph: %w", err)
	}
	dg.vm = G.NewTapeMachine(s.g, G.WithPrecompiled(prog, locMap))
	return dg, nil
}
