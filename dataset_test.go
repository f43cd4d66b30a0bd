package vat

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestNonFiniteRefused: a NaN or an infinity in a dataset is an error at
// construction that names the sample.
func TestNonFiniteRefused(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		x := make([]float32, 12)
		x[7] = bad // sample 2 of samples of 3
		if _, err := NewDataset(x, []int{3}, []int{0, 1, 0, 1}, 2); err == nil || !strings.Contains(err.Error(), "sample 2") {
			t.Errorf("NewDataset with %v: %v, want an error naming sample 2", bad, err)
		}
		if _, err := NewUnlabeled(x, []int{3}); err == nil || !strings.Contains(err.Error(), "sample 2") {
			t.Errorf("NewUnlabeled with %v: %v, want an error naming sample 2", bad, err)
		}
	}
	for _, tc := range []struct {
		x     []float32
		shape []int
	}{{nil, []int{3}}, {make([]float32, 7), []int{3}}, {make([]float32, 6), []int{0}}, {make([]float32, 6), []int{2, 3}}} {
		if _, err := NewUnlabeled(tc.x, tc.shape); err == nil {
			t.Errorf("NewUnlabeled(%d values, %v) accepted", len(tc.x), tc.shape)
		}
	}
}

// TestUnlabeledDatasets: an unlabeled dataset has no labels, feeds
// semi-supervised training, and is refused where labels are needed.
func TestUnlabeledDatasets(t *testing.T) {
	data := learnable(t, 120, 1)
	u, err := NewUnlabeled(data.Images, []int{1, 10, 10})
	if err != nil {
		t.Fatal(err)
	}
	if u.Labeled() || u.Len() != 120 || u.Labels != nil {
		t.Fatalf("unlabeled: labeled %v, %d samples", u.Labeled(), u.Len())
	}
	split, err := SplitLabeled(data, 20, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if split.Unlabeled.Labeled() || split.Unlabeled.Len() != 100 {
		t.Fatalf("SplitLabeled's unlabeled pool: labeled %v, %d samples", split.Unlabeled.Labeled(), split.Unlabeled.Len())
	}
	st, err := NewSemiTrainer(semiNet(t), SemiSupervisedConfig{Iterations: 3, LabeledBatch: 10, UnlabeledBatch: 20, VAT: &VATConfig{Eps: 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Fit(context.Background(), split.Labeled, u, nil); err != nil {
		t.Fatalf("semi-supervised training on NewUnlabeled's pool: %v", err)
	}
	tr, _ := NewTrainer(semiNet(t), TrainConfig{Epochs: 1})
	if _, err := tr.Fit(context.Background(), u, nil); err == nil || !strings.Contains(err.Error(), "no labels") {
		t.Errorf("supervised training on an unlabeled set: %v", err)
	}
	if _, err := semiNet(t).Evaluate(u); err == nil || !strings.Contains(err.Error(), "no labels") {
		t.Errorf("evaluating an unlabeled set: %v", err)
	}
	if _, err := SplitLabeled(u, 20, 5, 1); err == nil {
		t.Errorf("SplitLabeled of an unlabeled set accepted")
	}
	if got := data.Unlabeled(); got.Labeled() || got.Len() != data.Len() || !data.Labeled() {
		t.Errorf("Unlabeled(): a view without labels, the original kept")
	}
}

func TestDatasetHelpers(t *testing.T) {
	x := []float32{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5}
	d, err := NewDataset(x, []int{2}, []int{0, 1, 0, 1, 0, 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := d.Subset([]int{4, 1, 1})
	if err != nil || !slices.Equal(sub.Images, []float32{4, 4, 1, 1, 1, 1}) || !slices.Equal(sub.Labels, []int{0, 1, 1}) {
		t.Errorf("Subset: %v %v %v", sub.Images, sub.Labels, err)
	}
	for _, bad := range [][]int{{6}, {-1}} {
		if _, err := d.Subset(bad); err == nil || !strings.Contains(err.Error(), "outside") {
			t.Errorf("Subset(%v): %v", bad, err)
		}
	}
	// Shuffle: a permutation that keeps samples with their labels, fixed by the seed.
	a, b, c := d.Shuffle(3), d.Shuffle(3), d.Shuffle(4)
	if !slices.Equal(a.Images, b.Images) || slices.Equal(a.Images, c.Images) && slices.Equal(a.Images, d.Images) {
		t.Errorf("Shuffle: seed 3 twice %v / %v, seed 4 %v", a.Images, b.Images, c.Images)
	}
	for i := 0; i < a.Len(); i++ {
		if int(a.Images[2*i])%2 != a.Labels[i] {
			t.Fatalf("Shuffle separated sample %v from its label %d", a.Images[2*i], a.Labels[i])
		}
	}
	cat, err := Concat(d, sub)
	if err != nil || cat.Len() != 9 || cat.Labels[8] != 1 || cat.Images[17] != 1 {
		t.Errorf("Concat: %d samples, %v", cat.Len(), err)
	}
	u, _ := NewUnlabeled([]float32{1, 2}, []int{2})
	other, _ := NewUnlabeled([]float32{1, 2, 3}, []int{3})
	for _, tc := range []struct {
		name string
		ds   []*Dataset
		want string
	}{{"labels and none", []*Dataset{d, u}, "labeled"}, {"shapes", []*Dataset{u, other}, "samples of"}, {"none", nil, "no datasets"}} {
		if _, err := Concat(tc.ds...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Concat %s: %v", tc.name, err)
		}
	}
	// SplitByClass keeps the class balance.
	big := learnable(t, 200, 5)
	tr, val, err := big.SplitByClass(0.2, 7)
	if err != nil || tr.Len()+val.Len() != 200 {
		t.Fatalf("SplitByClass: %v, %d + %d", err, tr.Len(), val.Len())
	}
	count := func(ds *Dataset) map[int]int {
		m := map[int]int{}
		for _, l := range ds.Labels {
			m[l]++
		}
		return m
	}
	all, vc := count(big), count(val)
	for c, n := range all {
		if want := int(math.Round(0.2 * float64(n))); vc[c] != want {
			t.Errorf("class %d: %d of %d in validation, want %d", c, vc[c], n, want)
		}
	}
	for _, frac := range []float64{0, 1, -0.5, math.NaN()} {
		if _, _, err := big.SplitByClass(frac, 1); err == nil {
			t.Errorf("SplitByClass(%v) accepted", frac)
		}
	}
	if _, _, err := u.SplitByClass(0.5, 1); err == nil {
		t.Errorf("SplitByClass of an unlabeled set accepted")
	}
}
