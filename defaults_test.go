package vat

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/org/vat/internal/toydata"
)

// TestDefaultVATBeatsSupervised: VATConfig's and SemiSupervisedConfig's
// zero values (ε relative to the data's scale; the exact probe without
// batch norm, finite differences and population statistics with it) beat
// training on the labels alone on data the defaults were not tuned on, on
// every label split: two moons (8 labels, 2-D) and 20-D Gaussian blobs (30
// labels, best possible accuracy about 96.6 %), each with an MLP without
// and with batch norm (5,000 updates for the moons with batch norm: the
// blobs' collapse over long runs came with batch norm). scripts/defaults
// prints the full table, longer runs and other scales; the README has it.
func TestDefaultVATBeatsSupervised(t *testing.T) {
	for _, tc := range []struct {
		name               string
		x, tx              []float32
		l, tl              []int
		dim, classes       int
		labels, iterations int
		labeled, unlabeled int
		margin             float64 // VAT's accuracy must exceed supervised's by this much
		bn                 bool    // batch norm after each hidden layer
	}{
		{name: "moons", dim: 2, classes: 2, labels: 8, iterations: 4000, labeled: 8, unlabeled: 64, margin: 0.05},
		{name: "blobs", dim: 20, classes: 3, labels: 30, iterations: 500, labeled: 30, unlabeled: 128, margin: 0.05},
		{name: "moons, batch norm", dim: 2, classes: 2, labels: 8, iterations: 5000, labeled: 8, unlabeled: 64, margin: 0.05, bn: true},
		{name: "blobs, batch norm", dim: 20, classes: 3, labels: 30, iterations: 500, labeled: 30, unlabeled: 128, margin: 0.03, bn: true},
	} {
		if strings.HasPrefix(tc.name, "moons") {
			tc.x, tc.l = toydata.Moons(1000, 0.1, 1)
			tc.tx, tc.tl = toydata.Moons(1000, 0.1, 2)
		} else {
			tc.x, tc.l = toydata.Blobs(3000, 20, 3, 3, 1)
			tc.tx, tc.tl = toydata.Blobs(3000, 20, 3, 3, 2)
		}
		train, err := NewDataset(tc.x, []int{tc.dim}, tc.l, tc.classes)
		if err != nil {
			t.Fatal(err)
		}
		test, _ := NewDataset(tc.tx, []int{tc.dim}, tc.tl, tc.classes)
		for split := uint64(1); split <= 3; split++ {
			s, err := SplitLabeled(train, tc.labels, tc.classes, split)
			if err != nil {
				t.Fatal(err)
			}
			acc := func(v *VATConfig) float64 {
				layers := []Layer{Dense(64), ReLU(), Dense(64), ReLU(), Dense(tc.classes)}
				if tc.bn {
					layers = []Layer{Dense(64), BatchNorm(), ReLU(), Dense(64), BatchNorm(), ReLU(), Dense(tc.classes)}
				}
				m, err := Sequential([]int{tc.dim}, split, layers...)
				if err != nil {
					t.Fatal(err)
				}
				tr, err := NewSemiTrainer(m, SemiSupervisedConfig{Iterations: tc.iterations, LabeledBatch: tc.labeled, UnlabeledBatch: tc.unlabeled,
					VAT: v, EvalEvery: tc.iterations, Seed: split})
				if err != nil {
					t.Fatal(err)
				}
				evals, err := tr.Fit(context.Background(), s.Labeled, s.Unlabeled, test)
				if err != nil {
					t.Fatal(err)
				}
				if v != nil {
					c := tr.Config().VAT
					probe := Exact
					if tc.bn {
						probe = FiniteDifference
					}
					if want := 0.05 * DataScale(train); math.Abs(c.Eps-want) > 0.02*want || c.Probe != probe {
						t.Errorf("%s: resolved ε %v, probe %v; want about %v and %v", tc.name, c.Eps, c.Probe, want, probe)
					}
				}
				return evals[len(evals)-1].TestAccuracy
			}
			sup, withVAT := acc(nil), acc(&VATConfig{})
			t.Logf("%s, split %d: supervised %.1f %%, default VAT %.1f %%", tc.name, split, 100*sup, 100*withVAT)
			if withVAT < sup+tc.margin {
				t.Errorf("%s, split %d: default VAT %.1f %%, supervised %.1f %%: want VAT ahead by %.0f points", tc.name, split, 100*withVAT, 100*sup, 100*tc.margin)
			}
		}
	}
}

