package vat

import (
	"fmt"

	"github.com/org/vat/internal/safetensors"
)

// semiRecord is a semi-supervised run in a checkpoint's header: its
// configuration (without callbacks, optimizer and schedule) and progress.
// The batch orders themselves are tensors (orderTensors).
type semiRecord struct {
	Iterations     int            `json:"iterations"`
	LabeledBatch   int            `json:"labeled_batch"`
	UnlabeledBatch int            `json:"unlabeled_batch"`
	VAT            *VATConfig     `json:"vat,omitempty"`
	EpsSearch      *EpsSearch     `json:"eps_search,omitempty"`  // a search still to run (before the first Fit); absent before 0.8.0
	EpsChoices     []EpsChoice    `json:"eps_choices,omitempty"` // the search's candidates; absent before 0.8.0
	VATOnLabeled   bool           `json:"vat_on_labeled,omitempty"`
	EntMin         float64        `json:"entmin,omitempty"`
	WarmUp         float64        `json:"warmup,omitempty"`
	EntMinWarmUp   float64        `json:"entmin_warmup,omitempty"`
	Balance        float64        `json:"balance,omitempty"`
	Align          bool           `json:"align,omitempty"`
	AlignMean      []float64      `json:"align_mean,omitempty"` // Align's running mean prediction p̄
	EvalEvery      int            `json:"eval_every"`
	EarlyStop      *EarlyStopping `json:"early_stop,omitempty"`
	BNStats        string         `json:"bn_stats,omitempty"`         // BNStats.String(); absent before 0.6.0
	PopStats       bool           `json:"population_stats,omitempty"` // before 0.6.0: population statistics (else running averages)
	Seed           uint64         `json:"seed"`

	Iteration int              `json:"iteration"` // iterations done
	Labeled   *cursorRecord    `json:"labeled,omitempty"`
	Unlabeled *cursorRecord    `json:"unlabeled,omitempty"`
	Sum       semiEvalRecord   `json:"sum"` // loss sums since the last evaluation
	SumSteps  int              `json:"sum_steps"`
	History   []semiEvalRecord `json:"history"`
}

// cursorRecord is a batch order's place; the order is the tensor named
// Tensor.
type cursorRecord struct {
	Tensor string  `json:"tensor"`
	Pos    int     `json:"pos"`
	Source []byte  `json:"source"`
	Data   dataKey `json:"data"`
}

// semiEvalRecord is a Report whose test figures may be missing.
type semiEvalRecord struct {
	Report
	TestLoss     *float64 `json:"test_loss"`
	TestAccuracy *float64 `json:"test_accuracy"`
}

func semiRecordOf(e Report) semiEvalRecord {
	return semiEvalRecord{Report: e, TestLoss: finite(e.TestLoss), TestAccuracy: finite(e.TestAccuracy)}
}

func (r semiEvalRecord) eval() Report {
	e := r.Report
	e.TestLoss, e.TestAccuracy = orNaN(r.TestLoss), orNaN(r.TestAccuracy)
	return e
}

const (
	labeledOrder   = trainerPrefix + "labeled_order"
	unlabeledOrder = trainerPrefix + "unlabeled_order"
)

