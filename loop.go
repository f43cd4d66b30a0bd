package vat

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"
)

// Both trainers run one training core (loop): the optimizer and its
// schedule, the loss check, the step and evaluation reports, and early
// stopping. Trainer feeds it epochs of shuffled batches; SemiTrainer feeds
// it pairs of labeled and unlabeled batches, cycled. Both report steps as
// StepInfo and evaluations as Report, and both checkpoint and resume.

// StepInfo reports one training step, of either kind of training.
type StepInfo struct {
	// Epoch is the 1-based epoch, Step the 1-based step of Steps in it
	// (supervised training; 0 in semi-supervised training).
	Epoch, Step, Steps int
	// Iteration is the step's 1-based number in the run, of Iterations.
	Iteration, Iterations int
	// Loss is the batch's total loss; CE, LDS (before α), Entropy (before
	// β) and Balance (the class-balance KL, before SemiSupervisedConfig's
	// Balance weight γ) are its parts, 0 when off.
	Loss, CE, LDS, Entropy, Balance float64
	// LearningRate, Alpha and Beta are the values the step used.
	LearningRate, Alpha, Beta float64

	decaying bool // the schedule's final decay phase (Adam's DecayBeta1)
}

// SemiStep is StepInfo, as semi-supervised training called it before both
// kinds of training shared it.
//
// Deprecated: use StepInfo.
type SemiStep = StepInfo

// Report is one evaluation of a run: the mean loss parts of the steps
// since the previous report, and the test figures (NaN without a test
// set). Supervised training reports after every epoch, semi-supervised
// training every EvalEvery iterations.
type Report struct {
	Epoch        int     `json:"epoch,omitempty"` // the finished epoch (supervised training)
	Iteration    int     `json:"iteration"`       // steps done in the run
	TrainLoss    float64 `json:"train_loss"`      // mean total loss (supervised: over the epoch's samples)
	TrainCE      float64 `json:"train_ce"`        // its cross-entropy part
	TrainLDS     float64 `json:"train_lds"`       // its VAT part before α (0 without VAT)
	TrainEntropy float64 `json:"train_entropy,omitempty"`
	TestLoss     float64 `json:"test_loss"`              // mean cross-entropy on the test set
	TestAccuracy float64 `json:"test_accuracy"`          // fraction of test samples classified right
	Seconds      float64 `json:"seconds"`                // wall time of the training steps since the previous report
	EvalSeconds  float64 `json:"eval_seconds,omitempty"` // wall time of the test evaluation
	// PopulationStats says that batch normalization's running averages were
	// recomputed over the training pool before the test evaluation.
	PopulationStats bool `json:"population_stats,omitempty"`
}

// EpochResult is a supervised run's Report of one epoch.
//
// Deprecated: use Report.
type EpochResult = Report

// SemiEval is a semi-supervised run's Report.
//
// Deprecated: use Report.
type SemiEval = Report

// Metric is a figure of a Report that early stopping watches.
type Metric int

const (
	// MetricTestLoss is the test set's mean cross-entropy (lower is better).
	MetricTestLoss Metric = iota
	// MetricTestAccuracy is the test set's accuracy (higher is better).
	MetricTestAccuracy
	// MetricTrainLoss is the training loss since the previous report
	// (lower is better); it needs no test set.
	MetricTrainLoss
)

// String returns "test_loss", "test_accuracy" or "train_loss".
func (m Metric) String() string {
	switch m {
	case MetricTestLoss:
		return "test_loss"
	case MetricTestAccuracy:
		return "test_accuracy"
	case MetricTrainLoss:
		return "train_loss"
	}
	return fmt.Sprintf("Metric(%d)", int(m))
}

// of returns the metric's value in r, signed so that lower is better.
func (m Metric) of(r Report) float64 {
	switch m {
	case MetricTestAccuracy:
		return -r.TestAccuracy
	case MetricTrainLoss:
		return r.TrainLoss
	}
	return r.TestLoss
}

// EarlyStopping ends a run when Metric has not improved by more than
// MinDelta for Patience reports in a row (Keras' EarlyStopping callback).
// Fit then returns without an error, and the trainer's Stopped reports it.
// The weights are those of the last step, not the best report's.
type EarlyStopping struct {
	// Metric is the figure watched; its zero value is MetricTestLoss, which
	// needs a test set (as MetricTestAccuracy does).
	Metric Metric
	// Patience is the number of reports without improvement to stop
	// after, >= 1.
	Patience int
	// MinDelta is the smallest change that counts as an improvement, >= 0.
	MinDelta float64
}