// TestDataScale against its definition in float64 on fresh random data of
// two datasets: √(Σ_j Var(x_j)) over all their samples.
func TestDataScale(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 51))
	const dim = 7
	mk := func(n int, shift float64) *Dataset {
		x := make([]float32, n*dim)
		for i := range x {
			x[i] = float32(shift + r.NormFloat64()*float64(1+i%dim))
		}
		d, err := NewUnlabeled(x, []int{dim})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := mk(300, 0), mk(200, 2)
	var mean, sq [dim]float64
	n := 0
	for _, d := range []*Dataset{a, b} {
		for i := 0; i < d.Len(); i++ {
			for j := 0; j < dim; j++ {
				v := float64(d.Images[i*dim+j])
				mean[j] += v
				sq[j] += v * v
			}
			n++
		}
	}
	var want float64
	for j := range mean {
		m := mean[j] / float64(n)
		want += sq[j]/float64(n) - m*m
	}
	want = math.Sqrt(want)
	if got := DataScale(a, b); math.Abs(got-want) > 1e-9*want {
		t.Errorf("DataScale = %v, want %v", got, want)
	}
	same, _ := NewUnlabeled([]float32{3, 3, 3, 3}, []int{2})
	if got := DataScale(same); got != 0 {
		t.Errorf("DataScale of equal samples = %v, want 0", got)
	}
}

