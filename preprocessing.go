package vat

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
)

// Preprocessing is how a model's inputs are made from images, as
// LoadImageFolder made them: channels, size and pixel scaling, and the
// class names. Save writes it into the weights file, so that a model that
// LoadModel rebuilds classifies new images (ClassifyImages) exactly as the
// training images were prepared.
type Preprocessing struct {
	RGB           bool
	Width, Height int
	Scale, Offset float64 // x = (v + Offset)·Scale of each 8-bit value
	ClassNames    []string
}

// preprocessingJSON is Preprocessing as the header stores it.
type preprocessingJSON struct {
	RGB        bool     `json:"rgb"`
	Width      int      `json:"width"`
	Height     int      `json:"height"`
	Scale      float64  `json:"scale"`
	Offset     float64  `json:"offset"`
	ClassNames []string `json:"class_names,omitempty"`
}

func (p Preprocessing) toJSON() preprocessingJSON {
	return preprocessingJSON{RGB: p.RGB, Width: p.Width, Height: p.Height, Scale: p.Scale, Offset: p.Offset, ClassNames: p.ClassNames}
}

func (j preprocessingJSON) preprocessing() Preprocessing {
	return Preprocessing{RGB: j.RGB, Width: j.Width, Height: j.Height, Scale: j.Scale, Offset: j.Offset, ClassNames: j.ClassNames}
}

// check validates p for model m: its channels and size make m's input,
// and its class names (if any) are one per class.
func (p Preprocessing) check(m *Model) error {
	ch := 1
	if p.RGB {
		ch = 3
	}
	in := m.inShape
	switch {
	case len(in) != 3 || in[0] != ch || in[1] != p.Height || in[2] != p.Width:
		return fmt.Errorf("preprocessing makes %d×%d×%d inputs, the model takes %v", ch, p.Height, p.Width, in)
	case p.Scale == 0 || math.IsNaN(p.Scale) || math.IsInf(p.Scale, 0) || math.IsNaN(p.Offset) || math.IsInf(p.Offset, 0):
		return fmt.Errorf("preprocessing scale %v, offset %v: want finite numbers, the scale not 0", p.Scale, p.Offset)
	case p.ClassNames != nil && len(p.ClassNames) != m.classes:
		return fmt.Errorf("preprocessing names %d classes, the model has %d", len(p.ClassNames), m.classes)
	}
	for i, n := range p.ClassNames {
		if len(n) > 1024 {
			return fmt.Errorf("preprocessing: class name %d is %d bytes long: want at most 1024", i, len(n))
		}
	}
	return nil
}

// SetPreprocessing records how the model's inputs are made from images
// (a LoadImageFolder dataset's Preprocessing), for ClassifyImages and for
// Save. It must fit the model's input shape and classes.
func (m *Model) SetPreprocessing(p Preprocessing) error {
	if err := p.check(m); err != nil {
		return fmt.Errorf("vat: SetPreprocessing: %w", err)
	}
	p.ClassNames = append([]string(nil), p.ClassNames...)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prep = &p
	return nil
}

// Preprocessing returns the model's image preprocessing, or nil when it
// has none.
func (m *Model) Preprocessing() *Preprocessing {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.prep == nil {
		return nil
	}
	p := *m.prep
	p.ClassNames = append([]string(nil), p.ClassNames...)
	return &p
}

// Prediction is a model's answer for one sample: the most likely class,
// its name when the model knows the class names, and every class's
// probability.
type Prediction struct {
	Class         int
	Name          string
	Probabilities []float32
}

// Classify predicts each sample of samples, each a slice of the model's
// input size (C×H×W values, row-major per channel, or a flat vector).
func (m *Model) Classify(samples [][]float32) ([]Prediction, error) {
	px := size(m.inShape)
	flat := make([]float32, 0, len(samples)*px)
	for i, s := range samples {
		if len(s) != px {
			return nil, fmt.Errorf("vat: Classify: sample %d has %d values, the model takes %v (%d)", i, len(s), m.inShape, px)
		}
		flat = append(flat, s...)
	}
	if len(samples) == 0 {
		return nil, nil
	}
	probs, err := m.Probabilities(flat)
	if err != nil {
		return nil, err
	}
	names := m.classNames()
	k := m.classes
	out := make([]Prediction, len(samples))
	for i := range out {
		p := probs[i*k : (i+1)*k : (i+1)*k]
		c := argmax(p)
		out[i] = Prediction{Class: c, Probabilities: p}
		if names != nil {
			out[i].Name = names[c]
		}
	}
	return out, nil
}

func (m *Model) classNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.prep == nil {
		return nil
	}
	return m.prep.ClassNames
}

// ClassifyImages predicts each image, prepared as the model's
// Preprocessing says (resized to its size if it has another one,
// grayscale or RGB, scaled): the same as LoadImageFolder prepared the
// training images. A model without preprocessing is an error.
func (m *Model) ClassifyImages(imgs []image.Image) ([]Prediction, error) {
	p := m.Preprocessing()
	if p == nil {
		return nil, fmt.Errorf("vat: ClassifyImages: the model has no image preprocessing: call SetPreprocessing (a LoadImageFolder dataset's Preprocessing)")
	}
	ch := 1
	if p.RGB {
		ch = 3
	}
	samples := make([][]float32, len(imgs))
	for i, img := range imgs {
		if img == nil {
			return nil, fmt.Errorf("vat: ClassifyImages: image %d is nil", i)
		}
		if b := img.Bounds(); b.Dx() < 1 || b.Dy() < 1 || b.Dx() > 1<<14 || b.Dy() > 1<<14 {
			return nil, fmt.Errorf("vat: ClassifyImages: image %d is %d×%d: want sides 1 to 16384", i, b.Dx(), b.Dy())
		}
		samples[i] = make([]float32, ch*p.Width*p.Height)
		imageToCHW(samples[i], img, p.Width, p.Height, p.RGB, p.Scale, p.Offset)
	}
	return m.Classify(samples)
}

// preprocessingHeader returns the header entry of p ("" for nil).
func preprocessingHeader(p *Preprocessing) string {
	if p == nil {
		return ""
	}
	b, _ := json.Marshal(p.toJSON())
	return string(b)
}
