package vat

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/rng"
)

// SemiSupervisedConfig configures semi-supervised training: every step
// takes a batch of labeled samples and a batch of unlabeled ones, and
// minimizes
//
//	CE(labeled batch) + α·LDS(unlabeled batch) + β·H(unlabeled batch) + γ·KL(p̄ ‖ π)
//
// with H the mean entropy of the predictions ("VAT+EntMin" when β > 0) and
// the last term the class balance of the unlabeled batch (Balance). The
// labeled set, small, is cycled many times; the unlabeled set is iterated
// independently; each is reshuffled when exhausted, and batches always have
// their full size. As in the official code, the labeled batch's clean pass
// alone updates batch normalization's running averages; the unlabeled
// passes use their batch's statistics without updating them. The zero
// value (with VAT set) is the official MNIST setting: batches of 100 and
// 250, Adam at 0.002 decaying linearly over the last third.
type SemiSupervisedConfig struct {
	// Iterations is the number of training steps; 0 means 10,000.
	Iterations int
	// LabeledBatch and UnlabeledBatch are the two batch sizes; 0 means
	// 100 and 250 (the official MNIST code's).
	LabeledBatch, UnlabeledBatch int
	// VAT adds α·LDS on the unlabeled batch; nil trains on the labeled
	// samples alone (the "supervised" baseline). A VATConfig that sets
	// neither Eps nor EpsScale has ε chosen from the labeled samples by
	// EpsSearch.
	VAT *VATConfig
	// EpsSearch configures how ε is chosen when VAT leaves it to the
	// trainer: the zero value searches EpsScale {0.05, 0.2, 0.7} on 30 %
	// of the labels held out, min(Iterations, 1000) updates per candidate;
	// Off keeps 0.05. It must be zero when VAT fixes ε.
	EpsSearch EpsSearch
	// VATOnLabeled measures LDS on the labeled batch too (LDS is then the
	// mean over both batches' samples). Off by default, as in the official
	// code, whose unlabeled pool is the whole training set; here the pool
	// excludes the labeled samples, which are then 0.2 % of what VAT sees
	// with 100 labels, so the choice rarely matters.
	VATOnLabeled bool
	// EntMin is β, the weight of the unlabeled predictions' entropy, >= 0;
	// 0 means no entropy term.
	EntMin float64
	// WarmUp is the fraction of the iterations over which α grows linearly
	// from 0 to its value, in [0, 1); 0 means no warm-up (as the official
	// code).
	WarmUp float64
	// EntMinWarmUp is the fraction of the iterations over which β grows
	// linearly from 0 to EntMin, in [0, 1); 0 means none. A β at full
	// weight from the first step makes the model confident in its early
	// mistakes (measured on MNIST with 100 labels: README).
	EntMinWarmUp float64
	// Balance is γ, the weight of the class-balance term KL(p̄ ‖ π) on the
	// unlabeled batch (ClassBalance: p̄ is the batch's mean prediction, π
	// the class frequencies of the labeled samples), >= 0; 0 means none.
	// It is meant to keep VAT from handing a whole class to its
	// neighbours, which VAT's own loss does not see (on MNIST with 100
	// labels, one split lost three quarters of its 9s to 4 and 7 over
	// 19,000 updates). Measured so far it does harm: γ = 1 on that task
	// raised the error from about 6 % to 39 % within 5,000 updates
	// (docs/semisup/balance). Validate any γ on held-out labels.
	Balance float64
	// Align reweights VAT's target on the unlabeled batch by the class
	// prior over the model's running mean prediction (distribution
	// alignment, from ReMixMatch): LDS becomes KL(p̃ ‖ p(y|x + r_adv)) with
	// p̃ ∝ p(y|x)·π/p̄, π the class frequencies of the labeled samples and
	// p̄ the mean clean prediction over about the last 128 unlabeled
	// batches (starting at π). A class the model has begun to under-predict
	// then weighs more in the targets of the samples it is unsure about,
	// while confident predictions barely change; unlike Balance, no
	// gradient flows through the batch's mean. It needs VAT and every class
	// among the labeled samples; off by default.
	Align bool
	// Optimizer is the training method; nil means Adam{LR: 0.002} (the
	// official MNIST rate).
	Optimizer Optimizer
	// Schedule shapes the learning rate over the Iterations; nil means
	// LinearDecay{} (constant for two thirds, then linearly to zero, with
	// Adam's β₁ at its DecayBeta1 meanwhile: the official code's).
	Schedule Schedule
	// EvalEvery is the number of steps between evaluations on the test
	// set; 0 means Iterations/20.
	EvalEvery int
	// BNStats chooses the statistics batch normalization evaluates with:
	// the zero value, PopulationBNStats, recomputes them over the unlabeled
	// pool before every report that evaluates a test set, and at the end
	// of the run (reports say so); RunningBNStats keeps the running
	// averages of the labeled batches. A network without BatchNorm
	// ignores it.
	BNStats BNStats
	// Seed fixes the batches' order, the dropout masks and the VAT noise.
	// (The initial weights come from the model, the split from
	// SplitLabeled.)
	Seed uint64
	// EarlyStop, if set, ends the run when its metric stops improving
	// over the reports.
	EarlyStop *EarlyStopping
	// OnStep, if set, is called after every step; OnEval after every
	// report. Both may call SemiTrainer.Checkpoint.
	OnStep func(StepInfo)
	OnEval func(Report)
}

