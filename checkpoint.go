package vat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/ops"
	"github.com/org/vat/internal/safetensors"
)

// A checkpoint is a safetensors file, one format for both trainers: the
// model's tensors as Save writes them; the optimizer's per-parameter state
// as "optimizer/<param>/<slot>" in the model's own layout (Adadelta's
// accum_grad and accum_update, Adam's m and v, SGD's velocity); a
// semi-supervised run's two batch orders as "trainer/labeled_order" and
// "trainer/unlabeled_order" (I64); and in the header, besides the
// network's description, a "checkpoint" entry (checkpointState): the
// kind of training and its configuration, the optimizer and schedule, the
// position in the run, every random stream's state and the results so far.
//
// Checkpoints written before the optimizer became a setting (version 0.x
// with "adadelta_lr" in their config and no "optimizer" entry) still load,
// as Adadelta runs at a constant rate: that was the only kind there was.

// Kinds of checkpoint (checkpointState.Kind).
const (
	kindSupervised = "supervised"
	kindSemi       = "semi-supervised"
)

// checkpointState is the header's "checkpoint" entry.
type checkpointState struct {
	// Kind is kindSupervised (or empty, in older files) or kindSemi.
	Kind           string           `json:"kind,omitempty"`
	Config         checkpointConfig `json:"config"`
	Semi           *semiRecord      `json:"semi,omitempty"` // kindSemi's configuration and progress
	Optimizer      *optimizerRecord `json:"optimizer,omitempty"`
	Schedule       *scheduleRecord  `json:"schedule,omitempty"`
	OptimizerSteps int              `json:"optimizer_steps,omitempty"` // Adam's t
	Early          *earlyRecord     `json:"early_stopping,omitempty"`  // early stopping's state
	Noise          uint64           `json:"noise_draws"`               // VAT noise buffers drawn
	Dropout        map[int][]uint64 `json:"dropout_draws"`             // per graph, each dropout op's masks drawn

	// Supervised progress.
	Epoch      int           `json:"epoch"`                 // finished epochs
	Step       int           `json:"step"`                  // steps done in the unfinished epoch
	EpochStart []byte        `json:"epoch_start,omitempty"` // shuffling source before the unfinished epoch
	Shuffle    []byte        `json:"shuffle,omitempty"`     // shuffling source now
	Data       dataKey       `json:"data"`                  // the unfinished epoch's training set
	Partial    epochRecord   `json:"partial"`               // the unfinished epoch's sums
	History    []epochRecord `json:"history"`
}

// checkpointConfig is a TrainConfig without its callbacks, optimizer and
// schedule (checkpointState has those). The adadelta_ fields are read from
// older files only.
type checkpointConfig struct {
	Epochs    int            `json:"epochs,omitempty"`
	BatchSize int            `json:"batch_size,omitempty"`
	Seed      uint64         `json:"seed"`
	LR        float64        `json:"adadelta_lr,omitempty"`
	Rho       float64        `json:"adadelta_rho,omitempty"`
	Epsilon   float64        `json:"adadelta_epsilon,omitempty"`
	VAT       *VATConfig     `json:"vat,omitempty"`
	EarlyStop *EarlyStopping `json:"early_stop,omitempty"`
}

// epochRecord is a Report whose test figures may be missing (NaN,
// which JSON cannot hold).
type epochRecord struct {
	Report
	TestLoss     *float64 `json:"test_loss"`
	TestAccuracy *float64 `json:"test_accuracy"`
}

func recordOf(r Report) epochRecord {
	e := epochRecord{Report: r}
	e.TestLoss, e.TestAccuracy = finite(r.TestLoss), finite(r.TestAccuracy)
	return e
}

func (e epochRecord) result() Report {
	r := e.Report
	r.TestLoss, r.TestAccuracy = orNaN(e.TestLoss), orNaN(e.TestAccuracy)
	return r
}

// finite returns &x, or nil for NaN (missing).
func finite(x float64) *float64 {
	if math.IsNaN(x) {
		return nil
	}
	return &x
}

func orNaN(x *float64) float64 {
	if x == nil {
		return math.NaN()
	}
	return *x
}

