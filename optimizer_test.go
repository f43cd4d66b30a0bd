package vat

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// TestSGDMatchesDefinition runs SGD in each of its forms against the
// update written out in float64, on fresh random weights and gradients.
func TestSGDMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(rand.Int64()), 3))
	for _, o := range []SGD{{LR: 0.1}, {LR: 0.05, Momentum: 0.9}, {LR: 0.05, Momentum: 0.8, Nesterov: true}, {LR: 0.02, Momentum: 0.5, WeightDecay: 0.1}, {WeightDecay: 0.3}} {
		t.Run(o.String(), func(t *testing.T) {
			opt, err := o.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			sgd := opt.(SGD)
			p := &Param{Name: "w", Value: tensor.New(tensor.WithShape(4, 5), tensor.Of(tensor.Float32))}
			w := p.Value.Data().([]float32)
			ref, vel := make([]float64, len(w)), make([]float64, len(w))
			for i := range w {
				w[i] = float32(r.NormFloat64())
				ref[i] = float64(w[i])
			}
			st := opt.newState([]*Param{p})
			g := tensor.New(tensor.WithShape(4, 5), tensor.Of(tensor.Float32))
			for s := 0; s < 5; s++ {
				lr := sgd.LR * (1 + float64(s)) / 5 // a changing rate, as a schedule gives
				gd := g.Data().([]float32)
				for i := range gd {
					gd[i] = float32(r.NormFloat64())
				}
				if err := st.step([]*Param{p}, []*tensor.Dense{g}, lr, false); err != nil {
					t.Fatal(err)
				}
				for i := range ref {
					gi := float64(gd[i]) + sgd.WeightDecay*ref[i]
					switch {
					case sgd.Momentum == 0:
						ref[i] -= lr * gi
					case sgd.Nesterov:
						vel[i] = sgd.Momentum*vel[i] + gi
						ref[i] -= lr * (gi + sgd.Momentum*vel[i])
					default:
						vel[i] = sgd.Momentum*vel[i] + gi
						ref[i] -= lr * vel[i]
					}
				}
			}
			for i := range ref {
				if math.Abs(float64(w[i])-ref[i]) > 1e-5*(1+math.Abs(ref[i])) {
					t.Fatalf("weight %d: %v, float64 reference %v", i, w[i], ref[i])
				}
			}
		})
	}
}

