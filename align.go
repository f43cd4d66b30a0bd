package vat

import (
	"fmt"
	"math"
	"slices"

	"github.com/org/vat/internal/ops"
)

// alignWindow is the number of steps over which distribution alignment's
// running mean prediction p̄ averages (ReMixMatch's 128 batches), as an
// exponential average with rate 1/alignWindow.
const alignWindow = 128

// minAlignMean bounds p̄ from below in the shift log π − log p̄, so that a
// class the model no longer predicts at all gets a large finite weight.
const minAlignMean = 1e-6

// alignment is the state of SemiSupervisedConfig.Align: the prior π (the
// labeled class frequencies) and the running mean p̄ of the unlabeled
// batches' clean predictions, which starts at π. Before each step it sets
// the aligned divergence's shift; after the step the batch's mean
// prediction moves it:
//
//	s_j = log π_j − log max(p̄_j, 1e-6)
//	p̄ ← p̄ + (batch mean − p̄) / 128
type alignment struct {
	prior, mean []float64
	shift       []float64 // scratch for s
}

func newAlignment(prior []float64) *alignment {
	return &alignment{prior: prior, mean: slices.Clone(prior), shift: make([]float64, len(prior))}
}

// before sets op's shift to log π − log p̄ for the next step.
func (a *alignment) before(op *ops.AlignedKL) {
	for j, p := range a.prior {
		a.shift[j] = math.Log(p) - math.Log(max(a.mean[j], minAlignMean))
	}
	op.SetShift(a.shift)
}

// after moves p̄ towards the mean prediction of the batch op saw.
func (a *alignment) after(op *ops.AlignedKL) {
	for j, b := range op.BatchMean() {
		a.mean[j] += (b - a.mean[j]) / alignWindow
	}
}

// restore sets p̄ from a checkpoint, which must hold one probability per
// class.
func (a *alignment) restore(mean []float64) error {
	if len(mean) != len(a.prior) {
		return fmt.Errorf("align_mean has %d classes, want %d", len(mean), len(a.prior))
	}
	for j, m := range mean {
		if !(m >= 0 && m <= 1) {
			return fmt.Errorf("align_mean[%d] = %v: want a probability", j, m)
		}
	}
	copy(a.mean, mean)
	return nil
}