// Checkpoint writes everything needed to continue the run to path,
// atomically: the weights and batch normalization's running averages, the
// optimizer's state, the iteration, both batch orders and their shuffling
// sources, every random stream (dropout masks, noise, VAT's directions),
// the configuration and the evaluations so far. ResumeSemi continues from
// it, and the continued run ends with the same weights, bit for bit, as
// one never stopped (on the same kernel). Call it between steps: after
// Fit returns, or from OnStep or OnEval. The file is in the format of
// Trainer.Checkpoint; Model.Load and LoadModel read its weights.
func (t *SemiTrainer) Checkpoint(path string) error {
	c := t.cfg
	rec := &semiRecord{Iterations: c.Iterations, LabeledBatch: c.LabeledBatch, UnlabeledBatch: c.UnlabeledBatch,
		VAT: t.vat, VATOnLabeled: c.VATOnLabeled, EntMin: c.EntMin, WarmUp: c.WarmUp, EntMinWarmUp: c.EntMinWarmUp, Balance: c.Balance, Align: c.Align, EvalEvery: c.EvalEvery, EarlyStop: t.early, BNStats: c.BNStats.String(), Seed: c.Seed,
		Iteration: t.it, Sum: semiRecordOf(t.sum), SumSteps: t.sumSteps, History: []semiEvalRecord{}}
	for _, e := range t.history {
		rec.History = append(rec.History, semiRecordOf(e))
	}
	if t.searches() {
		rec.EpsSearch = &c.EpsSearch
	}
	rec.EpsChoices = t.epsChoices
	switch {
	case t.align != nil:
		rec.AlignMean = t.align.mean
	case t.alignMean != nil:
		rec.AlignMean = t.alignMean
	}
	w := &ckptWriter{st: checkpointState{Kind: kindSemi, Semi: rec, Noise: t.noise.Fills(), Dropout: map[int][]uint64{}}}
	switch {
	case t.graph != nil:
		if d := drawsOf(t.graph.streams); d != nil {
			w.st.Dropout[0] = d
		}
	case t.draws != nil:
		w.st.Dropout[0] = t.draws
	}
	cursors := t.cursors // not applied yet (ResumeSemi, then no Fit)
	for k, cy := range []*cycler{t.lab, t.unl} {
		if cy != nil {
			cur, err := cy.save([]dataKey{t.labKey, t.unlKey}[k])
			if err != nil {
				return fmt.Errorf("vat: Checkpoint: %w", err)
			}
			cursors[k] = cur
		}
	}
	for k, cur := range cursors {
		if cur == nil {
			continue
		}
		name := []string{labeledOrder, unlabeledOrder}[k]
		r := &cursorRecord{Tensor: name, Pos: cur.pos, Source: cur.source, Data: cur.data}
		if k == 0 {
			rec.Labeled = r
		} else {
			rec.Unlabeled = r
		}
		w.extra = append(w.extra, safetensors.FromInt64(name, []int{len(cur.order)}, cur.order))
	}
	return writeCheckpoint(path, &t.loop, w)
}