func TestSchedules(t *testing.T) {
	const base = 0.5
	for _, tc := range []struct {
		name     string
		s        Schedule
		step, n  int
		want     float64
		decaying bool
	}{
		{"constant", Constant{}, 77, 100, base, false},
		{"linear before", LinearDecay{Start: 0.5}, 49, 100, base, false},
		{"linear at start", LinearDecay{Start: 0.5}, 50, 100, base, true},
		{"linear mid", LinearDecay{Start: 0.5}, 75, 100, base / 2, true},
		{"linear default 2/3", LinearDecay{}, 90, 90, 0, true},
		{"linear none", LinearDecay{Start: 1}, 99, 100, base, false},
		{"step first", StepDecay{Every: 500, Factor: 0.9}, 499, 10000, base, false},
		{"step second", StepDecay{Every: 500, Factor: 0.9}, 500, 10000, base * 0.9, false},
		{"step many", StepDecay{Every: 500, Factor: 0.9}, 2600, 10000, base * 0.9 * 0.9 * 0.9 * 0.9 * 0.9, false},
		{"exponential", ExponentialDecay{Every: 10, Factor: 0.5}, 5, 100, base / math.Sqrt2, false},
		{"warm-up first", WarmUp{Steps: 4}, 0, 100, base / 4, false},
		{"warm-up done", WarmUp{Steps: 4}, 4, 100, base, false},
		{"warm-up then step", WarmUp{Steps: 10, Then: StepDecay{Every: 5, Factor: 0.5}}, 7, 100, base * 0.5 * 0.8, false},
		{"warm-up then linear", WarmUp{Steps: 2, Then: LinearDecay{Start: 0.5}}, 75, 100, base / 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); err != nil {
				t.Fatal(err)
			}
			lr, dec := tc.s.Rate(base, tc.step, tc.n)
			if math.Abs(lr-tc.want) > 1e-12 || dec != tc.decaying {
				t.Errorf("Rate(%v, %d, %d) = %v, %v; want %v, %v", base, tc.step, tc.n, lr, dec, tc.want, tc.decaying)
			}
			back, err := tc.s.record().schedule() // a checkpoint's record gives the same schedule
			if err != nil {
				t.Fatal(err)
			}
			if lr2, dec2 := back.Rate(base, tc.step, tc.n); lr2 != lr || dec2 != dec {
				t.Errorf("after a checkpoint record: %v, %v; want %v, %v", lr2, dec2, lr, dec)
			}
		})
	}
	for _, tc := range []struct {
		s    Schedule
		want string
	}{
		{LinearDecay{Start: -0.1}, "LinearDecay.Start"}, {LinearDecay{Start: 1.5}, "LinearDecay.Start"},
		{StepDecay{Factor: 0.9}, "StepDecay.Every"}, {StepDecay{Every: 5, Factor: 1.1}, "StepDecay.Factor"},
		{ExponentialDecay{Every: 5}, "ExponentialDecay.Factor"}, {WarmUp{}, "WarmUp.Steps"},
		{WarmUp{Steps: 3, Then: WarmUp{Steps: 2}}, "WarmUp.Then"}, {WarmUp{Steps: 3, Then: StepDecay{}}, "StepDecay.Every"},
	} {
		if err := tc.s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%#v.Validate() = %v, want an error naming %s", tc.s, err, tc.want)
		}
		if _, err := NewTrainer(resumeNet(t), TrainConfig{Schedule: tc.s}); err == nil {
			t.Errorf("NewTrainer accepted the schedule %#v", tc.s)
		}
	}
}

func TestOptimizerSettingsRejected(t *testing.T) {
	for _, tc := range []struct {
		o    Optimizer
		want string
	}{
		{Adadelta{LR: -1}, "Adadelta.LR"}, {Adadelta{Rho: 1}, "Adadelta.Rho"}, {Adadelta{Epsilon: math.Inf(1)}, "Adadelta.Epsilon"},
		{Adam{LR: math.NaN()}, "Adam.LR"}, {Adam{Beta2: 1}, "Adam.Beta2"}, {Adam{DecayBeta1: -0.5}, "Adam.DecayBeta1"},
		{SGD{LR: -0.1}, "SGD.LR"}, {SGD{Momentum: 1}, "SGD.Momentum"}, {SGD{Nesterov: true}, "SGD.Nesterov"}, {SGD{WeightDecay: -1}, "SGD.WeightDecay"},
	} {
		_, err := NewTrainer(resumeNet(t), TrainConfig{Optimizer: tc.o})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewTrainer with %#v: %v, want an error naming %s", tc.o, err, tc.want)
		}
		_, err = NewSemiTrainer(resumeNet(t), SemiSupervisedConfig{Optimizer: tc.o})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewSemiTrainer with %#v: %v, want an error naming %s", tc.o, err, tc.want)
		}
	}
}

