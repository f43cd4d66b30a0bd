package vat

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/rng"
)

// TrainConfig configures a Trainer. The zero value is the Keras original's
// plain run: 12 epochs of batches of 128, Adadelta with Keras' defaults at a
// constant rate, no VAT.
type TrainConfig struct {
	// Epochs is the number of passes over the training set; 0 means 12.
	Epochs int
	// BatchSize is the number of images per step; 0 means 128. Every image is
	// used every epoch: the last batch holds the remainder.
	BatchSize int
	// VAT adds the virtual adversarial loss when non-nil (see VATConfig
	// for its defaults).
	VAT *VATConfig
	// Optimizer is the training method: Adadelta, Adam or SGD; nil means
	// Adadelta{} (Keras' defaults).
	Optimizer Optimizer
	// Schedule shapes the learning rate over the Epochs; nil means
	// Constant{}.
	Schedule Schedule
	// Seed fixes the shuffling order, the dropout masks and the VAT noise.
	// (The initial weights come from ModelConfig.Seed.)
	Seed uint64
	// OnStep, if set, is called after every training step.
	OnStep func(StepInfo)
	// OnEpoch, if set, is called after every epoch, test evaluation included.
	OnEpoch func(EpochResult)
}

// StepInfo reports one training step.
type StepInfo struct {
	Epoch, Step, Steps int     // 1-based epoch, 1-based step of Steps
	Loss               float64 // the batch's total loss
}

// EpochResult holds the figures of one epoch.
type EpochResult struct {
	Epoch        int     `json:"epoch"`
	TrainLoss    float64 `json:"train_loss"`    // mean total loss over the epoch's images
	TrainCE      float64 `json:"train_ce"`      // its cross-entropy part
	TrainLDS     float64 `json:"train_lds"`     // its VAT part before α (0 without VAT)
	TestLoss     float64 `json:"test_loss"`     // mean cross-entropy on the test set
	TestAccuracy float64 `json:"test_accuracy"` // fraction of test images classified right
	Seconds      float64 `json:"seconds"`       // wall time of the training steps
	EvalSeconds  float64 `json:"eval_seconds"`  // wall time of the test evaluation
}

// Trainer trains a Model with minibatch Adadelta on cross-entropy, plus
// α·LDS when VAT is on.
type Trainer struct {
	model   *Model
	cfg     TrainConfig
	vat     *VATConfig
	opt     Optimizer
	sched   Schedule
	state   optimizerState // nil until the first step
	graphs  map[int]*stepGraph
	pcg     *rand.PCG  // the shuffling stream's source
	shuffle *rand.Rand // draws from pcg
	noise   rng.Chunked
	perm    []int
	grads   []*tensor.Dense // the last step's gradients, handed to the optimizer

	// Progress, all of which Checkpoint saves.
	epoch       int              // finished epochs
	stepInEpoch int              // steps done in the unfinished epoch (0 between epochs)
	epochStart  []byte           // the shuffling source before the unfinished epoch's shuffle
	partial     EpochResult      // the unfinished epoch's running sums
	history     []EpochResult    // the finished epochs
	data        dataKey          // the training set of the unfinished epoch
	draws       map[int][]uint64 // after Resume: dropout draw counts of graphs not built yet
}

// NewTrainer validates cfg and returns a trainer for m.
func NewTrainer(m *Model, cfg TrainConfig) (*Trainer, error) {
	if m == nil {
		return nil, fmt.Errorf("vat: NewTrainer: model is nil")
	}
	if cfg.Epochs == 0 {
		cfg.Epochs = 12
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 128
	}
	if cfg.Epochs < 0 {
		return nil, fmt.Errorf("vat: TrainConfig.Epochs = %d: want >= 1", cfg.Epochs)
	}
	if cfg.BatchSize < 0 || cfg.BatchSize > 65536 {
		return nil, fmt.Errorf("vat: TrainConfig.BatchSize = %d: want 1 to 65536", cfg.BatchSize)
	}
	t := &Trainer{model: m, cfg: cfg, graphs: map[int]*stepGraph{},
		pcg: rng.NewPCG(cfg.Seed, rng.Shuffle, 0), noise: rng.NewChunked(rng.SplitMix64(cfg.Seed ^ rng.SplitMix64(rng.Noise)))}
	t.shuffle = rand.New(t.pcg)
	var err error
	if t.opt, err = optimizerOrDefault(cfg.Optimizer, Adadelta{}); err != nil {
		return nil, err
	}
	if t.sched, err = scheduleOrDefault(cfg.Schedule, Constant{}); err != nil {
		return nil, err
	}
	if cfg.VAT != nil {
		v, err := cfg.VAT.withDefaults()
		if err != nil {
			return nil, err
		}
		t.vat = &v
	}
	return t, nil
}