// ckptWriter collects a checkpoint's parts.
type ckptWriter struct {
	st    checkpointState
	extra []safetensors.Tensor
}

// writeCheckpoint writes the model, the training core's optimizer state
// (none before the first step) and early stopping's, and the header entry
// to path, atomically.
func writeCheckpoint(path string, l *loop, w *ckptWriter) error {
	m, state := l.model, l.state
	o, s := l.opt.record(), l.sched.record()
	w.st.Optimizer, w.st.Schedule, w.st.Early = &o, &s, l.earlyRecord()
	if state != nil {
		w.st.OptimizerSteps = state.steps()
	}
	js, err := json.Marshal(w.st)
	if err != nil {
		return fmt.Errorf("vat: Checkpoint: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	meta := m.header(formatCheckpoint)
	meta[metaCheckpoint] = string(js)
	tensors := m.tensors()
	if state != nil {
		if err := syncState(state); err != nil {
			return fmt.Errorf("vat: Checkpoint: %w", err)
		}
		for k, slot := range state.slots() {
			for i, p := range m.params {
				tensors = append(tensors, safetensors.FromFloat32(optimizerPrefix+p.Name+"/"+slot, p.Value.Shape(), state.buffers()[k][i]))
			}
		}
	}
	tensors = append(tensors, w.extra...)
	if err := safetensors.WriteFile(path, &safetensors.File{Metadata: meta, Tensors: tensors}); err != nil {
		return fmt.Errorf("vat: Checkpoint: %w", err)
	}
	return nil
}

// ckptReader is a checkpoint read back: the file, its header entry, and
// the model it holds.
type ckptReader struct {
	path  string
	f     *safetensors.File
	st    checkpointState
	model *Model
	opt   Optimizer
	sched Schedule
}

// bad returns an ErrWrongNetwork error naming the file.
func (r *ckptReader) bad(format string, a ...any) error {
	return fmt.Errorf("vat: %s: %w: %s", r.path, ErrWrongNetwork, fmt.Sprintf(format, a...))
}

// readCheckpoint reads path, checks that it is a checkpoint of the given
// kind, and rebuilds its model with its weights.
func readCheckpoint(path, kind string) (*ckptReader, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vat: %w", err)
	}
	r := &ckptReader{path: path, f: f}
	if f.Metadata[metaFormat] != formatCheckpoint {
		return nil, r.bad("not a checkpoint (format %q, want %q)", clip(f.Metadata[metaFormat]), formatCheckpoint)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(f.Metadata[metaCheckpoint])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r.st); err != nil {
		return nil, fmt.Errorf("vat: %s: %w: its %q header entry is cut or not a checkpoint's JSON (%s)", path, ErrBrokenCheckpoint, metaCheckpoint, clip(err.Error()))
	}
	got := r.st.Kind
	if got == "" {
		got = kindSupervised
	}
	if got != kind {
		resume := map[string]string{kindSupervised: "Resume", kindSemi: "ResumeSemi"}[got]
		if resume == "" {
			return nil, r.bad("checkpoint of kind %q: want %q or %q", clip(got), kindSupervised, kindSemi)
		}
		return nil, r.bad("a %s checkpoint: resume it with %s", got, resume)
	}
	if r.st.Optimizer == nil { // an older file: Adadelta at a constant rate
		c := r.st.Config
		if c.LR == 0 || c.Rho == 0 || c.Epsilon == 0 {
			return nil, r.bad("no optimizer, and the Adadelta settings %v/%v/%v have zeros", c.LR, c.Rho, c.Epsilon)
		}
		r.st.Optimizer = &optimizerRecord{Name: "adadelta", LR: c.LR, Rho: c.Rho, Epsilon: c.Epsilon}
		r.st.Schedule = &scheduleRecord{Name: "constant"}
	}
	if r.st.Schedule == nil {
		return nil, r.bad("an optimizer without a schedule")
	}
	if r.opt, err = r.st.Optimizer.optimizer(); err != nil {
		return nil, r.bad("%v", err)
	}
	if r.sched, err = r.st.Schedule.schedule(); err != nil {
		return nil, r.bad("%v", err)
	}
	if r.st.OptimizerSteps < 0 {
		return nil, r.bad("optimizer_steps %d: want >= 0", r.st.OptimizerSteps)
	}
	m, err := modelFromHeader(f, path)
	if err != nil {
		return nil, err
	}
	if err := m.loadFile(f, path); err != nil {
		return nil, err
	}
	r.model = m
	return r, nil
}

// optimizerState restores the optimizer's state: all of it, or none when
// the checkpoint was written before any step (started says a step was
// made).
func (r *ckptReader) optimizerState(started bool) (optimizerState, error) {
	n := 0
	for _, x := range r.f.Tensors {
		if strings.HasPrefix(x.Name, optimizerPrefix) {
			n++
		}
	}
	params := r.model.params
	state := r.opt.newState(params)
	if n == 0 {
		if started && len(state.slots()) > 0 {
			return nil, r.bad("the optimizer's state is missing after training began")
		}
		if started {
			state.setSteps(r.st.OptimizerSteps)
			return state, nil
		}
		return nil, nil
	}
	for k, slot := range state.slots() {
		for i, p := range params {
			key := optimizerPrefix + p.Name + "/" + slot
			x := r.f.Get(key)
			if x == nil {
				return nil, r.bad("tensor %q is missing", key)
			}
			if x.DType != safetensors.F32 || !slices.Equal(x.Shape, p.Value.Shape()) {
				return nil, r.bad("tensor %q is %s%v, want F32%v", key, x.DType, x.Shape, []int(p.Value.Shape()))
			}
			v, _ := x.Float32()
			copy(state.buffers()[k][i], v)
		}
	}
	if want := len(state.slots()) * len(params); n != want {
		return nil, r.bad("%d optimizer tensors, want %d for %v", n, want, r.opt)
	}
	state.setSteps(r.st.OptimizerSteps)
	var hs [][]float32
	for _, b := range state.buffers() {
		hs = append(hs, b...)
	}
	backend.MarkHostWritten(hs...)
	return state, nil
}

// Checkpoint writes everything needed to continue training to path,
// atomically (a temporary file, synced, renamed over path): the weights,
// the optimizer's state, the epoch and step, the random streams' state
// (shuffling, dropout masks, VAT noise), the configuration and the results
// so far. Resume continues from it, and the continued run ends with the
// same weights, bit for bit, as one never stopped (on the same kernel,
// CPU or GPU). Call it between steps: after Fit or TrainEpoch return,
// or from OnStep or OnEpoch. Model.Load and LoadModel also read a
// checkpoint's weights.
func (t *Trainer) Checkpoint(path string) error {
	w := &ckptWriter{st: checkpointState{Kind: kindSupervised,
		Config: checkpointConfig{Epochs: t.cfg.Epochs, BatchSize: t.cfg.BatchSize, Seed: t.cfg.Seed, VAT: t.vat, EarlyStop: t.early},
		Epoch:  t.epoch, Step: t.stepInEpoch, Noise: t.noise.Fills(), Dropout: map[int][]uint64{},
		Partial: recordOf(t.partial), History: []epochRecord{},
	}}
	var err error
	if w.st.Shuffle, err = t.pcg.MarshalBinary(); err != nil {
		return fmt.Errorf("vat: Checkpoint: %w", err)
	}
	if t.stepInEpoch > 0 {
		w.st.EpochStart, w.st.Data = t.epochStart, t.data
	}
	for _, r := range t.history {
		w.st.History = append(w.st.History, recordOf(r))
	}
	for n, d := range t.draws { // graphs not rebuilt since a Resume
		w.st.Dropout[n] = d
	}
	for n, tg := range t.graphs {
		if d := drawsOf(tg.streams); d != nil {
			w.st.Dropout[n] = d
		}
	}
	return writeCheckpoint(path, &t.loop, w)
}

// Resume reads a checkpoint written by Trainer.Checkpoint and returns a
// trainer, with its model, in the state the checkpoint recorded: Fit then
// continues the run (on the same training set) where it stopped. The run's
// configuration comes from the checkpoint; cfg may only set the callbacks
// OnStep and OnEpoch, and Epochs to train further than planned (0 keeps
// the checkpoint's). Any other field set is an error: it would make a
// different run. A semi-supervised checkpoint is refused: ResumeSemi reads
// those.
func Resume(path string, cfg TrainConfig) (*Trainer, error) {
	switch {
	case cfg.BatchSize != 0:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.BatchSize is set; a resumed run keeps its checkpoint's")
	case cfg.VAT != nil:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.VAT is set; a resumed run keeps its checkpoint's")
	case cfg.Seed != 0:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.Seed is set; a resumed run keeps its checkpoint's")
	case cfg.Optimizer != nil:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.Optimizer is set; a resumed run keeps its checkpoint's")
	case cfg.Schedule != nil:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.Schedule is set; a resumed run keeps its checkpoint's")
	case cfg.EarlyStop != nil:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.EarlyStop is set; a resumed run keeps its checkpoint's")
	case cfg.Epochs < 0:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.Epochs = %d: want >= 0 (0 keeps the checkpoint's)", cfg.Epochs)
	}
	r, err := readCheckpoint(path, kindSupervised)
	if err != nil {
		return nil, err
	}
	st, c := r.st, r.st.Config
	tc := TrainConfig{Epochs: c.Epochs, BatchSize: c.BatchSize, Seed: c.Seed, VAT: c.VAT, EarlyStop: c.EarlyStop,
		Optimizer: r.opt, Schedule: r.sched, OnStep: cfg.OnStep, OnEpoch: cfg.OnEpoch}
	if c.Epochs < 1 || c.BatchSize < 1 {
		return nil, r.bad("the configuration %+v has zero or negative values", c)
	}
	if cfg.Epochs != 0 {
		tc.Epochs = cfg.Epochs
	}
	t, err := NewTrainer(r.model, tc)
	if err != nil {
		return nil, r.bad("%v", err)
	}
	switch {
	case st.Epoch < 0 || st.Step < 0 || len(st.History) != st.Epoch:
		return nil, r.bad("epoch %d, step %d, %d epochs of history", st.Epoch, st.Step, len(st.History))
	case st.Epoch > t.cfg.Epochs || (st.Epoch == t.cfg.Epochs && st.Step > 0):
		return nil, fmt.Errorf("vat: Resume: %s has finished %d epochs; TrainConfig.Epochs = %d: want more", path, st.Epoch, t.cfg.Epochs)
	case st.Step > 0 && (len(st.EpochStart) == 0 || st.Data.N < 1):
		return nil, r.bad("step %d of an epoch without its shuffling state or data", st.Step)
	}
	if err := t.pcg.UnmarshalBinary(st.Shuffle); err != nil {
		return nil, r.bad("shuffling state: %v", err)
	}
	if st.Step > 0 {
		var probe rand.PCG
		if err := probe.UnmarshalBinary(st.EpochStart); err != nil {
			return nil, r.bad("shuffling state of the epoch: %v", err)
		}
	}
	t.noise.SetFills(st.Noise)
	t.epoch, t.stepInEpoch, t.epochStart, t.data = st.Epoch, st.Step, st.EpochStart, st.Data
	t.partial = st.Partial.result()
	for _, h := range st.History {
		t.history = append(t.history, h.result())
	}
	t.draws = st.Dropout
	t.setEarly(st.Early)
	if t.state, err = r.optimizerState(t.epoch > 0 || t.stepInEpoch > 0); err != nil {
		return nil, err
	}
	return t, nil
}

// drawsOf returns each random op's draw count, or nil when there are none.
func drawsOf(streams []ops.Stream) []uint64 {
	if len(streams) == 0 {
		return nil
	}
	d := make([]uint64, len(streams))
	for i, s := range streams {
		d[i] = s.Draws()
	}
	return d
}

// setDraws restores the draw counts d (from a checkpoint) of a graph's
// random ops; what names the graph in the error.
func setDraws(streams []ops.Stream, d []uint64, what string) error {
	if len(d) != len(streams) {
		return fmt.Errorf("vat: the checkpoint has %d dropout streams for %s, the graph %d", len(d), what, len(streams))
	}
	for i, s := range streams {
		s.SetDraws(d[i])
	}
	return nil
}
