package vat

import (
	"fmt"
	"math"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/ops"
)

// Evaluation is the result of Model.Evaluate.
type Evaluation struct {
	Accuracy float64 // fraction classified right
	Loss     float64 // mean cross-entropy
}

// evalBatch is the inference batch: small enough that a batch's largest
// activation (the preset's second convolution, 128 × 73 kB) stays in a
// shared L3 cache between the convolution and the pooling that reads it.
// Each sample's result does not depend on it.
const evalBatch = 128

// Evaluate returns the accuracy and mean cross-entropy of the model on d.
func (m *Model) Evaluate(d *Dataset) (Evaluation, error) {
	if err := d.validate("evaluation", m); err != nil {
		return Evaluation{}, err
	}
	var ev Evaluation
	k := m.classes
	lp := make([]float64, k)
	err := m.logits(d.Images, d.Len(), func(first int, logits []float32) {
		for i := 0; i < len(logits)/k; i++ {
			row := logits[i*k : (i+1)*k]
			label := d.Labels[first+i]
			ops.LogSoftmax(lp, row)
			ev.Loss -= lp[label]
			if argmax(row) == label {
				ev.Accuracy++
			}
		}
	})
	if err != nil {
		return Evaluation{}, err
	}
	ev.Loss /= float64(d.Len())
	ev.Accuracy /= float64(d.Len())
	return ev, nil
}

// Predict returns the most likely class of each sample. images holds whole
// samples of the model's input shape (for the preset, 28×28 images,
// row-major, pixels in [0, 1]).
func (m *Model) Predict(images []float32) ([]int, error) {
	n, err := m.sampleCount(images)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, n)
	err = m.logits(images, n, func(_ int, logits []float32) {
		for i := 0; i < len(logits)/m.classes; i++ {
			out = append(out, argmax(logits[i*m.classes:(i+1)*m.classes]))
		}
	})
	return out, err
}

// Probabilities returns the softmax class probabilities of each sample,
// one per class (Classes() of them).
func (m *Model) Probabilities(images []float32) ([]float32, error) {
	n, err := m.sampleCount(images)
	if err != nil {
		return nil, err
	}
	k := m.classes
	out := make([]float32, 0, n*k)
	lp := make([]float64, k)
	err = m.logits(images, n, func(_ int, logits []float32) {
		for i := 0; i < len(logits)/k; i++ {
			ops.LogSoftmax(lp, logits[i*k:(i+1)*k])
			for _, l := range lp {
				out = append(out, float32(math.Exp(l)))
			}
		}
	})
	return out, err
}

// Classes returns the number of classes: the last Dense layer's units.
func (m *Model) Classes() int { return m.classes }

// InputShape returns the shape of one sample, e.g. [1 28 28].
func (m *Model) InputShape() []int { return append([]int(nil), m.inShape...) }

// sampleCount returns how many samples of the model's input shape images
// holds.
func (m *Model) sampleCount(images []float32) (int, error) {
	px := size(m.inShape)
	if len(images) == 0 || len(images)%px != 0 {
		return 0, fmt.Errorf("vat: %d values is not a whole number of samples of %v", len(images), m.inShape)
	}
	return len(images) / px, nil
}

// logits runs the inference graph over n images in batches, passing each
// batch's logits (and the index of its first image) to fn.
func (m *Model) logits(images []float32, n int, fn func(first int, logits []float32)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	px := size(m.inShape)
	for first := 0; first < n; first += evalBatch {
		b := min(evalBatch, n-first)
		eg, ok := m.evals[b]
		if !ok {
			var err error
			if eg, err = newEvalGraph(m, b); err != nil {
				return err
			}
			m.evals[b] = eg
		}
		x := eg.x.Data().([]float32)
		copy(x, images[first*px:(first+b)*px])
		backend.MarkHostWritten(x)
		logits, err := eg.run()
		if err != nil {
			return err
		}
		fn(first, logits)
	}
	return nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