// defaultLabeledBatch is SemiSupervisedConfig.LabeledBatch's default (the
// official MNIST code's).
const defaultLabeledBatch = 100

// maxStatsSamples bounds the samples PopulationBNStats computes its
// statistics over: 10,000 estimate a mean or variance to about 1 % of the
// feature's spread, and keep the cost of a report bounded on large pools.
const maxStatsSamples = 10000

// strided returns d itself if it holds at most n samples, else every k-th
// of its samples (k = ⌈Len/n⌉): spread over the whole pool, so that a pool
// sorted by class (LoadImageFolder's) is sampled evenly.
func strided(d *Dataset, n int) *Dataset {
	if d.Len() <= n {
		return d
	}
	k := (d.Len() + n - 1) / n
	idx := make([]int, 0, n)
	for i := 0; i < d.Len(); i += k {
		idx = append(idx, i)
	}
	return d.subset(idx)
}

// BNStats is the statistics batch normalization uses where a SemiTrainer
// evaluates the model (SemiSupervisedConfig.BNStats).
type BNStats int

const (
	// PopulationBNStats, the default, replaces the running averages by
	// population statistics over the unlabeled pool (Model.PopulationStats;
	// the labeled set when there is no pool) before every report that
	// evaluates a test set and at the end of the run, as the official VAT
	// code does after training; the model Fit leaves behind has them. A
	// pool of more than 10,000 samples is sampled evenly (every k-th
	// sample) down to 10,000, so a report costs at most a forward pass over
	// 10,000 samples. On 20-D Gaussian blobs with batch norm (30 labels,
	// 5,000 updates) it turned 84 / 60 / 94 % accuracy into 96 / 96 / 96 %
	// (docs/defaults): running averages of small labeled batches describe
	// the labeled samples, not the data.
	PopulationBNStats BNStats = iota
	// RunningBNStats keeps the exponential running averages that the
	// labeled batches' clean passes update.
	RunningBNStats
)

// String returns "population" or "running".
func (s BNStats) String() string {
	switch s {
	case PopulationBNStats:
		return "population"
	case RunningBNStats:
		return "running"
	}
	return fmt.Sprintf("BNStats(%d)", int(s))
}

// ParseBNStats returns the BNStats that String names.
func ParseBNStats(name string) (BNStats, error) {
	for _, s := range []BNStats{PopulationBNStats, RunningBNStats} {
		if name == s.String() {
			return s, nil
		}
	}
	return 0, fmt.Errorf("vat: batch norm statistics %q: want population or running", name)
}

