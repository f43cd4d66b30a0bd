package vat

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// TestAdamMatchesDefinition runs Adam with its schedule against the update
// written out in float64, on fresh random gradients.
func TestAdamMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 2))
	m, err := Sequential([]int{5}, 1, Dense(3))
	if err != nil {
		t.Fatal(err)
	}
	opt, err := Adam{LR: 0.01}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	st, sched := opt.newState(m.params), LinearDecay{Start: 0.5}
	const steps = 6
	w := m.params[0].Value.Data().([]float32)
	ref := make([]float64, len(w))
	for i, v := range w {
		ref[i] = float64(v)
	}
	mom, vel := make([]float64, len(w)), make([]float64, len(w))
	for s := 0; s < steps; s++ {
		g := make([]float32, len(w))
		for i := range g {
			g[i] = float32(r.NormFloat64())
		}
		grads := []*tensor.Dense{tensor.New(tensor.WithShape(5, 3), tensor.Of(tensor.Float32)), tensor.New(tensor.WithShape(3), tensor.Of(tensor.Float32))}
		copy(grads[0].Data().([]float32), g)
		lr, decaying := sched.Rate(opt.baseRate(), s, steps)
		b1 := 0.9
		if decaying {
			b1 = 0.5
		}
		wantLR, wantB1 := 0.01, 0.9
		if s >= 3 {
			wantLR, wantB1 = 0.01*float64(steps-s)/3, 0.5
		}
		if math.Abs(lr-wantLR) > 1e-15 || b1 != wantB1 {
			t.Fatalf("step %d: schedule %v, %v; want %v, %v", s, lr, b1, wantLR, wantB1)
		}
		if err := st.step(m.params, grads, lr, decaying); err != nil {
			t.Fatal(err)
		}
		for i := range ref {
			mom[i] = b1*mom[i] + (1-b1)*float64(g[i])
			vel[i] = 0.999*vel[i] + 0.001*float64(g[i])*float64(g[i])
			mh := mom[i] / (1 - math.Pow(b1, float64(s+1)))
			vh := vel[i] / (1 - math.Pow(0.999, float64(s+1)))
			ref[i] -= lr * mh / (math.Sqrt(vh) + 1e-8)
		}
	}
	for i := range ref {
		if math.Abs(float64(w[i])-ref[i]) > 1e-5 {
			t.Fatalf("weight %d: %v, float64 reference %v", i, w[i], ref[i])
		}
	}
}

func TestSplitLabeled(t *testing.T) {
	d := syntheticData(t, 300, 3)
	s, err := SplitLabeled(d, 20, 5, 7)
	if err != nil {
		t.Fatal(err)
	}
	count := map[int]int{}
	for _, l := range s.Labeled.Labels {
		count[l]++
	}
	for c := 0; c < 5; c++ {
		if count[c] != 4 {
			t.Errorf("class %d: %d labeled samples, want 4", c, count[c])
		}
	}
	if s.Labeled.Len()+s.Unlabeled.Len() != d.Len() || len(s.Hash) != 16 {
		t.Fatalf("split of %d: %d + %d, hash %q", d.Len(), s.Labeled.Len(), s.Unlabeled.Len(), s.Hash)
	}
	for k, i := range s.Indices { // the labeled samples are the original ones
		if s.Labeled.Labels[k] != d.Labels[i] || s.Labeled.Images[k*100] != d.Images[i*100] {
			t.Fatalf("labeled sample %d is not original sample %d", k, i)
		}
	}
	again, _ := SplitLabeled(d, 20, 5, 7)
	other, _ := SplitLabeled(d, 20, 5, 8)
	if again.Hash != s.Hash || other.Hash == s.Hash {
		t.Errorf("hashes: same seed %s/%s, other seed %s", s.Hash, again.Hash, other.Hash)
	}
	for _, tc := range []struct {
		n, classes int
	}{{0, 5}, {7, 5}, {300, 5}, {20, 0}, {30, 6}} {
		if _, err := SplitLabeled(d, tc.n, tc.classes, 1); err == nil {
			t.Errorf("SplitLabeled(%d labels, %d classes) accepted", tc.n, tc.classes)
		}
	}
}

func TestCyclerCoversEverySample(t *testing.T) {
	c := newCycler(7, rand.NewPCG(1, 2))
	seen := map[int]int{}
	for i := 0; i < 7; i++ { // 7 batches of 3 = three full passes
		for _, j := range c.next(3) {
			seen[j]++
		}
	}
	for j := 0; j < 7; j++ {
		if seen[j] != 3 {
			t.Fatalf("index %d handed out %d times in three passes, want 3", j, seen[j])
		}
	}
}

