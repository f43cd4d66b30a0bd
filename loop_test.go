package vat

import (
	"context"
	"math"
	"strings"
	"testing"
)

// TestEarlyStopping: a run whose metric never improves by MinDelta after
// its first report stops after Patience more, in either kind of training;
// a stopped run's Fit does nothing more (supervised) or says it has
// finished (semi-supervised).
func TestEarlyStopping(t *testing.T) {
	data, test := learnable(t, 96, 1), learnable(t, 40, 2)
	never := &EarlyStopping{Metric: MetricTrainLoss, Patience: 2, MinDelta: 1e9}
	tr, err := NewTrainer(resumeNet(t), TrainConfig{Epochs: 6, BatchSize: 32, EarlyStop: never})
	if err != nil {
		t.Fatal(err)
	}
	res, err := tr.Fit(context.Background(), data, nil)
	if err != nil || len(res) != 3 || !tr.Stopped() {
		t.Fatalf("supervised: %d reports, stopped %v, error %v; want 3 reports and a stop", len(res), tr.Stopped(), err)
	}
	if more, err := tr.Fit(context.Background(), data, nil); err != nil || len(more) != 0 {
		t.Fatalf("Fit after the stop: %d reports, %v", len(more), err)
	}

	st, err := NewSemiTrainer(resumeNet(t), SemiSupervisedConfig{Iterations: 20, LabeledBatch: 8, UnlabeledBatch: 16, EvalEvery: 4,
		VAT: &VATConfig{Eps: 0.5}, EarlyStop: &EarlyStopping{Metric: MetricTestAccuracy, Patience: 1, MinDelta: 2}})
	if err != nil {
		t.Fatal(err)
	}
	evals, err := st.Fit(context.Background(), data.Head(20), data, test)
	if err != nil || len(evals) != 2 || !st.Stopped() || st.Iteration() != 8 {
		t.Fatalf("semi-supervised: %d reports, stopped %v at %d, error %v; want a stop at the second report (8)", len(evals), st.Stopped(), st.Iteration(), err)
	}
	if _, err := st.Fit(context.Background(), data.Head(20), data, test); err == nil || !strings.Contains(err.Error(), "early stopping") {
		t.Fatalf("Fit after the stop: %v", err)
	}

	// An improving metric does not stop the run.
	tr, _ = NewTrainer(resumeNet(t), TrainConfig{Epochs: 3, BatchSize: 32, EarlyStop: &EarlyStopping{Metric: MetricTrainLoss, Patience: 1}})
	if res, err := tr.Fit(context.Background(), data, nil); err != nil || len(res) != 3 || tr.Stopped() {
		t.Fatalf("an improving run: %d reports, stopped %v, %v", len(res), tr.Stopped(), err)
	}
}

func TestEarlyStoppingRejected(t *testing.T) {
	data := learnable(t, 40, 1)
	for _, tc := range []struct {
		e    EarlyStopping
		want string
	}{
		{EarlyStopping{Patience: 0}, "EarlyStop.Patience"},
		{EarlyStopping{Patience: 1, Metric: 7}, "EarlyStop.Metric"},
		{EarlyStopping{Patience: 1, MinDelta: -1}, "EarlyStop.MinDelta"},
		{EarlyStopping{Patience: 1, MinDelta: math.Inf(1)}, "EarlyStop.MinDelta"},
	} {
		e := tc.e
		if _, err := NewTrainer(resumeNet(t), TrainConfig{EarlyStop: &e}); err == nil || !strings.Contains(err.Error(), "TrainConfig."+tc.want) {
			t.Errorf("NewTrainer with %+v: %v, want an error naming TrainConfig.%s", e, err, tc.want)
		}
		if _, err := NewSemiTrainer(resumeNet(t), SemiSupervisedConfig{EarlyStop: &e}); err == nil || !strings.Contains(err.Error(), "SemiSupervisedConfig."+tc.want) {
			t.Errorf("NewSemiTrainer with %+v: %v, want an error naming SemiSupervisedConfig.%s", e, err, tc.want)
		}
	}
	// A test metric without a test set.
	tr, _ := NewTrainer(resumeNet(t), TrainConfig{Epochs: 1, EarlyStop: &EarlyStopping{Patience: 1}})
	if _, err := tr.Fit(context.Background(), data, nil); err == nil || !strings.Contains(err.Error(), "test set") {
		t.Errorf("EarlyStop on test_loss without a test set: %v", err)
	}
}