// SemiTrainer trains a Model from a few labeled samples and many
// unlabeled ones (see SemiSupervisedConfig). It keeps its place in the
// run: a Fit that was cancelled continues where it stopped when called
// again (on the same data), Checkpoint saves that place and ResumeSemi
// restores it in another process.
type SemiTrainer struct {
	loop
	model *Model
	cfg   SemiSupervisedConfig
	vat   *VATConfig
	noise rng.Chunked
	graph *stepGraph

	// Progress, all of which Checkpoint saves.
	it         int         // iterations done
	lab, unl   *cycler     // the batch orders; nil before the first Fit (unl nil without an unlabeled term)
	labKey     dataKey     // the data the orders were made for
	unlKey     dataKey     //
	sum        Report      // loss sums since the last evaluation
	sumSteps   int         //
	history    []Report    // every evaluation
	epsChoices []EpsChoice // the ε search's candidates (EpsSearch)
	align      *alignment  // Align's running mean; nil when off
	alignMean  []float64   // after ResumeSemi: p̄, for the alignment not made yet
	draws      []uint64    // after ResumeSemi: the dropout ops' draw counts, for the graph not built yet
	cursors    [2]*cursor  // after ResumeSemi: the batch orders, for the cyclers not made yet
}

// NewSemiTrainer validates cfg and returns a semi-supervised trainer for m.
func NewSemiTrainer(m *Model, cfg SemiSupervisedConfig) (*SemiTrainer, error) {
	if m == nil {
		return nil, fmt.Errorf("vat: NewSemiTrainer: model is nil")
	}
	if cfg.Iterations == 0 {
		cfg.Iterations = 10000
	}
	if cfg.LabeledBatch == 0 {
		cfg.LabeledBatch = defaultLabeledBatch
	}
	if cfg.UnlabeledBatch == 0 {
		cfg.UnlabeledBatch = 250
	}
	if cfg.EvalEvery == 0 {
		cfg.EvalEvery = max(1, cfg.Iterations/20)
	}
	switch {
	case cfg.Iterations < 1:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.Iterations = %d: want >= 1", cfg.Iterations)
	case cfg.LabeledBatch < 1 || cfg.LabeledBatch > 65536:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.LabeledBatch = %d: want 1 to 65536", cfg.LabeledBatch)
	case cfg.UnlabeledBatch < 1 || cfg.UnlabeledBatch > 65536:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.UnlabeledBatch = %d: want 1 to 65536", cfg.UnlabeledBatch)
	case !(cfg.EntMin >= 0) || math.IsInf(cfg.EntMin, 0):
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.EntMin = %v: want a finite number >= 0", cfg.EntMin)
	case !(cfg.WarmUp >= 0 && cfg.WarmUp < 1):
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.WarmUp = %v: want a fraction in [0, 1)", cfg.WarmUp)
	case !(cfg.EntMinWarmUp >= 0 && cfg.EntMinWarmUp < 1):
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.EntMinWarmUp = %v: want a fraction in [0, 1)", cfg.EntMinWarmUp)
	case cfg.EntMinWarmUp > 0 && cfg.EntMin == 0:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.EntMinWarmUp is set without EntMin")
	case !(cfg.Balance >= 0) || math.IsInf(cfg.Balance, 0):
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.Balance = %v: want a finite number >= 0", cfg.Balance)
	case cfg.EvalEvery < 1:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.EvalEvery = %d: want >= 1", cfg.EvalEvery)
	case cfg.BNStats != PopulationBNStats && cfg.BNStats != RunningBNStats:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.BNStats = %d: want PopulationBNStats or RunningBNStats", cfg.BNStats)
	case cfg.Align && cfg.VAT == nil:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.Align is set without VAT")
	case cfg.VATOnLabeled && cfg.VAT == nil:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.VATOnLabeled is set without VAT")
	}
	core, err := newLoop(m, cfg.Optimizer, Adam{LR: 0.002}, cfg.Schedule, LinearDecay{}, cfg.EarlyStop, "SemiSupervisedConfig")
	if err != nil {
		return nil, err
	}
	t := &SemiTrainer{loop: core, model: m, cfg: cfg, noise: rng.NewChunked(rng.SplitMix64(cfg.Seed ^ rng.SplitMix64(rng.Noise)))}
	t.cfg.Optimizer, t.cfg.Schedule, t.cfg.EarlyStop = t.opt, t.sched, t.early
	if cfg.VAT != nil {
		v, err := cfg.VAT.validated() // ε, ξ and the probe are resolved on the data in Fit
		if err != nil {
			return nil, err
		}
		t.vat = &v
		t.cfg.VAT = &v
	}
	if t.cfg.EpsSearch, err = cfg.EpsSearch.validate(t.vat, cfg.Iterations); err != nil {
		return nil, err
	}
	return t, nil
}

