package vat

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

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
	// EarlyStop, if set, ends the run when its metric stops improving
	// over the epochs' reports (Fit only).
	EarlyStop *EarlyStopping
	// OnStep, if set, is called after every training step.
	OnStep func(StepInfo)
	// OnEpoch, if set, is called with every epoch's report, test
	// evaluation included (Fit only).
	OnEpoch func(Report)
}

// Trainer trains a Model by minibatches on cross-entropy, plus α·LDS when
// VAT is on, epoch after epoch over a labeled training set (see
// TrainConfig). SemiTrainer is its semi-supervised sibling; both run the
// same training core, report with StepInfo and Report, and checkpoint.
type Trainer struct {
	loop
	model   *Model
	cfg     TrainConfig
	vat     *VATConfig
	graphs  map[int]*stepGraph
	pcg     *rand.PCG  // the shuffling stream's source
	shuffle *rand.Rand // draws from pcg
	noise   rng.Chunked
	perm    []int

	// Progress, all of which Checkpoint saves.
	epoch       int              // finished epochs
	stepInEpoch int              // steps done in the unfinished epoch (0 between epochs)
	epochStart  []byte           // the shuffling source before the unfinished epoch's shuffle
	partial     Report           // the unfinished epoch's running sums
	history     []Report         // the finished epochs
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
	core, err := newLoop(m, cfg.Optimizer, Adadelta{}, cfg.Schedule, Constant{}, cfg.EarlyStop, "TrainConfig")
	if err != nil {
		return nil, err
	}
	t := &Trainer{loop: core, model: m, cfg: cfg, graphs: map[int]*stepGraph{},
		pcg: rng.NewPCG(cfg.Seed, rng.Shuffle, 0), noise: rng.NewChunked(rng.SplitMix64(cfg.Seed ^ rng.SplitMix64(rng.Noise)))}
	t.shuffle = rand.New(t.pcg)
	if cfg.VAT != nil {
		v, err := cfg.VAT.validated() // ε, ξ and the probe are resolved on the data (resolveVAT)
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
	c.VAT, c.EarlyStop = clonePtr(t.vat), clonePtr(t.early)
	return c
}

// Fit trains until the configured number of epochs have finished,
// evaluating on test after each one when test is non-nil. It returns the
// results of the epochs it finished. When ctx is cancelled it stops after
// the current step and returns what finished with an error wrapping
// ctx.Err(); the trainer then holds the unfinished epoch's place, so that a
// later Fit (or a Checkpoint and Resume) continues from that step. With
// EarlyStop it ends early, without an error, when its metric stops
// improving; Stopped then reports it, and a later Fit does nothing.
func (t *Trainer) Fit(ctx context.Context, train, test *Dataset) ([]Report, error) {
	if err := train.validate("training", t.model); err != nil {
		return nil, err
	}
	if t.early.needsTest() && test == nil {
		return nil, fmt.Errorf("vat: TrainConfig.EarlyStop watches %v: Fit needs a test set", t.early.Metric)
	}
	if test != nil {
		if err := test.validate("test", t.model); err != nil {
			return nil, err
		}
	}
	var results []Report
	for t.epoch < t.cfg.Epochs && !t.stopped {
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
		t.judge(r)
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
func (t *Trainer) TrainEpoch(ctx context.Context, train *Dataset) (Report, error) {
	if err := train.validate("training", t.model); err != nil {
		return Report{}, err
	}
	t.resolveVAT(train)
	n, bs := train.Len(), t.cfg.BatchSize
	steps := (n + bs - 1) / bs
	key := keyOf(train)
	if t.stepInEpoch == 0 {
		state, err := t.pcg.MarshalBinary()
		if err != nil {
			return Report{}, fmt.Errorf("vat: saving the shuffling state: %w", err)
		}
		t.epochStart, t.partial, t.data = state, Report{Epoch: t.epoch + 1}, key
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
		it := t.epoch*steps + s
		st := StepInfo{Epoch: t.epoch + 1, Step: s + 1, Steps: steps, Iteration: it + 1, Iterations: t.cfg.Epochs * steps}
		if err := t.step(train, idx, &st); err != nil {
			return *r, err
		}
		w := float64(len(idx)) / float64(n)
		r.TrainLoss += w * st.Loss
		r.TrainCE += w * st.CE
		r.TrainLDS += w * st.LDS
		r.Iteration = it + 1
		t.stepInEpoch = s + 1
		if t.cfg.OnStep != nil {
			t.cfg.OnStep(st)
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
func (t *Trainer) History() []Report { return append([]Report(nil), t.history...) }

// Model returns the model the trainer trains.
func (t *Trainer) Model() *Model { return t.model }

// resolveVAT fills in VAT's data-relative defaults (VATConfig) from the
// training set, once, before the first graph is built.
func (t *Trainer) resolveVAT(train *Dataset) {
	if t.vat != nil && (t.vat.needsScale() || t.vat.Probe == ProbeAuto) {
		v := t.vat.forModel(t.model, scaleOrOne(DataScale(train)))
		t.vat = &v
	}
}

// step trains on the samples idx of d: the step st describes, whose loss
// parts and learning rate it fills in.
func (t *Trainer) step(d *Dataset, idx []int, st *StepInfo) error {
	tg, err := t.graph(len(idx))
	if err != nil {
		return err
	}
	x, y := tg.xl.Data().([]float32), tg.yl.Data().([]float32)
	d.fill(x, y, idx, t.model.classes)
	for _, n := range tg.noise {
		// Data() allocates: call it once. On a GPU the noise is drawn there.
		if err := backend.Normals(&t.noise, n.Data().([]float32)); err != nil {
			return err
		}
	}
	backend.MarkHostWritten(x, y)
	if st.Loss, st.CE, st.LDS, _, err = tg.run(); err != nil {
		return err
	}
	if t.vat != nil {
		st.Alpha = t.vat.Alpha
	}
	t.rate(st, st.Iteration-1, st.Iterations)
	return t.update(tg, st, st.Iteration-1, st.Iterations)
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