// TestConfigSharesNoState: a trainer made from another's Config starts
// fresh; training one leaves the other's optimizer untouched.
func TestConfigSharesNoState(t *testing.T) {
	train := syntheticData(t, 64, 1)
	for _, opt := range []Optimizer{nil, Adam{}, SGD{Momentum: 0.9}} {
		a, err := NewTrainer(resumeNet(t), TrainConfig{Epochs: 1, BatchSize: 32, Optimizer: opt})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Fit(context.Background(), train, nil); err != nil {
			t.Fatal(err)
		}
		b, err := NewTrainer(resumeNet(t), a.Config())
		if err != nil {
			t.Fatal(err)
		}
		if b.state != nil {
			t.Fatalf("%v: a trainer made from a trained one's Config has optimizer state", opt)
		}
		before := stateBuffers(a.state)
		sums := make([]float64, len(before))
		for i, x := range before {
			for _, v := range x {
				sums[i] += float64(v)
			}
		}
		if _, err := b.Fit(context.Background(), train, nil); err != nil {
			t.Fatal(err)
		}
		for i, x := range stateBuffers(a.state) {
			s := 0.0
			for _, v := range x {
				s += float64(v)
			}
			if s != sums[i] {
				t.Fatalf("%v: training the copy changed the original's optimizer state", opt)
			}
		}
	}
	s, err := NewSemiTrainer(resumeNet(t), SemiSupervisedConfig{Iterations: 2, LabeledBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fit(context.Background(), train.Head(20), nil, nil); err != nil {
		t.Fatal(err)
	}
	s2, err := NewSemiTrainer(resumeNet(t), s.Config())
	if err != nil || s2.state != nil || s2.it != 0 {
		t.Fatalf("a semi-supervised trainer from a trained one's Config: %v, state %v, iteration %d", err, s2.state != nil, s2.it)
	}
}

// TestAnyOptimizerTrains: every optimizer with a schedule trains either
// kind of training (the loss falls on a learnable task).
func TestAnyOptimizerTrains(t *testing.T) {
	train := learnable(t, 256, 1)
	for _, tc := range []struct {
		opt   Optimizer
		sched Schedule
	}{
		{Adadelta{}, StepDecay{Every: 4, Factor: 0.9}},
		{Adam{LR: 0.01}, WarmUp{Steps: 3, Then: LinearDecay{}}},
		{SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 1e-4}, ExponentialDecay{Every: 10, Factor: 0.5}},
		{SGD{LR: 0.1, Momentum: 0.9, Nesterov: true}, Constant{}},
	} {
		t.Run(tc.opt.String(), func(t *testing.T) {
			m, err := Sequential([]int{1, 10, 10}, 2, Flatten(), Dense(16), ReLU(), Dense(5))
			if err != nil {
				t.Fatal(err)
			}
			tr, err := NewTrainer(m, TrainConfig{Epochs: 6, BatchSize: 32, Optimizer: tc.opt, Schedule: tc.sched, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			res, err := tr.Fit(context.Background(), train, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res[5].TrainLoss >= 0.8*res[0].TrainLoss {
				t.Errorf("supervised: loss %v → %v", res[0].TrainLoss, res[5].TrainLoss)
			}
			m2, _ := Sequential([]int{1, 10, 10}, 2, Flatten(), Dense(16), ReLU(), Dense(5))
			var first, last float64
			st, err := NewSemiTrainer(m2, SemiSupervisedConfig{Iterations: 60, LabeledBatch: 32, UnlabeledBatch: 32, VAT: &VATConfig{Eps: 0.5},
				Optimizer: tc.opt, Schedule: tc.sched, Seed: 1, OnStep: func(s SemiStep) {
					if s.Iteration <= 10 {
						first += s.CE
					} else if s.Iteration > 50 {
						last += s.CE
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Fit(context.Background(), train.Head(64), train, nil); err != nil {
				t.Fatal(err)
			}
			if last >= 0.8*first {
				t.Errorf("semi-supervised: cross-entropy of the first 10 steps %v, of the last 10 %v", first/10, last/10)
			}
		})
	}
}

// learnable returns n random 1×10×10 images whose label (of 5) is the
// brightest of five pixel bands.
func learnable(t testing.TB, n int, seed uint64) *Dataset {
	r := rand.New(rand.NewPCG(seed, 9))
	x := make([]float32, n*100)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = r.IntN(5)
		for j := 0; j < 100; j++ {
			v := r.Float32()
			if j/20 == labels[i] {
				v += 0.5
			}
			x[i*100+j] = v
		}
	}
	d, err := NewDataset(x, []int{1, 10, 10}, labels, 5)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