// TestSemiSupervisedLearns: on a task where unlabeled data carries the
// structure, every configuration trains, reports its terms, and the
// evaluations come at the configured iterations.
func TestSemiSupervisedLearns(t *testing.T) {
	train, test := syntheticData(t, 400, 1), syntheticData(t, 50, 2)
	split, err := SplitLabeled(train, 10, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  SemiSupervisedConfig
	}{
		{"supervised", SemiSupervisedConfig{}},
		{"vat", SemiSupervisedConfig{VAT: &VATConfig{Eps: 1}}},
		{"vat+entmin, warm-ups, labeled too", SemiSupervisedConfig{VAT: &VATConfig{Eps: 1}, EntMin: 0.8, WarmUp: 0.5, EntMinWarmUp: 0.75, VATOnLabeled: true}},
		{"vat+balance", SemiSupervisedConfig{VAT: &VATConfig{Eps: 1}, Balance: 0.7}},
		{"balance alone", SemiSupervisedConfig{Balance: 2}},
		{"vat, aligned", SemiSupervisedConfig{VAT: &VATConfig{Eps: 1}, Align: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Sequential([]int{1, 10, 10}, 3, Flatten(), Dense(16), BatchNorm(), ReLU(), Dense(5))
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg
			cfg.Iterations, cfg.LabeledBatch, cfg.UnlabeledBatch, cfg.EvalEvery = 12, 8, 16, 5
			var steps []SemiStep
			cfg.OnStep = func(s SemiStep) { steps = append(steps, s) }
			tr, err := NewSemiTrainer(m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			evals, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, test)
			if err != nil {
				t.Fatal(err)
			}
			if len(evals) != 3 || evals[0].Iteration != 5 || evals[2].Iteration != 12 || len(steps) != 12 {
				t.Fatalf("%d evaluations %+v, %d steps", len(evals), evals, len(steps))
			}
			for _, s := range steps {
				want := s.CE + s.Alpha*s.LDS + s.Beta*s.Entropy + tc.cfg.Balance*s.Balance
				if math.Abs(s.Loss-want) > 1e-4*math.Max(1, math.Abs(want)) {
					t.Fatalf("step %d: loss %v, parts say %v", s.Iteration, s.Loss, want)
				}
				if (tc.cfg.VAT != nil) != (s.LDS > 0) || (tc.cfg.EntMin > 0) != (s.Entropy > 0) || (tc.cfg.Balance > 0) != (s.Balance > 0) {
					t.Fatalf("step %d: terms %+v for config %s", s.Iteration, s, tc.name)
				}
			}
			if tc.cfg.WarmUp > 0 && !(steps[0].Alpha < steps[11].Alpha && steps[11].Alpha == 1) {
				t.Errorf("warm-up: α %v at the first step, %v at the last", steps[0].Alpha, steps[11].Alpha)
			}
			if tc.cfg.EntMinWarmUp > 0 {
				// β = 0.8·(i/9) for steps i < 9, then 0.8; the loss check above
				// says the graph used it.
				for i, s := range steps {
					want := 0.8 * math.Min(1, float64(i+1)/9)
					if math.Abs(s.Beta-want) > 1e-12 {
						t.Errorf("EntMin warm-up: β %v at step %d, want %v", s.Beta, i+1, want)
					}
				}
			}
			if steps[11].LearningRate >= steps[0].LearningRate {
				t.Errorf("learning rate did not decay: %v → %v", steps[0].LearningRate, steps[11].LearningRate)
			}
		})
	}
	for _, bad := range []SemiSupervisedConfig{{Iterations: -1}, {LabeledBatch: -2}, {EntMin: -1}, {WarmUp: 1}, {EntMinWarmUp: 1, EntMin: 1}, {EntMinWarmUp: 0.5}, {VATOnLabeled: true}, {Optimizer: Adam{Beta1: 1}}, {Schedule: LinearDecay{Start: 2}}, {Optimizer: SGD{Nesterov: true}}, {VAT: &VATConfig{Eps: -1}}, {BNStats: 2}, {BNStats: -1}, {Balance: -0.5}, {Balance: math.Inf(1)}, {Balance: math.NaN()}, {Align: true}} {
		if _, err := NewSemiTrainer(nil, bad); err == nil {
			t.Errorf("NewSemiTrainer(nil, %+v) accepted", bad)
		}
		m, _ := Sequential([]int{4}, 1, Dense(2))
		if _, err := NewSemiTrainer(m, bad); err == nil {
			t.Errorf("NewSemiTrainer(%+v) accepted", bad)
		}
	}
}

// TestStrided: population statistics' sample of a large pool is every k-th
// sample, at most n of them, spread over the whole pool.
func TestStrided(t *testing.T) {
	for _, tc := range []struct{ len, n, want, step int }{{5, 10, 5, 1}, {10, 10, 10, 1}, {11, 10, 6, 2}, {25, 10, 9, 3}, {30000, 10000, 10000, 3}} {
		x := make([]float32, tc.len)
		for i := range x {
			x[i] = float32(i)
		}
		d, err := NewUnlabeled(x, []int{1})
		if err != nil {
			t.Fatal(err)
		}
		got := strided(d, tc.n)
		if got.Len() != tc.want || got.Len() > tc.n {
			t.Errorf("strided(%d samples, %d): %d samples, want %d", tc.len, tc.n, got.Len(), tc.want)
			continue
		}
		for i, v := range got.Images {
			if int(v) != i*tc.step {
				t.Errorf("strided(%d samples, %d): sample %d is %v, want %d", tc.len, tc.n, i, v, i*tc.step)
				break
			}
		}
	}
}

// TestPopulationStatsWithoutTestSet: without a test set only the run's
// last report recomputes population statistics (the others evaluate
// nothing), so the model Fit returns has them.
func TestPopulationStatsWithoutTestSet(t *testing.T) {
	pool := learnable(t, 120, 3)
	split, err := SplitLabeled(pool, 20, 5, 4)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewSemiTrainer(semiNet(t), SemiSupervisedConfig{Iterations: 6, LabeledBatch: 8, UnlabeledBatch: 24, EvalEvery: 2, VAT: &VATConfig{Eps: 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	evals, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evals {
		if want := i == len(evals)-1; e.PopulationStats != want {
			t.Errorf("report at %d: population statistics %v, want %v", e.Iteration, e.PopulationStats, want)
		}
	}
}
