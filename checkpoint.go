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
	"github.com/org/vat/internal/safetensors"
)

// A checkpoint is a safetensors file: the model's tensors as Save writes
// them, the optimizer's state as "optimizer/<param>/accum_grad" and
// "optimizer/<param>/accum_update" (in the model's own layout), and in the
// header, besides the network's description, a "checkpoint" entry: the
// training configuration, the finished epochs and the steps of the
// unfinished one, every random stream's state and the epochs' results.

// checkpointState is the header's "checkpoint" entry.
type checkpointState struct {
	Config     checkpointConfig `json:"config"`
	Epoch      int              `json:"epoch"`                 // finished epochs
	Step       int              `json:"step"`                  // steps done in the unfinished epoch
	EpochStart []byte           `json:"epoch_start,omitempty"` // shuffling source before the unfinished epoch
	Shuffle    []byte           `json:"shuffle"`               // shuffling source now
	Noise      uint64           `json:"noise_draws"`           // VAT noise buffers drawn
	Dropout    map[int][]uint64 `json:"dropout_draws"`         // per batch size, each dropout op's masks drawn
	Data       dataKey          `json:"data"`                  // the unfinished epoch's training set
	Partial    epochRecord      `json:"partial"`               // the unfinished epoch's sums
	History    []epochRecord    `json:"history"`
}

// checkpointConfig is a TrainConfig without its callbacks.
type checkpointConfig struct {
	Epochs    int        `json:"epochs"`
	BatchSize int        `json:"batch_size"`
	Seed      uint64     `json:"seed"`
	LR        float64    `json:"adadelta_lr"`
	Rho       float64    `json:"adadelta_rho"`
	Epsilon   float64    `json:"adadelta_epsilon"`
	VAT       *VATConfig `json:"vat,omitempty"`
}

// epochRecord is an EpochResult whose test figures may be missing (NaN,
// which JSON cannot hold).
type epochRecord struct {
	EpochResult
	TestLoss     *float64 `json:"test_loss"`
	TestAccuracy *float64 `json:"test_accuracy"`
}

func recordOf(r EpochResult) epochRecord {
	e := epochRecord{EpochResult: r}
	if !math.IsNaN(r.TestLoss) {
		e.TestLoss = &r.TestLoss
	}
	if !math.IsNaN(r.TestAccuracy) {
		e.TestAccuracy = &r.TestAccuracy
	}
	return e
}

func (e epochRecord) result() EpochResult {
	r := e.EpochResult
	r.TestLoss, r.TestAccuracy = math.NaN(), math.NaN()
	if e.TestLoss != nil {
		r.TestLoss = *e.TestLoss
	}
	if e.TestAccuracy != nil {
		r.TestAccuracy = *e.TestAccuracy
	}
	return r
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
	st := checkpointState{
		Config: checkpointConfig{Epochs: t.cfg.Epochs, BatchSize: t.cfg.BatchSize, Seed: t.cfg.Seed,
			LR: t.opt.LR, Rho: t.opt.Rho, Epsilon: t.opt.Epsilon, VAT: t.vat},
		Epoch: t.epoch, Step: t.stepInEpoch, Noise: t.noise.Fills(), Dropout: map[int][]uint64{},
		Partial: recordOf(t.partial), History: []epochRecord{},
	}
	var err error
	if st.Shuffle, err = t.pcg.MarshalBinary(); err != nil {
		return fmt.Errorf("vat: Checkpoint: %w", err)
	}
	if t.stepInEpoch > 0 {
		st.EpochStart, st.Data = t.epochStart, t.data
	}
	for _, r := range t.history {
		st.History = append(st.History, recordOf(r))
	}
	for n, d := range t.draws { // graphs not rebuilt since a Resume
		st.Dropout[n] = d
	}
	for n, tg := range t.graphs {
		if len(tg.streams) > 0 {
			d := make([]uint64, len(tg.streams))
			for i, s := range tg.streams {
				d[i] = s.Draws()
			}
			st.Dropout[n] = d
		}
	}
	js, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("vat: Checkpoint: %w", err)
	}
	m := t.model
	m.mu.Lock()
	defer m.mu.Unlock()
	meta := m.header(formatCheckpoint)
	meta[metaCheckpoint] = string(js)
	tensors := m.tensors()
	if t.opt.accGrad != nil {
		if err := backend.SyncToHost(append(slices.Clone(t.opt.accGrad), t.opt.accUpdate...)...); err != nil {
			return fmt.Errorf("vat: Checkpoint: %w", err)
		}
		for i, p := range m.params {
			shape := p.Value.Shape()
			tensors = append(tensors,
				safetensors.FromFloat32(optimizerPrefix+p.Name+"/accum_grad", shape, t.opt.accGrad[i]),
				safetensors.FromFloat32(optimizerPrefix+p.Name+"/accum_update", shape, t.opt.accUpdate[i]))
		}
	}
	if err := safetensors.WriteFile(path, &safetensors.File{Metadata: meta, Tensors: tensors}); err != nil {
		return fmt.Errorf("vat: Checkpoint: %w", err)
	}
	return nil
}

