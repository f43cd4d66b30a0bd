package vat

import (
	"fmt"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// Gradients is what one training step computes before the optimizer moves
// the weights (see Model.Gradients).
type Gradients struct {
	// Loss is CE + α·LDS (CE alone without VAT); CE and LDS are its parts,
	// LDS before α (0 without VAT).
	Loss, CE, LDS float64
	// RAdv is VAT's adversarial perturbation, shaped like the images (nil
	// without VAT).
	RAdv []float32
	// Params holds ∂Loss/∂param for every parameter, in Model.Params order
	// and with its name and shape; Value is the gradient (a copy).
	Params []Param
}

// Gradients computes, for the model's current weights, a batch of images
// (whole 28×28 images, row-major, pixels in [0, 1]) with their labels and
// VAT's random direction noise (shaped like the images; ignored when vat
// is nil), what a training step computes: the loss, its parts, r_adv and
// every weight gradient. It updates nothing: no weight, no optimizer state,
// no random stream, no running average of batch normalization (which
// normalizes with the batch's statistics, as in training). Dropout is not
// applied (a model with dropout computes as one without), so the result depends on the arguments alone, and
// another implementation given the same weights, batch and noise can be
// checked against it.
func (m *Model) Gradients(images []float32, labels []int, noise []float32, vat *VATConfig) (*Gradients, error) {
	n, err := m.sampleCount(images)
	if err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, fmt.Errorf("vat: Gradients: %d labels for %d images", len(labels), n)
	}
	for i, l := range labels {
		if l < 0 || l >= m.classes {
			return nil, fmt.Errorf("vat: Gradients: label %d of image %d outside 0-%d", l, i, m.classes-1)
		}
	}
	if vat != nil {
		c, err := vat.withDefaults()
		if err != nil {
			return nil, err
		}
		vat = &c
		if len(noise) != len(images) {
			return nil, fmt.Errorf("vat: Gradients: noise has %d values, want %d (one per pixel)", len(noise), len(images))
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := gradKey{n: n}
	if vat != nil {
		key.vat, key.cfg = true, *vat
	}
	tg, ok := m.grads[key]
	if !ok {
		if tg, err = buildTrainGraph(m, n, vat, 0, false, false); err != nil {
			return nil, err
		}
		m.grads[key] = tg
	}
	x, y := tg.xl.Data().([]float32), tg.yl.Data().([]float32)
	copy(x, images)
	kernels.Zero(y)
	for i, l := range labels {
		y[i*m.classes+l] = 1
	}
	backend.MarkHostWritten(x, y)
	for _, n := range tg.noise {
		d := n.Data().([]float32)
		copy(d, noise)
		backend.MarkHostWritten(d)
	}
	g := &Gradients{}
	if g.Loss, g.CE, g.LDS, _, err = tg.run(); err != nil {
		return nil, err
	}
	if vat != nil {
		r, err := tg.adversarial()
		if err != nil {
			return nil, err
		}
		g.RAdv = append([]float32(nil), r.Data().([]float32)...)
	}
	for i, p := range m.params {
		gi, err := tg.grad(i)
		if err != nil {
			return nil, err
		}
		g.Params = append(g.Params, Param{Name: p.Name,
			Value: tensor.New(tensor.WithShape(p.Value.Shape()...), tensor.WithBacking(append([]float32(nil), gi.Data().([]float32)...)))})
	}
	return g, nil
}

// gradKey identifies a graph of Gradients: batch size and VAT settings.
type gradKey struct {
	n   int
	vat bool
	cfg VATConfig
}