// ResumeSemi reads a checkpoint written by SemiTrainer.Checkpoint and
// returns a trainer, with its model, in the state the checkpoint recorded:
// Fit then continues the run, on the same labeled and unlabeled sets, where
// it stopped. The run's configuration comes from the checkpoint; cfg may
// only set the callbacks OnStep and OnEval, and Iterations to train
// further than planned (0 keeps the checkpoint's; the schedule then
// stretches over the new length). Any other field set is an error.
func ResumeSemi(path string, cfg SemiSupervisedConfig) (*SemiTrainer, error) {
	switch {
	case cfg.LabeledBatch != 0 || cfg.UnlabeledBatch != 0:
		return nil, fmt.Errorf("vat: ResumeSemi: SemiSupervisedConfig's batch sizes are set; a resumed run keeps its checkpoint's")
	case cfg.VAT != nil || cfg.VATOnLabeled || cfg.EntMin != 0 || cfg.WarmUp != 0 || cfg.EntMinWarmUp != 0 || cfg.Balance != 0 || cfg.Align:
		return nil, fmt.Errorf("vat: ResumeSemi: SemiSupervisedConfig's loss (VAT, VATOnLabeled, EntMin, WarmUp, Balance, Align) is set; a resumed run keeps its checkpoint's")
	case cfg.Optimizer != nil || cfg.Schedule != nil:
		return nil, fmt.Errorf("vat: ResumeSemi: SemiSupervisedConfig.Optimizer or Schedule is set; a resumed run keeps its checkpoint's")
	case cfg.Seed != 0 || cfg.EvalEvery != 0 || cfg.EarlyStop != nil || cfg.BNStats != PopulationBNStats:
		return nil, fmt.Errorf("vat: ResumeSemi: SemiSupervisedConfig.Seed, EvalEvery, EarlyStop or BNStats is set; a resumed run keeps its checkpoint's")
	case !cfg.EpsSearch.isZero():
		return nil, fmt.Errorf("vat: ResumeSemi: SemiSupervisedConfig.EpsSearch is set; a resumed run keeps its checkpoint's")
	case cfg.Iterations < 0:
		return nil, fmt.Errorf("vat: ResumeSemi: SemiSupervisedConfig.Iterations = %d: want >= 0 (0 keeps the checkpoint's)", cfg.Iterations)
	}
	r, err := readCheckpoint(path, kindSemi)
	if err != nil {
		return nil, err
	}
	rec := r.st.Semi
	if rec == nil {
		return nil, r.bad("a semi-supervised checkpoint without its run")
	}
	sc := SemiSupervisedConfig{Iterations: rec.Iterations, LabeledBatch: rec.LabeledBatch, UnlabeledBatch: rec.UnlabeledBatch,
		VAT: rec.VAT, VATOnLabeled: rec.VATOnLabeled, EntMin: rec.EntMin, WarmUp: rec.WarmUp, EntMinWarmUp: rec.EntMinWarmUp, Balance: rec.Balance, Align: rec.Align, Optimizer: r.opt, Schedule: r.sched,
		EvalEvery: rec.EvalEvery, EarlyStop: rec.EarlyStop, Seed: rec.Seed, OnStep: cfg.OnStep, OnEval: cfg.OnEval}
	switch {
	case rec.BNStats != "":
		if sc.BNStats, err = ParseBNStats(rec.BNStats); err != nil {
			return nil, r.bad("%v", err)
		}
	case !rec.PopStats: // written before 0.6.0, whose default was the running averages
		sc.BNStats = RunningBNStats
	}
	switch {
	case rec.EpsSearch != nil:
		sc.EpsSearch = *rec.EpsSearch
	case leavesEps(rec.VAT):
		// ε unresolved and no search recorded: written before 0.8.0,
		// whose default was EpsScale 0.05.
		sc.EpsSearch.Off = true
	}
	if err := checkChoices(rec.EpsChoices); err != nil {
		return nil, r.bad("%v", err)
	}
	if rec.Iterations < 1 || rec.LabeledBatch < 1 || rec.UnlabeledBatch < 1 || rec.EvalEvery < 1 {
		return nil, r.bad("iterations %d, batches %d and %d, eval_every %d: want each >= 1", rec.Iterations, rec.LabeledBatch, rec.UnlabeledBatch, rec.EvalEvery)
	}
	if cfg.Iterations != 0 {
		sc.Iterations = cfg.Iterations
	}
	t, err := NewSemiTrainer(r.model, sc)
	if err != nil {
		return nil, r.bad("%v", err)
	}
	switch {
	case rec.Iteration < 0 || rec.SumSteps < 0 || rec.SumSteps > rec.Iteration:
		return nil, r.bad("iteration %d with %d steps since the last evaluation", rec.Iteration, rec.SumSteps)
	case rec.Iteration > t.cfg.Iterations:
		return nil, fmt.Errorf("vat: ResumeSemi: %s has done %d iterations; SemiSupervisedConfig.Iterations = %d: want more", path, rec.Iteration, t.cfg.Iterations)
	case rec.Iteration > 0 && rec.Labeled == nil:
		return nil, r.bad("iteration %d without the labeled batch order", rec.Iteration)
	case rec.Iteration > 0 && (rec.Unlabeled != nil) != t.usesUnlabeled():
		return nil, r.bad("the unlabeled batch order does not fit the loss")
	}
	for k, cr := range []*cursorRecord{rec.Labeled, rec.Unlabeled} {
		if cr == nil {
			continue
		}
		want := []string{labeledOrder, unlabeledOrder}[k]
		x := r.f.Get(want)
		if cr.Tensor != want || x == nil || len(x.Shape) != 1 {
			return nil, r.bad("the batch order %q is missing or not a vector", want)
		}
		order, err := x.Int64()
		if err != nil || len(order) != cr.Data.N || cr.Data.N < 1 {
			return nil, r.bad("the batch order %q is %s%v for %d samples", want, x.DType, x.Shape, cr.Data.N)
		}
		cur := &cursor{order: order, pos: cr.Pos, source: cr.Source, data: cr.Data}
		if err := cur.check(); err != nil {
			return nil, r.bad("%q: %v", want, err)
		}
		t.cursors[k] = cur
	}
	t.it, t.sum, t.sumSteps = rec.Iteration, rec.Sum.eval(), rec.SumSteps
	t.epsChoices = rec.EpsChoices
	if rec.AlignMean != nil {
		if !rec.Align {
			return nil, r.bad("align_mean without align")
		}
		if err := newAlignment(make([]float64, t.model.classes)).restore(rec.AlignMean); err != nil {
			return nil, r.bad("%v", err)
		}
		t.alignMean = rec.AlignMean
	}
	for _, e := range rec.History {
		t.history = append(t.history, e.eval())
	}
	t.noise.SetFills(r.st.Noise)
	t.setEarly(r.st.Early)
	if d, ok := r.st.Dropout[0]; ok {
		t.draws = d
	}
	if t.state, err = r.optimizerState(t.it > 0); err != nil {
		return nil, err
	}
	return t, nil
}
