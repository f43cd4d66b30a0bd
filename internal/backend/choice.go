package backend

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/org/vat/internal/device"
)

// Which kernels compute a layer on the GPU. A backend that also implements
// device.DNN (the cuda build: cuDNN) offers two paths for each convolution
// direction and for max-pooling: its own kernels (im2col + cuBLAS, and the
// package's pooling kernels) and cuDNN's. The environment variable
// VAT_CUDNN picks:
//
//	auto (or unset)  measure both paths the first time a layer's shape runs
//	                 and keep the faster one for the rest of the process
//	on               always cuDNN
//	off              never cuDNN
//
// In auto mode cuDNN is kept unless our kernels take at most 4/5 of its
// time: a clear margin, so that timing noise between processes does not flip
// a choice (the two paths round differently, and a seed should give the same
// bits in every run on one machine). cuDNN's own algorithm for each shape
// comes from its heuristics, restricted to deterministic float32 algorithms
// (see cuda/dnn.go).

// Mode is the VAT_CUDNN setting.
type Mode int

const (
	ModeAuto Mode = iota
	ModeOn
	ModeOff
)

func (m Mode) String() string { return [...]string{"auto", "on", "off"}[m] }

// ParseMode reads a VAT_CUDNN value ("" is auto).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return ModeAuto, nil
	case "on", "1", "true":
		return ModeOn, nil
	case "off", "0", "false":
		return ModeOff, nil
	}
	return ModeAuto, fmt.Errorf("VAT_CUDNN=%q: want auto, on or off", s)
}

// kernelKey names one layer direction at one shape.
type kernelKey struct {
	op    string // "conv forward", "conv backward data", ...
	shape [7]int
}

func (k kernelKey) String() string {
	s := k.shape
	if strings.HasPrefix(k.op, "conv") {
		return fmt.Sprintf("%s, x %d×%d×%d×%d, w %d×%d×%d×%d", k.op, s[0], s[1], s[2], s[3], s[4], s[1], s[5], s[6])
	}
	return fmt.Sprintf("%s, x %d×%d×%d×%d", k.op, s[0], s[1], s[2], s[3])
}

// pathChoice is auto mode's measurement of one kernelKey.
type pathChoice struct {
	dnn         bool          // cuDNN computes it
	own, cudnn  time.Duration // mean time of a call on each path
	cudnnFailed error         // why cuDNN could not run it, if it could not
}

// minChoiceMargin: our kernels are kept only when they take at most this
// fraction of cuDNN's time.
const minChoiceMargin = 0.8

// dispatch runs one layer direction on the path the mode selects: own (the
// backend's kernels) or dnn (cuDNN). The caller holds a.mu; both functions
// overwrite the same outputs from the same inputs, so running one several
// times to time it changes nothing.
func (a *Accelerator) dispatch(key kernelKey, own, dnn func(d device.DNN) error) error {
	d, ok := a.dev.(device.DNN)
	switch {
	case !ok || a.mode == ModeOff:
		return own(nil)
	case a.mode == ModeOn:
		return dnn(d)
	}
	c, ok := a.choices[key]
	if !ok {
		var err error
		if c, err = a.measure(d, own, dnn); err != nil {
			return err
		}
		a.choices[key] = c
	}
	if c.dnn {
		return dnn(d)
	}
	return own(d)
}

// measure times both paths: one untimed call each (cuDNN makes its plan
// then), then the mean of three. A cuDNN failure (no algorithm fits, say)
// is recorded and our kernels are used.
func (a *Accelerator) measure(d device.DNN, own, dnn func(d device.DNN) error) (*pathChoice, error) {
	timeOf := func(fn func(d device.DNN) error) (time.Duration, error) {
		if err := fn(d); err != nil {
			return 0, err
		}
		if err := a.dev.Sync(); err != nil {
			return 0, err
		}
		const reps = 3
		start := time.Now()
		for i := 0; i < reps; i++ {
			if err := fn(d); err != nil {
				return 0, err
			}
		}
		if err := a.dev.Sync(); err != nil {
			return 0, err
		}
		return time.Since(start) / reps, nil
	}
	c := &pathChoice{}
	var err error
	if c.own, err = timeOf(own); err != nil {
		return nil, err
	}
	if c.cudnn, c.cudnnFailed = timeOf(dnn); c.cudnnFailed != nil {
		return c, nil
	}
	c.dnn = float64(c.own) > minChoiceMargin*float64(c.cudnn)
	return c, nil
}

// KernelChoices describes auto mode's choices so far, one line per layer
// direction and shape, sorted.
func (a *Accelerator) KernelChoices() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var lines []string
	for k, c := range a.choices {
		use := "own kernels"
		if c.dnn {
			use = "cuDNN"
		}
		line := fmt.Sprintf("%s: %s (own %.1f µs, cuDNN %.1f µs)", k, use,
			float64(c.own.Nanoseconds())/1e3, float64(c.cudnn.Nanoseconds())/1e3)
		if c.cudnnFailed != nil {
			line = fmt.Sprintf("%s: own kernels (cuDNN failed: %v)", k, c.cudnnFailed)
		}
		lines = append(lines, line)
	}
	if a.poolTies < 0 {
		lines = append(lines, "max-pool backward: own kernel everywhere (cuDNN's gradient on ties does not go to the first maximum)")
	}
	sort.Strings(lines)
	return lines
}

// opTime is the device time profiled for one op name.
type opTime struct {
	calls int
	total time.Duration
}

// StartProfile makes every GPU op wait for the device and record its time
// until stopProfile; it slows the step (no overlap of host and device) and
// is for finding where a step's time goes.
func (a *Accelerator) StartProfile() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.profile = map[string]*opTime{}
}

// StopProfile ends profiling and returns one line per op, the most
// expensive first.
func (a *Accelerator) StopProfile() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	type row struct {
		name string
		t    *opTime
	}
	var rows []row
	var total time.Duration
	for k, v := range a.profile {
		rows = append(rows, row{k, v})
		total += v.total
	}
	a.profile = nil
	sort.Slice(rows, func(i, j int) bool { return rows[i].t.total > rows[j].t.total })
	var lines []string
	for _, r := range rows {
		lines = append(lines, fmt.Sprintf("%-18s %6d calls %9.1f µs/call %5.1f %%", r.name, r.t.calls,
			float64(r.t.total.Nanoseconds())/1e3/float64(r.t.calls), 100*float64(r.t.total)/float64(max(total, 1))))
	}
	return lines
}

// profiled runs fn, timing it to completion on the device when profiling.
func (a *Accelerator) profiled(op string, fn func() error) error {
	if a.profile == nil {
		return fn()
	}
	start := time.Now()
	if err := fn(); err != nil {
		return err
	}
	if err := a.dev.Sync(); err != nil {
		return err
	}
	t := a.profile[op]
	if t == nil {
		t = &opTime{}
		a.profile[op] = t
	}
	t.calls++
	t.total += time.Since(start)
	return nil
}