// Config returns the trainer's configuration with defaults filled in. It
// shares no state with the trainer: NewSemiTrainer(m2, t.Config()) starts
// a fresh run.
func (t *SemiTrainer) Config() SemiSupervisedConfig {
	c := t.cfg
	c.VAT, c.EarlyStop = clonePtr(t.vat), clonePtr(t.early)
	c.EpsSearch.Grid = slices.Clone(c.EpsSearch.Grid)
	if !t.searches() { // nothing to search (any more): only a standing Off stays
		c.EpsSearch = EpsSearch{Off: c.EpsSearch.Off && leavesEps(t.vat)}
	}
	return c
}

// Model returns the model the trainer trains.
func (t *SemiTrainer) Model() *Model { return t.model }

// History returns every evaluation of the run, those before a ResumeSemi
// included.
func (t *SemiTrainer) History() []Report { return append([]Report(nil), t.history...) }

// Iteration returns the number of iterations done.
func (t *SemiTrainer) Iteration() int { return t.it }

// Fit trains until the configured iterations are done, on labeled and
// unlabeled (whose labels are never read), evaluating on test every
// EvalEvery steps and after the last when test is non-nil. It returns the
// evaluations it made. When ctx is cancelled it stops after the current
// step and returns them with an error wrapping ctx.Err(); the trainer then
// holds its place, so that a later Fit on the same data (or a Checkpoint
// and ResumeSemi) continues from that step. Fit on a finished run is an
// error.
func (t *SemiTrainer) Fit(ctx context.Context, labeled, unlabeled, test *Dataset) ([]Report, error) {
	m := t.model
	cfg := t.cfg
	switch {
	case t.stopped:
		return nil, fmt.Errorf("vat: SemiTrainer.Fit: the run has finished: early stopping ended it at iteration %d; start another with NewSemiTrainer", t.it)
	case t.it >= cfg.Iterations:
		return nil, fmt.Errorf("vat: SemiTrainer.Fit: the run has finished its %d iterations; start another with NewSemiTrainer", cfg.Iterations)
	case t.early.needsTest() && test == nil:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.EarlyStop watches %v: Fit needs a test set", t.early.Metric)
	}
	if err := labeled.validate("labeled", m); err != nil {
		return nil, err
	}
	needU := t.usesUnlabeled()
	if needU {
		if err := unlabeled.validateSamples("unlabeled", m); err != nil { // its labels, if any, are never read
			return nil, err
		}
	}
	if test != nil {
		if err := test.validate("test", m); err != nil {
			return nil, err
		}
	}
	if t.graph == nil {
		if t.searches() {
			if err := t.searchEps(ctx, labeled, unlabeled); err != nil {
				return nil, err
			}
		}
		if t.vat != nil && (t.vat.needsScale() || t.vat.Probe == ProbeAuto) {
			v := t.vat.forModel(m, scaleOrOne(DataScale(labeled, unlabeled)))
			t.vat, t.cfg.VAT = &v, &v
		}
		sp := stepSpec{labeled: cfg.LabeledBatch, vat: t.vat, vatOnLabeled: cfg.VATOnLabeled, entMin: cfg.EntMin, balance: cfg.Balance,
			dropout: true, updateStats: true, seed: rng.SplitMix64(cfg.Seed ^ 0x5e31)}
		if needU {
			sp.unlabeled = cfg.UnlabeledBatch
		}
		var al *alignment
		if cfg.Balance > 0 || cfg.Align {
			prior, err := classPrior(labeled, m.classes)
			if err != nil {
				return nil, err
			}
			sp.prior, sp.align = prior, cfg.Align
			if cfg.Align {
				al = newAlignment(prior)
				if t.alignMean != nil {
					if err := al.restore(t.alignMean); err != nil {
						return nil, fmt.Errorf("vat: SemiTrainer.Fit: the checkpoint's %w", err)
					}
				}
			}
		}
		g, err := newStepGraph(m, sp)
		if err != nil {
			return nil, err
		}
		t.align, t.alignMean = al, nil
		if t.draws != nil {
			if err := setDraws(g.streams, t.draws, "the semi-supervised step"); err != nil {
				return nil, err
			}
			t.draws = nil
		}
		t.graph = g
	}
	if err := t.orders(labeled, unlabeled, needU); err != nil {
		return nil, err
	}
	g := t.graph
	var evals []Report
	var statsPool *Dataset // the samples population statistics are computed over, made at the first report
	start := time.Now()
	px := size(m.inShape)
	for t.it < cfg.Iterations {
		it := t.it
		if err := ctx.Err(); err != nil {
			t.sum.Seconds += time.Since(start).Seconds()
			return evals, fmt.Errorf("vat: training stopped after %d of %d iterations: %w", it, cfg.Iterations, err)
		}
		xl, yl := g.xl.Data().([]float32), g.yl.Data().([]float32)
		labeled.fill(xl, yl, t.lab.next(cfg.LabeledBatch), m.classes)
		backend.MarkHostWritten(xl, yl)
		if t.unl != nil {
			xu := g.xu.Data().([]float32)
			for i, j := range t.unl.next(cfg.UnlabeledBatch) {
				copy(xu[i*px:(i+1)*px], unlabeled.Images[j*px:(j+1)*px])
			}
			backend.MarkHostWritten(xu)
		}
		for _, n := range g.noise {
			if err := backend.Normals(&t.noise, n.Data().([]float32)); err != nil {
				return evals, err
			}
		}
		st := StepInfo{Iteration: it + 1, Iterations: cfg.Iterations}
		t.rate(&st, it, cfg.Iterations)
		if t.vat != nil {
			st.Alpha = warmed(t.vat.Alpha, cfg.WarmUp, it, cfg.Iterations)
			g.setAlpha(st.Alpha)
		}
		if cfg.EntMin > 0 {
			st.Beta = warmed(cfg.EntMin, cfg.EntMinWarmUp, it, cfg.Iterations)
			g.setBeta(st.Beta)
		}
		if t.align != nil {
			t.align.before(g.align)
		}
		var err error
		if st.Loss, st.CE, st.LDS, st.Entropy, err = g.run(); err != nil {
			return evals, err
		}
		if t.align != nil {
			t.align.after(g.align)
		}
		st.Balance = g.balance()
		if err := t.update(g, &st, it, cfg.Iterations); err != nil {
			return evals, err
		}
		t.sum.TrainLoss += st.Loss
		t.sum.TrainCE += st.CE
		t.sum.TrainLDS += st.LDS
		t.sum.TrainEntropy += st.Entropy
		t.sumSteps++
		evalNow := (it+1)%cfg.EvalEvery == 0 || it+1 == cfg.Iterations
		if evalNow {
			n := float64(t.sumSteps)
			e := Report{Iteration: it + 1, TrainLoss: t.sum.TrainLoss / n, TrainCE: t.sum.TrainCE / n,
				TrainLDS: t.sum.TrainLDS / n, TrainEntropy: t.sum.TrainEntropy / n,
				Seconds: t.sum.Seconds + time.Since(start).Seconds(), TestLoss: math.NaN(), TestAccuracy: math.NaN()}
			if cfg.BNStats == PopulationBNStats && m.hasBatchNorm() && (test != nil || it+1 == cfg.Iterations) {
				if statsPool == nil {
					pool := unlabeled
					if pool.Len() == 0 {
						pool = labeled
					}
					statsPool = strided(pool, maxStatsSamples)
				}
				if err := m.PopulationStats(statsPool, cfg.UnlabeledBatch); err != nil {
					return evals, err
				}
				e.PopulationStats = true
			}
			if test != nil {
				ev, err := m.Evaluate(test)
				if err != nil {
					return evals, err
				}
				e.TestLoss, e.TestAccuracy = ev.Loss, ev.Accuracy
			}
			evals = append(evals, e)
			t.history = append(t.history, e)
			t.sum, t.sumSteps, start = Report{}, 0, time.Now()
			t.judge(e)
		}
		t.it++ // the step is done: callbacks may checkpoint it
		if cfg.OnStep != nil {
			cfg.OnStep(st)
		}
		if evalNow && cfg.OnEval != nil {
			cfg.OnEval(evals[len(evals)-1])
		}
		if t.stopped {
			break
		}
	}
	return evals, nil
}

