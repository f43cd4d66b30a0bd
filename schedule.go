package vat

import (
	"encoding/json"
	"fmt"
	"math"
)

// A Schedule shapes the learning rate over a run: Constant, LinearDecay,
// StepDecay, ExponentialDecay, or WarmUp before another schedule. Any
// schedule works with any optimizer and either kind of training.
type Schedule interface {
	// Rate returns the learning rate of step (0-based) in a run of steps,
	// for the optimizer's base rate; decaying reports that the step is in
	// the schedule's final decay phase, where Adam uses its DecayBeta1.
	Rate(base float64, step, steps int) (lr float64, decaying bool)
	// Validate reports a setting out of its range, naming it.
	Validate() error
	// record describes the schedule for a checkpoint.
	record() scheduleRecord
}

// Constant keeps the base learning rate for the whole run. It is the
// Trainer's default schedule.
type Constant struct{}

// Rate returns base.
func (Constant) Rate(base float64, _, _ int) (float64, bool) { return base, false }

// Validate returns nil: Constant has no settings.
func (Constant) Validate() error { return nil }

func (Constant) record() scheduleRecord { return scheduleRecord{Name: "constant"} }

// LinearDecay keeps the base rate for the first Start of the run, then
// decays it linearly to zero at the last step:
//
//	lr = base                                  for step < s = round(Start·steps)
//	lr = base · (steps − step) / (steps − s)   after
//
// the official VAT code's schedule (its SVHN and CIFAR-10 runs decay over
// the last third; 80 of 120 epochs). Start is a fraction in (0, 1]; 0 means
// 2/3, and 1 means no decay. It is the semi-supervised trainer's default.
type LinearDecay struct{ Start float64 }

func (s LinearDecay) start() float64 {
	if s.Start == 0 {
		return 2.0 / 3
	}
	return s.Start
}

// Rate returns the decayed rate (see LinearDecay).
func (s LinearDecay) Rate(base float64, step, steps int) (float64, bool) {
	start := int(math.Round(s.start() * float64(steps)))
	if step < start || start >= steps {
		return base, false
	}
	return base * float64(steps-step) / float64(steps-start), true
}

// Validate checks that Start is in (0, 1] (or 0, the default).
func (s LinearDecay) Validate() error {
	if !(s.Start >= 0 && s.Start <= 1) {
		return fmt.Errorf("vat: LinearDecay.Start = %v: want a fraction in (0, 1] (0 means 2/3)", s.Start)
	}
	return nil
}

func (s LinearDecay) record() scheduleRecord {
	return scheduleRecord{Name: "linear", Start: s.start()}
}

// StepDecay multiplies the rate by Factor every Every steps, in a
// staircase: lr = base · Factor^⌊step/Every⌋. The official 2015 MNIST code
// (Miyato's vat_mnist) multiplies Adam's rate by 0.9 every 500 updates:
// StepDecay{Every: 500, Factor: 0.9}. Every must be >= 1 and Factor in
// (0, 1].
type StepDecay struct {
	Every  int
	Factor float64
}

// Rate returns base · Factor^⌊step/Every⌋.
func (s StepDecay) Rate(base float64, step, _ int) (float64, bool) {
	return base * math.Pow(s.Factor, float64(step/s.Every)), false
}

// Validate checks Every and Factor.
func (s StepDecay) Validate() error { return checkDecay("StepDecay", s.Every, s.Factor) }

func (s StepDecay) record() scheduleRecord {
	return scheduleRecord{Name: "step", Every: s.Every, Factor: s.Factor}
}

// ExponentialDecay is StepDecay without the staircase: lr = base ·
// Factor^(step/Every), shrinking a little every step. Every must be >= 1
// and Factor in (0, 1].
type ExponentialDecay struct {
	Every  int
	Factor float64
}

// Rate returns base · Factor^(step/Every).
func (s ExponentialDecay) Rate(base float64, step, _ int) (float64, bool) {
	return base * math.Pow(s.Factor, float64(step)/float64(s.Every)), false
}

// Validate checks Every and Factor.
func (s ExponentialDecay) Validate() error { return checkDecay("ExponentialDecay", s.Every, s.Factor) }

func (s ExponentialDecay) record() scheduleRecord {
	return scheduleRecord{Name: "exponential", Every: s.Every, Factor: s.Factor}
}

func checkDecay(name string, every int, factor float64) error {
	switch {
	case every < 1:
		return fmt.Errorf("vat: %s.Every = %d: want >= 1 steps", name, every)
	case !(factor > 0 && factor <= 1):
		return fmt.Errorf("vat: %s.Factor = %v: want a number in (0, 1]", name, factor)
	}
	return nil
}

// WarmUp raises the rate linearly from base/Steps to the rate of Then over
// the first Steps steps, then follows Then (whose step count includes the
// warm-up): lr = Then(step) · (step+1)/Steps while step < Steps. Steps must
// be >= 1; a nil Then means Constant.
type WarmUp struct {
	Steps int
	Then  Schedule
}

// Rate returns the warmed-up rate (see WarmUp).
func (s WarmUp) Rate(base float64, step, steps int) (float64, bool) {
	then := s.Then
	if then == nil {
		then = Constant{}
	}
	lr, decaying := then.Rate(base, step, steps)
	if step < s.Steps {
		lr *= float64(step+1) / float64(s.Steps)
	}
	return lr, decaying
}

// Validate checks Steps and Then.
func (s WarmUp) Validate() error {
	if s.Steps < 1 {
		return fmt.Errorf("vat: WarmUp.Steps = %d: want >= 1", s.Steps)
	}
	if _, ok := s.Then.(WarmUp); ok {
		return fmt.Errorf("vat: WarmUp.Then is a WarmUp: want one warm-up")
	}
	if s.Then != nil {
		return s.Then.Validate()
	}
	return nil
}

func (s WarmUp) record() scheduleRecord {
	r := scheduleRecord{Name: "warmup", Steps: s.Steps}
	if s.Then != nil {
		t := s.Then.record()
		r.Then = &t
	}
	return r
}

// scheduleRecord is a schedule in a checkpoint's header.
type scheduleRecord struct {
	Name   string          `json:"name"`
	Start  float64         `json:"start,omitempty"`
	Every  int             `json:"every,omitempty"`
	Factor float64         `json:"factor,omitempty"`
	Steps  int             `json:"steps,omitempty"`
	Then   *scheduleRecord `json:"then,omitempty"`
}

// schedule returns the schedule r describes, validated.
func (r scheduleRecord) schedule() (Schedule, error) {
	var s Schedule
	switch r.Name {
	case "constant":
		s = Constant{}
	case "linear":
		s = LinearDecay{Start: r.Start}
	case "step":
		s = StepDecay{Every: r.Every, Factor: r.Factor}
	case "exponential":
		s = ExponentialDecay{Every: r.Every, Factor: r.Factor}
	case "warmup":
		w := WarmUp{Steps: r.Steps}
		if r.Then != nil {
			if r.Then.Name == "warmup" {
				return nil, fmt.Errorf("schedule: a warm-up after a warm-up")
			}
			t, err := r.Then.schedule()
			if err != nil {
				return nil, err
			}
			w.Then = t
		}
		s = w
	default:
		b, _ := json.Marshal(r.Name)
		return nil, fmt.Errorf("schedule %s: want constant, linear, step, exponential or warmup", clip(string(b)))
	}
	return s, s.Validate()
}

// scheduleOrDefault validates s, or returns def when s is nil.
func scheduleOrDefault(s, def Schedule) (Schedule, error) {
	if s == nil {
		s = def
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}