// Resume reads a checkpoint written by Trainer.Checkpoint and returns a
// trainer, with its model, in the state the checkpoint recorded: Fit then
// continues the run (on the same training set) where it stopped. The run's
// configuration comes from the checkpoint; cfg may only set the callbacks
// OnStep and OnEpoch, and Epochs to train further than planned (0 keeps
// the checkpoint's). Any other field set is an error: it would make a
// different run.
func Resume(path string, cfg TrainConfig) (*Trainer, error) {
	switch {
	case cfg.BatchSize != 0:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.BatchSize is set; a resumed run keeps its checkpoint's")
	case cfg.VAT != nil:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.VAT is set; a resumed run keeps its checkpoint's")
	case cfg.Seed != 0:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.Seed is set; a resumed run keeps its checkpoint's")
	case cfg.Optimizer.LR != 0 || cfg.Optimizer.Rho != 0 || cfg.Optimizer.Epsilon != 0:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.Optimizer is set; a resumed run keeps its checkpoint's")
	case cfg.Epochs < 0:
		return nil, fmt.Errorf("vat: Resume: TrainConfig.Epochs = %d: want >= 0 (0 keeps the checkpoint's)", cfg.Epochs)
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vat: %w", err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("vat: %s: %w: %s", path, ErrWrongNetwork, fmt.Sprintf(format, a...))
	}
	if f.Metadata[metaFormat] != formatCheckpoint {
		return nil, bad("not a checkpoint (format %q, want %q)", clip(f.Metadata[metaFormat]), formatCheckpoint)
	}
	var st checkpointState
	dec := json.NewDecoder(bytes.NewReader([]byte(f.Metadata[metaCheckpoint])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, bad("the checkpoint entry: %q", clip(err.Error()))
	}
	m, err := modelFromHeader(f, path)
	if err != nil {
		return nil, err
	}
	if err := m.loadFile(f, path); err != nil {
		return nil, err
	}
	c := st.Config
	tc := TrainConfig{Epochs: c.Epochs, BatchSize: c.BatchSize, Seed: c.Seed, VAT: c.VAT,
		Optimizer: Adadelta{LR: c.LR, Rho: c.Rho, Epsilon: c.Epsilon}, OnStep: cfg.OnStep, OnEpoch: cfg.OnEpoch}
	if c.Epochs < 1 || c.BatchSize < 1 || c.LR == 0 || c.Rho == 0 || c.Epsilon == 0 {
		return nil, bad("the configuration %+v has zero or negative values", c)
	}
	if cfg.Epochs != 0 {
		tc.Epochs = cfg.Epochs
	}
	t, err := NewTrainer(m, tc)
	if err != nil {
		return nil, bad("%v", err)
	}
	switch {
	case st.Epoch < 0 || st.Step < 0 || len(st.History) != st.Epoch:
		return nil, bad("epoch %d, step %d, %d epochs of history", st.Epoch, st.Step, len(st.History))
	case st.Epoch > t.cfg.Epochs || (st.Epoch == t.cfg.Epochs && st.Step > 0):
		return nil, fmt.Errorf("vat: Resume: %s has finished %d epochs; TrainConfig.Epochs = %d: want more", path, st.Epoch, t.cfg.Epochs)
	case st.Step > 0 && (len(st.EpochStart) == 0 || st.Data.N < 1):
		return nil, bad("step %d of an epoch without its shuffling state or data", st.Step)
	}
	if err := t.pcg.UnmarshalBinary(st.Shuffle); err != nil {
		return nil, bad("shuffling state: %v", err)
	}
	if st.Step > 0 {
		var probe rand.PCG
		if err := probe.UnmarshalBinary(st.EpochStart); err != nil {
			return nil, bad("shuffling state of the epoch: %v", err)
		}
	}
	t.noise.SetFills(st.Noise)
	t.epoch, t.stepInEpoch, t.epochStart, t.data = st.Epoch, st.Step, st.EpochStart, st.Data
	t.partial = st.Partial.result()
	for _, r := range st.History {
		t.history = append(t.history, r.result())
	}
	t.draws = st.Dropout
	if err := t.loadOptimizer(f, bad); err != nil {
		return nil, err
	}
	return t, nil
}

// loadOptimizer restores Adadelta's running averages from a checkpoint:
// all of them, or none when the checkpoint was written before any step.
func (t *Trainer) loadOptimizer(f *safetensors.File, bad func(string, ...any) error) error {
	n := 0
	for _, x := range f.Tensors {
		if strings.HasPrefix(x.Name, optimizerPrefix) {
			n++
		}
	}
	if n == 0 {
		if t.epoch > 0 || t.stepInEpoch > 0 {
			return bad("the optimizer's state is missing after %d epochs and %d steps", t.epoch, t.stepInEpoch)
		}
		return nil
	}
	var acc, upd [][]float32
	for _, p := range t.model.params {
		for _, name := range []string{"accum_grad", "accum_update"} {
			key := optimizerPrefix + p.Name + "/" + name
			x := f.Get(key)
			if x == nil {
				return bad("tensor %q is missing", key)
			}
			if x.DType != safetensors.F32 || !slices.Equal(x.Shape, p.Value.Shape()) {
				return bad("tensor %q is %s%v, want F32%v", key, x.DType, x.Shape, []int(p.Value.Shape()))
			}
			v, _ := x.Float32()
			if name == "accum_grad" {
				acc = append(acc, v)
			} else {
				upd = append(upd, v)
			}
		}
	}
	if n != 2*len(t.model.params) {
		return bad("%d optimizer tensors, want %d", n, 2*len(t.model.params))
	}
	t.opt.accGrad, t.opt.accUpdate = acc, upd
	backend.MarkHostWritten(append(slices.Clone(acc), upd...)...)
	return nil
}