// TestVATConfigDefaults: the data-relative defaults and their validation;
// Probe's JSON names, and the numbers of files written before ProbeAuto.
func TestVATConfigDefaults(t *testing.T) {
	c, err := VATConfig{}.validated()
	if err != nil {
		t.Fatal(err)
	}
	m, _ := Sequential([]int{4}, 1, Dense(3))
	drop, _ := Sequential([]int{4}, 1, Dropout(0.5), Dense(3))
	if got := c.forModel(m, 8); got.Eps != 0.4 || math.Abs(got.Xi-0.008) > 1e-15 || got.Probe != Exact {
		t.Errorf("defaults on scale 8: %+v, want ε 0.4, ξ 0.008, exact", got)
	}
	bn, _ := Sequential([]int{4}, 1, Dense(3), BatchNorm(), ReLU(), Dense(3))
	for _, m := range []*Model{drop, bn} {
		if got := c.forModel(m, 8); got.Probe != FiniteDifference || math.Abs(got.Eps-0.4) > 1e-12 {
			t.Errorf("a network with dropout or batch norm: probe %v, ε %v; want finite-difference and 0.05 × 8", got.Probe, got.Eps)
		}
	}
	if got, _ := (VATConfig{EpsScale: 0.2}).validated(); got.forModel(m, 5).Eps != 1 {
		t.Errorf("EpsScale 0.2 on scale 5: ε %v, want 1", got.forModel(m, 5).Eps)
	}
	if got, _ := (VATConfig{}).withDefaults(); got.Eps != 1 || got.Xi != 10 || got.Probe != FiniteDifference {
		t.Errorf("without data: %+v, want the Keras original's ξ 10, ε 1, finite difference", got)
	}
	for _, bad := range []VATConfig{{Eps: 1, EpsScale: 0.1}, {EpsScale: -1}, {EpsScale: 11}, {Eps: -1}, {Xi: math.NaN()}, {Probe: 3}} {
		if _, err := bad.validated(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	for _, tc := range []struct {
		json string
		want Probe
	}{{`"auto"`, ProbeAuto}, {`"exact"`, Exact}, {`"finite-difference"`, FiniteDifference}, {`0`, FiniteDifference}, {`1`, Exact}} {
		var p Probe
		if err := json.Unmarshal([]byte(tc.json), &p); err != nil || p != tc.want {
			t.Errorf("Probe from %s: %v, %v; want %v", tc.json, p, err, tc.want)
		}
	}
	for _, bad := range []string{`"approximate"`, `2`, `-1`, `{}`} {
		var p Probe
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("Probe from %s accepted", bad)
		}
	}
}

// TestSelectEps: on the blobs, choosing ε from the labeled samples alone
// lands on a scale whose test accuracy is within 2 points of the grid's
// best test accuracy; bad arguments are refused by name.
func TestSelectEps(t *testing.T) {
	x, l := toydata.Blobs(3000, 20, 3, 3, 1)
	tx, tl := toydata.Blobs(3000, 20, 3, 3, 2)
	train, _ := NewDataset(x, []int{20}, l, 3)
	test, _ := NewDataset(tx, []int{20}, tl, 3)
	split, err := SplitLabeled(train, 60, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	newModel := func() (*Model, error) {
		return Sequential([]int{20}, 1, Dense(64), ReLU(), Dense(64), ReLU(), Dense(3))
	}
	cfg := SemiSupervisedConfig{Iterations: 400, LabeledBatch: 42, UnlabeledBatch: 128, Seed: 1}
	grid := []float64{0.05, 0.2, 0.5}
	best, all, err := SelectEps(context.Background(), newModel, split.Labeled, split.Unlabeled, cfg, grid, 0.3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("%d candidates, want 3", len(all))
	}
	for _, c := range all {
		// A mean of −log p over 18 samples: positive (no model is certain
		// of every one) and at most −log of the smallest float32.
		if !(c.Loss > 0 && c.Loss <= -math.Log(math.SmallestNonzeroFloat32)) || !(c.Accuracy >= 0 && c.Accuracy <= 1) {
			t.Errorf("candidate %+v: want a held-out loss in (0, 103.3] and an accuracy in [0, 1]", c)
		}
	}
	// The test accuracy of each scale trained on all the labels.
	testAcc := map[float64]float64{}
	top := 0.0
	for _, s := range grid {
		m, _ := newModel()
		c := cfg
		c.VAT = &VATConfig{EpsScale: s}
		tr, _ := NewSemiTrainer(m, c)
		evals, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, test)
		if err != nil {
			t.Fatal(err)
		}
		testAcc[s] = evals[len(evals)-1].TestAccuracy
		top = math.Max(top, testAcc[s])
	}
	t.Logf("candidates %+v; chose %v; test accuracies %v", all, best, testAcc)
	if testAcc[best] < top-0.02 {
		t.Errorf("SelectEps chose %v (test accuracy %.1f %%), the grid's best is %.1f %%", best, 100*testAcc[best], 100*top)
	}
	for _, tc := range []struct {
		cfg  SemiSupervisedConfig
		grid []float64
		want string
	}{
		{SemiSupervisedConfig{VAT: &VATConfig{Eps: 1}}, nil, "VAT.Eps"},
		{cfg, []float64{0.1, -1}, "grid[1]"},
		{cfg, []float64{}, "empty grid"},
		{SemiSupervisedConfig{EarlyStop: &EarlyStopping{Patience: 1}}, nil, "test set"},
		{SemiSupervisedConfig{LabeledBatch: -1}, nil, "LabeledBatch"},
	} {
		if _, _, err := SelectEps(context.Background(), newModel, split.Labeled, split.Unlabeled, tc.cfg, tc.grid, 0, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SelectEps with %+v, grid %v: %v, want an error naming %s", tc.cfg, tc.grid, err, tc.want)
		}
	}
}

// TestSignTail checks the binomial tail against sums of binomial
// coefficients computed exactly in integers.
func TestSignTail(t *testing.T) {
	binom := func(n, k int) float64 { // C(n, k) by the multiplicative formula, exact for these n
		c := 1.0
		for j := 1; j <= k; j++ {
			c = c * float64(n-k+j) / float64(j)
		}
		return c
	}
	for _, tc := range []struct{ k, n int }{{0, 0}, {0, 5}, {1, 1}, {1, 2}, {5, 5}, {8, 10}, {7, 8}, {30, 50}, {6, 5}} {
		want := 0.0
		switch {
		case tc.k <= 0:
			want = 1
		case tc.k <= tc.n:
			for j := tc.k; j <= tc.n; j++ {
				want += binom(tc.n, j)
			}
			want /= math.Pow(2, float64(tc.n))
		}
		if got := signTail(tc.k, tc.n); math.Abs(got-want) > 1e-12*math.Max(1, want) {
			t.Errorf("signTail(%d, %d) = %v, want %v", tc.k, tc.n, got, want)
		}
	}
	// Thousands of tosses: a tail that neither overflows nor loses its value.
	if p := signTail(1100, 2000); !(p > 0 && p < 1e-5) {
		t.Errorf("signTail(1100, 2000) = %v, want a small positive probability", p)
	}
}

// TestPickScale: the default scale stays unless another has a lower
// held-out cross-entropy on significantly more samples.
func TestPickScale(t *testing.T) {
	// losses builds a candidate's per-sample cross-entropy over n held-out
	// samples: lo on the first k, hi on the rest.
	losses := func(n, k int, lo, hi float64) []float64 {
		l := make([]float64, n)
		for i := range l {
			l[i] = hi
			if i < k {
				l[i] = lo
			}
		}
		return l
	}
	flat := func(n int, v float64) []float64 { return losses(n, 0, v, v) }
	for _, tc := range []struct {
		name string
		grid []float64
		loss [][]float64
		want float64
	}{
		{"lower on 8 of 9 (p = 0.020): the other wins", []float64{0.05, 0.7},
			[][]float64{flat(9, 0.5), losses(9, 8, 0.1, 0.9)}, 0.7},
		{"lower on 7 of 9 (p = 0.090): the default stays", []float64{0.05, 0.7},
			[][]float64{flat(9, 0.5), losses(9, 7, 0.1, 0.9)}, 0.05},
		{"lower on most but a higher mean: the default stays", []float64{0.05, 0.7},
			[][]float64{flat(30, 0.12), losses(30, 22, 0.05, 0.5)}, 0.05},
		{"a lower mean from one sample is not enough", []float64{0.05, 0.2},
			[][]float64{losses(30, 1, 9, 0.2), flat(30, 0.3)}, 0.05},
		{"2 held out, both lower: not significant", []float64{0.05, 0.2},
			[][]float64{flat(2, 1), flat(2, 0.1)}, 0.05},
		{"22 of 30 lower (p = 0.008): the larger wins", []float64{0.05, 0.2, 0.7},
			[][]float64{flat(30, 1.3), flat(30, 1.6), losses(30, 22, 0.2, 1.4)}, 0.7},
		{"two pass: the lower mean", []float64{0.05, 0.5, 1},
			[][]float64{flat(30, 1), flat(30, 0.4), flat(30, 0.6)}, 0.5},
		{"two pass with equal means: the smaller", []float64{1, 0.05, 0.5},
			[][]float64{flat(30, 0.4), flat(30, 1), flat(30, 0.4)}, 0.5},
		{"a smaller scale can win too", []float64{0.01, 0.05},
			[][]float64{flat(30, 0.1), flat(30, 0.9)}, 0.01},
		{"no default in the grid: the smallest is the anchor", []float64{0.3, 0.1, 0.2},
			[][]float64{flat(9, 0.4), flat(9, 0.3), flat(9, 0.35)}, 0.1},
		{"ties do not count", []float64{0.05, 0.2},
			[][]float64{flat(20, 0.5), losses(20, 5, 0.1, 0.5)}, 0.2},
		{"lower and higher both ways cancel", []float64{0.05, 0.2},
			[][]float64{losses(20, 10, 0.1, 0.9), losses(20, 10, 0.9, 0.1)}, 0.05},
	} {
		if got := tc.grid[pickScale(tc.grid, tc.loss, 0.05)]; got != tc.want {
			t.Errorf("%s: picked %v, want %v", tc.name, got, tc.want)
		}
	}
}
