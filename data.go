package vat

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/org/vat/internal/rng"
)

// Dataset is a set of samples: grayscale images (LoadMNIST, LoadIDX),
// samples of any shape (NewDataset), or, without labels, the unlabeled
// pool of semi-supervised training (NewUnlabeled, Split.Unlabeled).
type Dataset struct {
	// Images holds Len() samples one after the other: images of Rows×Cols
	// pixels, row-major, scaled to [0, 1], or samples of Shape.
	Images []float32
	// Labels holds one class per sample, in [0, classes); nil for an
	// unlabeled dataset. Predict returns classes in the same type.
	Labels []int
	// Rows and Cols are the image size (for a Shape of C×H×W: H and W).
	Rows, Cols int
	// Shape is one sample's shape (C×H×W, or a flat length); nil means
	// 1×Rows×Cols.
	Shape []int
	// ClassNames, when set, names the classes by index (a loader that
	// reads names, such as LoadCSV, sets them).
	ClassNames []string
	// FeatureNames, when set, names a flat sample's features (LoadCSV's
	// header).
	FeatureNames []string
	// Preprocessing, when set, is how the samples were made from images
	// (LoadImageFolder): give it to Model.SetPreprocessing so that the
	// model classifies new images the same way.
	Preprocessing *Preprocessing
}

// NewDataset returns the dataset of len(labels) samples of the given shape
// (C×H×W, or a flat feature vector's length), stored one after the other
// in x (len(labels)·size values), with labels in [0, classes). The slices
// are used, not copied. Every inconsistency is an error that says what is
// wrong; so is a NaN or infinite value, which names its sample.
func NewDataset(x []float32, shape []int, labels []int, classes int) (*Dataset, error) {
	if classes < 1 || classes > 1<<16 {
		return nil, fmt.Errorf("vat: NewDataset: %d classes: want 1 to 65536", classes)
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("vat: NewDataset: no samples")
	}
	d, err := newDataset("NewDataset", x, shape, len(labels))
	if err != nil {
		return nil, err
	}
	for i, l := range labels {
		if l < 0 || l >= classes {
			return nil, fmt.Errorf("vat: NewDataset: label %d of sample %d outside 0-%d", l, i, classes-1)
		}
	}
	d.Labels = labels
	return d, nil
}

// NewUnlabeled returns a dataset of unlabeled samples of the given shape,
// stored one after the other in x (a whole number of samples): the pool
// semi-supervised training learns from. The slice is used, not copied. A
// NaN or infinite value is an error that names its sample.
func NewUnlabeled(x []float32, shape []int) (*Dataset, error) {
	n := 0
	if s := size(shape); s > 0 && len(x)%s == 0 {
		n = len(x) / s
	}
	if n == 0 && len(x) == 0 {
		return nil, fmt.Errorf("vat: NewUnlabeled: no samples")
	}
	return newDataset("NewUnlabeled", x, shape, n)
}

// newDataset checks shape and x (n samples, finite) for the constructor
// named by fn.
func newDataset(fn string, x []float32, shape []int, n int) (*Dataset, error) {
	if len(shape) != 1 && len(shape) != 3 {
		return nil, fmt.Errorf("vat: %s: shape %v: want C×H×W or a flat length", fn, shape)
	}
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("vat: %s: shape %v: want positive sizes", fn, shape)
		}
	}
	px := size(shape)
	if n <= 0 || len(x) != n*px {
		return nil, fmt.Errorf("vat: %s: %d values for samples of %v (%d each): want a whole number of samples (%d for %d)", fn, len(x), shape, px, n*px, n)
	}
	if i := nonFinite(x); i >= 0 {
		return nil, fmt.Errorf("vat: %s: sample %d has the value %v at position %d: want finite numbers", fn, i/px, x[i], i%px)
	}
	d := &Dataset{Images: x, Shape: append([]int(nil), shape...)}
	if len(shape) == 3 {
		d.Rows, d.Cols = shape[1], shape[2]
	} else {
		d.Rows, d.Cols = 1, shape[0]
	}
	return d, nil
}