// orders makes the two batch orders on the first Fit (or restores them
// from a checkpoint), or checks that a continued run has the data it began
// on.
func (t *SemiTrainer) orders(labeled, unlabeled *Dataset, needU bool) error {
	lk := keyOf(labeled)
	var uk dataKey
	if needU {
		uk = dataKey{N: unlabeled.Len()}
	}
	if t.lab != nil {
		if lk != t.labKey || uk != t.unlKey {
			return fmt.Errorf("vat: SemiTrainer.Fit: the run began on %d labeled and %d unlabeled samples; continue it on the same sets (these have %d and %d)",
				t.labKey.N, t.unlKey.N, lk.N, uk.N)
		}
		return nil
	}
	// The orders are the trainer's only once they hold the checkpoint's
	// places: a Fit refused here leaves the next one to restore them.
	lab := newCycler(labeled.Len(), rng.NewPCG(t.cfg.Seed, rng.Shuffle, 0))
	var unl *cycler
	if needU {
		unl = newCycler(unlabeled.Len(), rng.NewPCG(t.cfg.Seed, rng.Unlabeled, 0))
	}
	for k, c := range []*cycler{lab, unl} {
		cur := t.cursors[k]
		if cur == nil {
			continue
		}
		if c == nil || cur.data != []dataKey{lk, uk}[k] || len(cur.order) != len(c.perm) {
			return fmt.Errorf("vat: SemiTrainer.Fit: the checkpoint's run began on %d labeled and %d unlabeled samples; continue it on the same sets (these have %d and %d)",
				t.cursors[0].data.N, cursorN(t.cursors[1]), lk.N, uk.N)
		}
		if err := c.restore(cur); err != nil {
			return err
		}
	}
	t.lab, t.unl, t.labKey, t.unlKey = lab, unl, lk, uk
	t.cursors = [2]*cursor{}
	return nil
}

// warmed returns w grown linearly from 0 over the first frac of steps:
// w·((it+1)/(frac·steps)) while that is below w.
func warmed(w, frac float64, it, steps int) float64 {
	if warm := frac * float64(steps); float64(it+1) < warm {
		return w * (float64(it+1) / warm)
	}
	return w
}

// usesUnlabeled reports whether the loss has a term on the unlabeled batch
// (VAT, the entropy or the class balance), so that the run draws unlabeled
// batches and its checkpoints keep their order.
func (t *SemiTrainer) usesUnlabeled() bool {
	return t.vat != nil || t.cfg.EntMin > 0 || t.cfg.Balance > 0
}

// classPrior returns the class frequencies of the labeled samples, the π of
// the class-balance term and of Align; every class must have a labeled
// sample.
func classPrior(labeled *Dataset, classes int) ([]float64, error) {
	counts := make([]float64, classes)
	for _, l := range labeled.Labels {
		counts[l]++
	}
	for c, n := range counts {
		if n == 0 {
			return nil, fmt.Errorf("vat: SemiSupervisedConfig.Balance and Align: class %d has no labeled sample, so its share of the unlabeled data is unknown", c)
		}
		counts[c] = n / float64(len(labeled.Labels))
	}
	return counts, nil
}