// Config returns the trainer's configuration with defaults filled in. It
// shares no state with the trainer: NewTrainer(m2, t.Config()) starts a
// fresh run.
func (t *Trainer) Config() TrainConfig {
	c := t.cfg
	c.Optimizer, c.Schedule = t.opt, t.sched
	if t.vat != nil {
		v := *t.vat
		c.VAT = &v
	}
	return c
}

// Fit trains until the configured number of epochs have finished,
// evaluating on test after each one when test is non-nil. It returns the
// results of the epochs it finished. When ctx is cancelled it stops after
// the current step and returns what finished with an error wrapping
// ctx.Err(); the trainer then holds the unfinished epoch's place, so that a
// later Fit (or a Checkpoint and Resume) continues from that step.
func (t *Trainer) Fit(ctx context.Context, train, test *Dataset) ([]EpochResult, error) {
	if err := train.validate("training", t.model); err != nil {
		return nil, err
	}
	if test != nil {
		if err := test.validate("test", t.model); err != nil {
			return nil, err
		}
	}
	var results []EpochResult
	for t.epoch < t.cfg.Epochs {
		r, err := t.TrainEpoch(ctx, train)
		if err != nil {
			return results, err
		}
		if test != nil {
			start := time.Now()
			ev, err := t.model.Evaluate(test)
			if err != nil {
				return results, err
			}
			r.TestLoss, r.TestAccuracy, r.EvalSeconds = ev.Loss, ev.Accuracy, time.Since(start).Seconds()
		} else {
			r.TestLoss, r.TestAccuracy = math.NaN(), math.NaN()
		}
		t.history[len(t.history)-1] = r
		results = append(results, r)
		if t.cfg.OnEpoch != nil {
			t.cfg.OnEpoch(r)
		}
	}
	return results, nil
}

// TrainEpoch makes one pass over train in a fresh random order, or
// finishes the pass a cancelled TrainEpoch or Fit left (or a resumed
// checkpoint recorded), on the same training set. Its result has no test
// figures.
func (t *Trainer) TrainEpoch(ctx context.Context, train *Dataset) (EpochResult, error) {
	if err := train.validate("training", t.model); err != nil {
		return EpochResult{}, err
	}
	n, bs := train.Len(), t.cfg.BatchSize
	steps := (n + bs - 1) / bs
	key := keyOf(train)
	if t.stepInEpoch == 0 {
		state, err := t.pcg.MarshalBinary()
		if err != nil {
			return EpochResult{}, fmt.Errorf("vat: saving the shuffling state: %w", err)
		}
		t.epochStart, t.partial, t.data = state, EpochResult{Epoch: t.epoch + 1}, key
	} else {
		if key != t.data || t.stepInEpoch >= steps {
			return t.partial, fmt.Errorf("vat: TrainEpoch: epoch %d stopped after %d steps on a training set of %d images; continue it on the same set (this one has %d)",
				t.epoch+1, t.stepInEpoch, t.data.N, n)
		}
		// Shuffle again from the epoch's start: the same order, and the
		// source ends where it did.
		if err := t.pcg.UnmarshalBinary(t.epochStart); err != nil {
			return t.partial, fmt.Errorf("vat: restoring the shuffling state: %w", err)
		}
	}
	if cap(t.perm) < n {
		t.perm = make([]int, n)
	}
	t.perm = t.perm[:n]
	for i := range t.perm {
		t.perm[i] = i
	}
	t.shuffle.Shuffle(n, func(i, j int) { t.perm[i], t.perm[j] = t.perm[j], t.perm[i] })
	start := time.Now()
	r := &t.partial
	for s := t.stepInEpoch; s < steps; s++ {
		if err := ctx.Err(); err != nil {
			r.Seconds += time.Since(start).Seconds()
			if t.stepInEpoch == 0 { // no step yet: undo the shuffle, as if the epoch had not begun
				if uerr := t.pcg.UnmarshalBinary(t.epochStart); uerr != nil {
					return *r, fmt.Errorf("vat: restoring the shuffling state: %w", uerr)
				}
			}
			return *r, fmt.Errorf("vat: training stopped in epoch %d after %d of %d steps: %w", t.epoch+1, s, steps, err)
		}
		idx := t.perm[s*bs : min((s+1)*bs, n)]
		loss, ce, lds, err := t.step(train, idx, t.epoch*steps+s, t.cfg.Epochs*steps)
		if err != nil {
			return *r, err
		}
		w := float64(len(idx)) / float64(n)
		r.TrainLoss += w * loss
		r.TrainCE += w * ce
		r.TrainLDS += w * lds
		t.stepInEpoch = s + 1
		if t.cfg.OnStep != nil {
			t.cfg.OnStep(StepInfo{Epoch: t.epoch + 1, Step: s + 1, Steps: steps, Loss: loss})
		}
	}
	r.Seconds += time.Since(start).Seconds()
	t.epoch++
	t.stepInEpoch = 0
	t.history = append(t.history, *r)
	return *r, nil
}