// nonFinite returns the index of the first NaN or infinite value, or -1.
func nonFinite(x []float32) int {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i
		}
	}
	return -1
}

// shape returns one sample's shape.
func (d *Dataset) shape() []int {
	if d.Shape != nil {
		return d.Shape
	}
	return []int{1, d.Rows, d.Cols}
}

// Len returns the number of samples (0 for a nil dataset).
func (d *Dataset) Len() int {
	if d == nil {
		return 0
	}
	if px := size(d.shape()); px > 0 {
		return len(d.Images) / px
	}
	return 0
}

// Labeled reports whether the dataset has labels.
func (d *Dataset) Labeled() bool { return d != nil && d.Labels != nil }

// Head returns a view of the first n samples (all of them if n <= 0 or
// n >= Len()). The head of a nil dataset is nil; the methods that use a
// dataset (Trainer.Fit, Trainer.TrainEpoch, Model.Evaluate) report a nil or
// empty one as an error.
func (d *Dataset) Head(n int) *Dataset {
	if d == nil || n <= 0 || n >= d.Len() {
		return d
	}
	h := *d
	h.Images = d.Images[:n*size(d.shape())]
	if d.Labels != nil {
		h.Labels = d.Labels[:min(n, len(d.Labels))]
	}
	return &h
}

// Subset returns a dataset of copies of d's samples idx (in that order,
// repeats allowed), with their labels when d has them.
func (d *Dataset) Subset(idx []int) (*Dataset, error) {
	n := d.Len()
	for k, i := range idx {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("vat: Dataset.Subset: index %d (position %d) outside 0-%d", i, k, n-1)
		}
	}
	return d.subset(idx), nil
}

// subset is Subset for indices known to be in range.
func (d *Dataset) subset(idx []int) *Dataset {
	px := size(d.shape())
	out := *d
	out.Images = make([]float32, 0, len(idx)*px)
	out.Labels = nil
	if d.Labels != nil {
		out.Labels = make([]int, 0, len(idx))
	}
	for _, i := range idx {
		out.Images = append(out.Images, d.Images[i*px:(i+1)*px]...)
		if d.Labels != nil {
			out.Labels = append(out.Labels, d.Labels[i])
		}
	}
	return &out
}

// Shuffle returns a copy of d with its samples in a random order drawn
// from seed.
func (d *Dataset) Shuffle(seed uint64) *Dataset {
	perm := rng.New(seed, rng.Shuffle, 1).Perm(d.Len())
	return d.subset(perm)
}

// Unlabeled returns a view of d without its labels: the same samples, as
// semi-supervised training's unlabeled pool.
func (d *Dataset) Unlabeled() *Dataset {
	if d == nil {
		return nil
	}
	u := *d
	u.Labels = nil
	return &u
}

// Concat returns the samples of ds one after the other, copied. They must
// have one sample shape, and all labels or none.
func Concat(ds ...*Dataset) (*Dataset, error) {
	if len(ds) == 0 || ds[0] == nil {
		return nil, fmt.Errorf("vat: Concat: no datasets")
	}
	first := ds[0]
	out := *first
	out.Images, out.Labels = nil, nil
	if first.Labeled() {
		out.Labels = []int{}
	}
	for k, d := range ds {
		switch {
		case d == nil:
			return nil, fmt.Errorf("vat: Concat: dataset %d is nil", k+1)
		case !slices.Equal(d.shape(), first.shape()):
			return nil, fmt.Errorf("vat: Concat: dataset %d has samples of %v, dataset 1 of %v", k+1, d.shape(), first.shape())
		case d.Labeled() != first.Labeled():
			return nil, fmt.Errorf("vat: Concat: dataset %d is labeled=%t, dataset 1 labeled=%t: want all labeled or none", k+1, d.Labeled(), first.Labeled())
		case d.Labeled() && len(d.Labels) != d.Len():
			return nil, fmt.Errorf("vat: Concat: dataset %d has %d labels for %d samples", k+1, len(d.Labels), d.Len())
		}
		out.Images = append(out.Images, d.Images...)
		out.Labels = append(out.Labels, d.Labels...)
	}
	return &out, nil
}

