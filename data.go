package vat

import (
	"fmt"
	"slices"
)

// Dataset is a set of labelled samples: grayscale images (LoadMNIST), or
// samples of any shape made by NewDataset.
type Dataset struct {
	// Images holds Len() samples one after the other: images of Rows×Cols
	// pixels, row-major, scaled to [0, 1], or samples of Shape.
	Images []float32
	// Labels holds one class per sample.
	Labels []uint8
	// Rows and Cols are the image size (for a Shape of C×H×W: H and W).
	Rows, Cols int
	// Shape is one sample's shape (C×H×W, or a flat length); nil means
	// 1×Rows×Cols.
	Shape []int
}

// NewDataset returns the dataset of len(labels) samples of the given shape
// (C×H×W, or a flat feature vector's length), stored one after the other
// in x (len(labels)·size values), with labels in [0, classes). classes is
// at most 256 (labels are stored as bytes). The slices are used, not
// copied. Every inconsistency is an error that says what is wrong.
func NewDataset(x []float32, shape []int, labels []int, classes int) (*Dataset, error) {
	if len(shape) != 1 && len(shape) != 3 {
		return nil, fmt.Errorf("vat: NewDataset: shape %v: want C×H×W or a flat length", shape)
	}
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("vat: NewDataset: shape %v: want positive sizes", shape)
		}
	}
	switch n := size(shape); {
	case classes < 1 || classes > 256:
		return nil, fmt.Errorf("vat: NewDataset: %d classes: want 1 to 256", classes)
	case len(labels) == 0:
		return nil, fmt.Errorf("vat: NewDataset: no samples")
	case len(x) != len(labels)*n:
		return nil, fmt.Errorf("vat: NewDataset: %d values for %d samples of %v (%d each): want %d", len(x), len(labels), shape, n, len(labels)*n)
	}
	d := &Dataset{Images: x, Labels: make([]uint8, len(labels)), Shape: append([]int(nil), shape...)}
	for i, l := range labels {
		if l < 0 || l >= classes {
			return nil, fmt.Errorf("vat: NewDataset: label %d of sample %d outside 0-%d", l, i, classes-1)
		}
		d.Labels[i] = uint8(l)
	}
	if len(shape) == 3 {
		d.Rows, d.Cols = shape[1], shape[2]
	} else {
		d.Rows, d.Cols = 1, shape[0]
	}
	return d, nil
}

// shape returns one sample's shape.
func (d *Dataset) shape() []int {
	if d.Shape != nil {
		return d.Shape
	}
	return []int{1, d.Rows, d.Cols}
}

// Len returns the number of images (0 for a nil dataset).
func (d *Dataset) Len() int {
	if d == nil {
		return 0
	}
	return len(d.Labels)
}

// Head returns a view of the first n images (all of them if n <= 0 or
// n >= Len()). The head of a nil dataset is nil; the methods that use a
// dataset (Trainer.Fit, Trainer.TrainEpoch, Model.Evaluate) report a nil or
// empty one as an error.
func (d *Dataset) Head(n int) *Dataset {
	if d == nil || n <= 0 || n >= d.Len() || size(d.shape())*n > len(d.Images) {
		return d
	}
	px := size(d.shape())
	return &Dataset{Images: d.Images[:n*px], Labels: d.Labels[:n], Rows: d.Rows, Cols: d.Cols, Shape: d.Shape}
}

// validate checks that the dataset fits model m: samples of m's input
// shape (or of its size, for a flat input) and labels below m's classes.
func (d *Dataset) validate(what string, m *Model) error {
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
		return fmt.Errorf("vat: %s dataset has %d values for %d samples of %v", what, len(d.Images), d.Len(), ds)
	}
	for i, l := range d.Labels {
		if int(l) >= m.classes {
			return fmt.Errorf("vat: %s dataset: label %d of sample %d outside 0-%d", what, l, i, m.classes-1)
		}
	}
	return nil
}