func (e *EarlyStopping) validate(what string) error {
	switch {
	case e == nil:
		return nil
	case e.Metric < MetricTestLoss || e.Metric > MetricTrainLoss:
		return fmt.Errorf("vat: %s.EarlyStop.Metric = %d: want MetricTestLoss, MetricTestAccuracy or MetricTrainLoss", what, e.Metric)
	case e.Patience < 1:
		return fmt.Errorf("vat: %s.EarlyStop.Patience = %d: want >= 1 reports", what, e.Patience)
	case !(e.MinDelta >= 0) || math.IsInf(e.MinDelta, 0):
		return fmt.Errorf("vat: %s.EarlyStop.MinDelta = %v: want a finite number >= 0", what, e.MinDelta)
	}
	return nil
}

// needsTest reports whether the watched metric comes from a test set.
func (e *EarlyStopping) needsTest() bool { return e != nil && e.Metric != MetricTrainLoss }

// loop is the training core both trainers share.
type loop struct {
	model *Model
	opt   Optimizer
	sched Schedule
	state optimizerState // nil until the first step
	grads []*tensor.Dense

	early   *EarlyStopping
	best    float64 // the watched metric's best value so far (lower is better)
	bad     int     // reports since it last improved
	stopped bool    // early stopping ended the run
}

func newLoop(m *Model, opt, defOpt Optimizer, sched, defSched Schedule, early *EarlyStopping, what string) (loop, error) {
	l := loop{model: m, best: math.Inf(1)}
	var err error
	if l.opt, err = optimizerOrDefault(opt, defOpt); err != nil {
		return l, err
	}
	if l.sched, err = scheduleOrDefault(sched, defSched); err != nil {
		return l, err
	}
	if err := early.validate(what); err != nil {
		return l, err
	}
	l.early = clonePtr(early)
	return l, nil
}

// update checks a step's loss and moves the weights by its gradients: step
// it (0-based) of a run of steps. It returns the learning rate it used.
func (l *loop) update(g *stepGraph, st *StepInfo, it, steps int) error {
	if math.IsNaN(st.Loss) || math.IsInf(st.Loss, 0) {
		return fmt.Errorf("vat: the loss became %v at step %d; lower the learning rate or VAT's alpha/eps", st.Loss, it+1)
	}
	m := l.model
	if l.grads == nil {
		l.grads = make([]*tensor.Dense, len(m.params))
	}
	for i := range l.grads {
		l.grads[i] = g.grads[i].Value().(*tensor.Dense)
	}
	if l.state == nil {
		l.state = l.opt.newState(m.params)
	}
	if err := l.state.step(m.params, l.grads, st.LearningRate, st.decaying); err != nil {
		return err
	}
	m.countStatUpdate()
	return nil
}

// rate fills in the schedule's learning rate for step it of steps.
func (l *loop) rate(st *StepInfo, it, steps int) {
	st.LearningRate, st.decaying = l.sched.Rate(l.opt.baseRate(), it, steps)
}

// judge feeds a report to early stopping and reports whether the run
// stops.
func (l *loop) judge(r Report) bool {
	if l.early == nil {
		return false
	}
	v := l.early.Metric.of(r)
	if v < l.best-l.early.MinDelta {
		l.best, l.bad = v, 0
	} else if l.bad++; l.bad >= l.early.Patience {
		l.stopped = true
	}
	return l.stopped
}

// earlyRecord is early stopping's state in a checkpoint.
type earlyRecord struct {
	Best    *float64 `json:"best"` // nil: no report yet
	Bad     int      `json:"bad"`
	Stopped bool     `json:"stopped,omitempty"`
}

func (l *loop) earlyRecord() *earlyRecord {
	if l.early == nil {
		return nil
	}
	r := &earlyRecord{Bad: l.bad, Stopped: l.stopped}
	if !math.IsInf(l.best, 1) {
		b := l.best
		r.Best = &b
	}
	return r
}

func (l *loop) setEarly(r *earlyRecord) {
	if r == nil {
		return
	}
	if r.Best != nil {
		l.best = *r.Best
	}
	l.bad, l.stopped = r.Bad, r.Stopped
}

// Stopped reports whether early stopping ended the run.
func (l *loop) Stopped() bool { return l.stopped }

// clonePtr returns a pointer to a copy of *p, or nil: a configuration
// handed out that shares nothing with the trainer's.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}