// errNoValidation is SplitByClass's error when every class has a single
// sample.
var errNoValidation = errors.New("no validation samples")

// SplitByClass splits a labeled dataset into a training and a validation
// set, putting frac of each class's samples (rounded, at least one of
// each class with two or more) in the validation set, chosen at random
// from seed; both keep the samples' order. frac is in (0, 1).
func (d *Dataset) SplitByClass(frac float64, seed uint64) (train, val *Dataset, err error) {
	switch {
	case !d.Labeled():
		return nil, nil, fmt.Errorf("vat: Dataset.SplitByClass: the dataset has no labels")
	case !(frac > 0 && frac < 1):
		return nil, nil, fmt.Errorf("vat: Dataset.SplitByClass: frac = %v: want a fraction in (0, 1)", frac)
	case len(d.Labels) != d.Len():
		return nil, nil, fmt.Errorf("vat: Dataset.SplitByClass: %d labels for %d samples", len(d.Labels), d.Len())
	}
	byClass := map[int][]int{}
	var classes []int
	for i, l := range d.Labels {
		if _, ok := byClass[l]; !ok {
			classes = append(classes, l)
		}
		byClass[l] = append(byClass[l], i)
	}
	slices.Sort(classes)
	r := rng.New(seed, rng.Split, 1)
	inVal := make([]bool, d.Len())
	for _, c := range classes {
		idx := byClass[c]
		k := int(math.Round(frac * float64(len(idx))))
		if k == 0 && len(idx) >= 2 {
			k = 1
		}
		k = min(k, len(idx)-1) // keep one for training
		r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for _, i := range idx[:max(k, 0)] {
			inVal[i] = true
		}
	}
	var ti, vi []int
	for i, v := range inVal {
		if v {
			vi = append(vi, i)
		} else {
			ti = append(ti, i)
		}
	}
	if len(vi) == 0 {
		return nil, nil, fmt.Errorf("vat: Dataset.SplitByClass: frac = %v leaves %w of %d", frac, errNoValidation, d.Len())
	}
	return d.subset(ti), d.subset(vi), nil
}

// validate checks that the dataset fits model m: labeled samples of m's
// input shape (or of its size, for a flat input) and labels below m's
// classes.
func (d *Dataset) validate(what string, m *Model) error {
	if err := d.validateSamples(what, m); err != nil {
		return err
	}
	if !d.Labeled() {
		return fmt.Errorf("vat: %s dataset has no labels", what)
	}
	if len(d.Labels) != d.Len() {
		return fmt.Errorf("vat: %s dataset has %d labels for %d samples", what, len(d.Labels), d.Len())
	}
	for i, l := range d.Labels {
		if l < 0 || l >= m.classes {
			return fmt.Errorf("vat: %s dataset: label %d of sample %d outside 0-%d", what, l, i, m.classes-1)
		}
	}
	return nil
}

// validateSamples checks the samples alone (an unlabeled set).
func (d *Dataset) validateSamples(what string, m *Model) error {
	if d == nil {
		return fmt.Errorf("vat: %s dataset is nil", what)
	}
	ds, px := d.shape(), size(m.inShape)
	switch {
	case size(ds) != px || (len(m.inShape) == 3 && len(ds) == 3 && !slices.Equal(ds, m.inShape)):
		return fmt.Errorf("vat: %s dataset has samples of %v, the model takes %v", what, ds, m.inShape)
	case d.Len() == 0:
		return fmt.Errorf("vat: %s dataset is empty", what)
	case len(d.Images) != d.Len()*px:
		return fmt.Errorf("vat: %s dataset has %d values, not a whole number of samples of %v", what, len(d.Images), ds)
	}
	return nil
}