// History returns the results of every finished epoch, those before a
// Resume included (test figures are set by Fit).
func (t *Trainer) History() []EpochResult { return append([]EpochResult(nil), t.history...) }

// Model returns the model the trainer trains.
func (t *Trainer) Model() *Model { return t.model }

// step trains on the images idx of d, as step it (0-based) of a run of
// steps.
func (t *Trainer) step(d *Dataset, idx []int, it, steps int) (loss, ce, lds float64, err error) {
	tg, err := t.graph(len(idx))
	if err != nil {
		return 0, 0, 0, err
	}
	x, y := tg.xl.Data().([]float32), tg.yl.Data().([]float32)
	d.fill(x, y, idx, t.model.classes)
	for _, n := range tg.noise {
		// Data() allocates: call it once. On a GPU the noise is drawn there.
		if err := backend.Normals(&t.noise, n.Data().([]float32)); err != nil {
			return 0, 0, 0, err
		}
	}
	backend.MarkHostWritten(x, y)
	if loss, ce, lds, _, err = tg.run(); err != nil {
		return 0, 0, 0, err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return 0, 0, 0, fmt.Errorf("vat: the loss became %v in epoch %d; lower the learning rate or VAT's alpha/eps", loss, t.epoch+1)
	}
	if t.grads == nil {
		t.grads = make([]*tensor.Dense, len(t.model.params))
	}
	for i := range t.grads {
		t.grads[i] = tg.grads[i].Value().(*tensor.Dense)
	}
	if t.state == nil {
		t.state = t.opt.newState(t.model.params)
	}
	lr, decaying := t.sched.Rate(t.opt.baseRate(), it, steps)
	if err := t.state.step(t.model.params, t.grads, lr, decaying); err != nil {
		return 0, 0, 0, err
	}
	t.model.countStatUpdate()
	return loss, ce, lds, nil
}

// graph returns the compiled training graph for batches of n, building it
// on first use. An epoch needs at most two: full batches and the remainder.
func (t *Trainer) graph(n int) (*stepGraph, error) {
	if tg, ok := t.graphs[n]; ok {
		return tg, nil
	}
	tg, err := newTrainGraph(t.model, n, t.vat, t.cfg.Seed)
	if err != nil {
		return nil, err
	}
	if d, ok := t.draws[n]; ok {
		if err := setDraws(tg.streams, d, fmt.Sprintf("batches of %d", n)); err != nil {
			return nil, err
		}
		delete(t.draws, n)
	}
	t.graphs[n] = tg
	return tg, nil
}
