package vat

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/ops"
	"github.com/org/vat/internal/rng"
)

// SemiSupervisedConfig configures semi-supervised training: every step
// takes a batch of labeled samples and a batch of unlabeled ones, and
// minimizes
//
//	CE(labeled batch) + α·LDS(unlabeled batch) + β·H(unlabeled batch)
//
// with H the mean entropy of the predictions ("VAT+EntMin" when β > 0). The
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
	// samples alone (the "supervised" baseline).
	VAT *VATConfig
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
	// Seed fixes the batches' order, the dropout masks and the VAT noise.
	// (The initial weights come from the model, the split from
	// SplitLabeled.)
	Seed uint64
	// OnStep, if set, is called after every step; OnEval after every
	// evaluation. Both may call SemiTrainer.Checkpoint.
	OnStep func(SemiStep)
	OnEval func(SemiEval)
}

// SemiStep reports one step of semi-supervised training: the loss and its
// parts (LDS before α, Entropy before β), and the schedule's values.
type SemiStep struct {
	Iteration, Iterations     int // 1-based
	Loss, CE, LDS, Entropy    float64
	LearningRate, Alpha, Beta float64
}

// SemiEval is one evaluation during semi-supervised training: the mean loss
// parts since the previous evaluation, and the test figures (NaN without a
// test set).
type SemiEval struct {
	Iteration    int     `json:"iteration"`
	TrainLoss    float64 `json:"train_loss"`
	TrainCE      float64 `json:"train_ce"`
	TrainLDS     float64 `json:"train_lds"`
	TrainEntropy float64 `json:"train_entropy"`
	TestLoss     float64 `json:"test_loss"`
	TestAccuracy float64 `json:"test_accuracy"`
	Seconds      float64 `json:"seconds"` // training time since the previous evaluation
}

// SemiTrainer trains a Model from a few labeled samples and many
// unlabeled ones (see SemiSupervisedConfig). It keeps its place in the
// run: a Fit that was cancelled continues where it stopped when called
// again (on the same data), Checkpoint saves that place and ResumeSemi
// restores it in another process.
type SemiTrainer struct {
	model *Model
	cfg   SemiSupervisedConfig
	vat   *VATConfig
	opt   Optimizer
	sched Schedule
	state optimizerState // nil until the first step
	noise rng.Chunked
	graph *semiGraph

	// Progress, all of which Checkpoint saves.
	it       int        // iterations done
	lab, unl *cycler    // the batch orders; nil before the first Fit (unl nil without VAT and EntMin)
	labKey   dataKey    // the data the orders were made for
	unlKey   dataKey    //
	sum      SemiEval   // loss sums since the last evaluation
	sumSteps int        //
	history  []SemiEval // every evaluation
	draws    []uint64   // after ResumeSemi: the dropout ops' draw counts, for the graph not built yet
	cursors  [2]*cursor // after ResumeSemi: the batch orders, for the cyclers not made yet
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
		cfg.LabeledBatch = 100
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
	case cfg.EvalEvery < 1:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.EvalEvery = %d: want >= 1", cfg.EvalEvery)
	case cfg.VATOnLabeled && cfg.VAT == nil:
		return nil, fmt.Errorf("vat: SemiSupervisedConfig.VATOnLabeled is set without VAT")
	}
	t := &SemiTrainer{model: m, cfg: cfg, noise: rng.NewChunked(rng.SplitMix64(cfg.Seed ^ rng.SplitMix64(rng.Noise)))}
	var err error
	if t.opt, err = optimizerOrDefault(cfg.Optimizer, Adam{LR: 0.002}); err != nil {
		return nil, err
	}
	if t.sched, err = scheduleOrDefault(cfg.Schedule, LinearDecay{}); err != nil {
		return nil, err
	}
	t.cfg.Optimizer, t.cfg.Schedule = t.opt, t.sched
	if cfg.VAT != nil {
		v, err := cfg.VAT.withDefaults()
		if err != nil {
			return nil, err
		}
		t.vat = &v
		t.cfg.VAT = &v
	}
	return t, nil
}

// Config returns the trainer's configuration with defaults filled in. It
// shares no state with the trainer: NewSemiTrainer(m2, t.Config()) starts
// a fresh run.
func (t *SemiTrainer) Config() SemiSupervisedConfig {
	c := t.cfg
	if t.vat != nil {
		v := *t.vat
		c.VAT = &v
	}
	return c
}

// Model returns the model the trainer trains.
func (t *SemiTrainer) Model() *Model { return t.model }

// History returns every evaluation of the run, those before a ResumeSemi
// included.
func (t *SemiTrainer) History() []SemiEval { return append([]SemiEval(nil), t.history...) }

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
func (t *SemiTrainer) Fit(ctx context.Context, labeled, unlabeled, test *Dataset) ([]SemiEval, error) {
	m := t.model
	cfg := t.cfg
	if t.it >= cfg.Iterations {
		return nil, fmt.Errorf("vat: SemiTrainer.Fit: the run has finished its %d iterations; start another with NewSemiTrainer", cfg.Iterations)
	}
	if err := labeled.validate("labeled", m); err != nil {
		return nil, err
	}
	needU := t.vat != nil || cfg.EntMin > 0
	if needU {
		if unlabeled.Len() == 0 { // validate reads labels, which an unlabeled set may not have
			return nil, fmt.Errorf("vat: the unlabeled dataset is empty")
		}
		if px := size(m.inShape); size(unlabeled.shape()) != px || len(unlabeled.Images) != unlabeled.Len()*px {
			return nil, fmt.Errorf("vat: the unlabeled dataset has samples of %v, the model takes %v", unlabeled.shape(), m.inShape)
		}
	}
	if test != nil {
		if err := test.validate("test", m); err != nil {
			return nil, err
		}
	}
	if t.graph == nil {
		g, err := newSemiGraph(m, cfg.LabeledBatch, cfg.UnlabeledBatch, t.vat, cfg.VATOnLabeled, cfg.EntMin, cfg.Seed)
		if err != nil {
			return nil, err
		}
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
	var evals []SemiEval
	grads := make([]*tensor.Dense, len(g.grads)) // the step's gradients, handed to the optimizer
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
		lr, decaying := t.sched.Rate(t.opt.baseRate(), it, cfg.Iterations)
		st := SemiStep{Iteration: it + 1, Iterations: cfg.Iterations, LearningRate: lr, Beta: cfg.EntMin}
		if t.vat != nil {
			st.Alpha = t.vat.Alpha
			if warm := cfg.WarmUp * float64(cfg.Iterations); float64(it+1) < warm {
				st.Alpha *= float64(it+1) / warm
			}
			g.sum.SetWeight(g.alphaAt, st.Alpha)
		}
		if err := g.run(&st); err != nil {
			return evals, err
		}
		if math.IsNaN(st.Loss) || math.IsInf(st.Loss, 0) {
			return evals, fmt.Errorf("vat: the loss became %v at iteration %d; lower the learning rate or VAT's alpha/eps", st.Loss, it+1)
		}
		for i, n := range g.grads {
			grads[i] = n.Value().(*tensor.Dense)
		}
		if t.state == nil {
			t.state = t.opt.newState(m.params)
		}
		if err := t.state.step(m.params, grads, lr, decaying); err != nil {
			return evals, err
		}
		m.countStatUpdate()
		t.sum.TrainLoss += st.Loss
		t.sum.TrainCE += st.CE
		t.sum.TrainLDS += st.LDS
		t.sum.TrainEntropy += st.Entropy
		t.sumSteps++
		evalNow := (it+1)%cfg.EvalEvery == 0 || it+1 == cfg.Iterations
		if evalNow {
			n := float64(t.sumSteps)
			e := SemiEval{Iteration: it + 1, TrainLoss: t.sum.TrainLoss / n, TrainCE: t.sum.TrainCE / n,
				TrainLDS: t.sum.TrainLDS / n, TrainEntropy: t.sum.TrainEntropy / n,
				Seconds: t.sum.Seconds + time.Since(start).Seconds(), TestLoss: math.NaN(), TestAccuracy: math.NaN()}
			if test != nil {
				ev, err := m.Evaluate(test)
				if err != nil {
					return evals, err
				}
				e.TestLoss, e.TestAccuracy = ev.Loss, ev.Accuracy
			}
			evals = append(evals, e)
			t.history = append(t.history, e)
			t.sum, t.sumSteps, start = SemiEval{}, 0, time.Now()
		}
		t.it++ // the step is done: callbacks may checkpoint it
		if cfg.OnStep != nil {
			cfg.OnStep(st)
		}
		if evalNow && cfg.OnEval != nil {
			cfg.OnEval(evals[len(evals)-1])
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
	t.lab = newCycler(labeled.Len(), rng.NewPCG(t.cfg.Seed, rng.Shuffle, 0))
	if needU {
		t.unl = newCycler(unlabeled.Len(), rng.NewPCG(t.cfg.Seed, rng.Unlabeled, 0))
	}
	t.labKey, t.unlKey = lk, uk
	for k, c := range []*cycler{t.lab, t.unl} {
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
	t.cursors = [2]*cursor{}
	return nil
}

func cursorN(c *cursor) int {
	if c == nil {
		return 0
	}
	return c.data.N
}

// cycler hands out indices 0..n−1 in random order, batch after batch,
// reshuffling whenever all have been handed out; a batch that straddles
// the end continues in the next order.
type cycler struct {
	perm  []int
	pos   int
	src   *rand.PCG
	r     *rand.Rand
	batch []int
}

func newCycler(n int, src *rand.PCG) *cycler {
	c := &cycler{perm: make([]int, n), src: src, r: rand.New(src), pos: n}
	for i := range c.perm {
		c.perm[i] = i
	}
	return c
}

func (c *cycler) next(k int) []int {
	c.batch = c.batch[:0]
	for len(c.batch) < k {
		if c.pos == len(c.perm) {
			c.r.Shuffle(len(c.perm), func(i, j int) { c.perm[i], c.perm[j] = c.perm[j], c.perm[i] })
			c.pos = 0
		}
		take := min(k-len(c.batch), len(c.perm)-c.pos)
		c.batch = append(c.batch, c.perm[c.pos:c.pos+take]...)
		c.pos += take
	}
	return c.batch
}

// cursor is a cycler's place, as a checkpoint records it.
type cursor struct {
	order  []int64 // the current order
	pos    int
	source []byte // the shuffling source
	data   dataKey
}

func (c *cycler) save(data dataKey) (*cursor, error) {
	src, err := c.src.MarshalBinary()
	if err != nil {
		return nil, err
	}
	order := make([]int64, len(c.perm))
	for i, p := range c.perm {
		order[i] = int64(p)
	}
	return &cursor{order: order, pos: c.pos, source: src, data: data}, nil
}

// check reports whether cur is a place in a permutation, with a valid
// shuffling source.
func (cur *cursor) check() error {
	if cur.pos < 0 || cur.pos > len(cur.order) {
		return fmt.Errorf("the batch order is at %d of %d", cur.pos, len(cur.order))
	}
	seen := make([]bool, len(cur.order))
	for _, p := range cur.order {
		if p < 0 || p >= int64(len(seen)) || seen[p] {
			return fmt.Errorf("the batch order is not a permutation of 0-%d", len(seen)-1)
		}
		seen[p] = true
	}
	var src rand.PCG
	if err := src.UnmarshalBinary(cur.source); err != nil {
		return fmt.Errorf("the shuffling state: %v", err)
	}
	return nil
}

// restore sets c to cur, checked, of c's length.
func (c *cycler) restore(cur *cursor) error {
	for i, p := range cur.order {
		c.perm[i] = int(p)
	}
	c.pos = cur.pos
	if err := c.src.UnmarshalBinary(cur.source); err != nil {
		return fmt.Errorf("vat: the checkpoint's shuffling state: %w", err)
	}
	return nil
}

// semiGraph is one compiled semi-supervised step.
type semiGraph struct {
	vm         G.VM
	xl, yl, xu *tensor.Dense   // xu nil without VAT and EntMin
	noise      []*tensor.Dense // VAT's start directions (unlabeled, then labeled)
	sum        interface{ SetWeight(int, float64) }
	alphaAt    int // α's position in sum
	loss, ce   *G.Node
	lds, ent   *G.Node // nil when off
	grads      []*G.Node
	streams    []ops.Stream // the dropout and noise ops, whose draw counts checkpoints save
}

func newSemiGraph(m *Model, nl, nu int, vat *VATConfig, vatOnLabeled bool, beta float64, seed uint64) (*semiGraph, error) {
	s := newScope(true, rng.SplitMix64(seed^0x5e31))
	g := &semiGraph{}
	tensorOf := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	lshape := append([]int{nl}, m.inShape...)
	g.xl, g.yl = tensorOf(lshape...), tensorOf(nl, m.classes)
	xl := G.NewTensor(s.g, G.Float32, len(lshape), G.WithShape(lshape...), G.WithValue(g.xl), G.WithName("x"))
	yl := G.NewMatrix(s.g, G.Float32, G.WithShape(nl, m.classes), G.WithValue(g.yl), G.WithName("labels"))
	L := m.weightNodes(s, "")
	inputs := append(G.Nodes{xl, yl}, L.nodes...)
	sets := [][]*G.Node{L.nodes}

	s.batchStats, s.updateStats = true, true
	var traceL, traceU []layerTrace // the clean passes, which the exact probe linearizes
	s.trace = &traceL
	logitsL := m.forward(s, L, xl)
	s.trace, s.updateStats = nil, false
	g.ce = s.apply(ops.NewCrossEntropy(), logitsL, yl)
	terms, coefs := []*G.Node{g.ce}, []float64{1}

	// vatOn adds the VAT term on batch x (clean logits from weights w) and
	// returns LDS.
	vatOn := func(x, logits *G.Node, w weights, trace []layerTrace, tag string) *G.Node {
		shape := x.Shape().Clone()
		vin, nz, vnodes := bindVATInputs(s, vat.Ip, shape)
		g.noise = append(g.noise, nz)
		inputs = append(inputs, vnodes...)
		adv := m.weightNodes(s, "@adv"+tag)
		inputs = append(inputs, adv.nodes...)
		sets = append(sets, adv.nodes)
		lds, _, _ := vatTerm(s, *vat, vin, m.vatPasses(s, w, trace, adv), x, logits, vat.CleanGrad)
		return lds
	}
	if vat != nil || beta > 0 {
		ushape := append([]int{nu}, m.inShape...)
		g.xu = tensorOf(ushape...)
		xu := G.NewTensor(s.g, G.Float32, len(ushape), G.WithShape(ushape...), G.WithValue(g.xu), G.WithName("x/unlabeled"))
		U := m.weightNodes(s, "@u")
		inputs = append(inputs, xu)
		inputs = append(inputs, U.nodes...)
		s.trace = &traceU
		logitsU := m.forward(s, U, xu)
		s.trace = nil
		if beta > 0 || (vat != nil && vat.CleanGrad) {
			sets = append(sets, U.nodes) // the entropy's gradient flows through the unlabeled clean pass
		}
		if vat != nil {
			g.lds = vatOn(xu, logitsU, U, traceU, "u")
			if vatOnLabeled {
				ldsL := vatOn(xl, logitsL, L, traceL, "l")
				n := float64(nl + nu)
				g.lds = weightedSum(s, []float64{float64(nu) / n, float64(nl) / n}, g.lds, ldsL)
			}
			g.alphaAt = len(terms)
			terms, coefs = append(terms, g.lds), append(coefs, vat.Alpha)
		}
		if beta > 0 {
			g.ent = s.apply(ops.NewEntropy(), logitsU)
			terms, coefs = append(terms, g.ent), append(coefs, beta)
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	inputs = append(inputs, s.consts...)
	sum := ops.NewWeightedSum(coefs...)
	g.sum = sum
	g.loss = s.apply(sum, terms...)
	var wrt []*G.Node
	for _, set := range sets {
		wrt = append(wrt, set...)
	}
	if s.err != nil {
		return nil, s.err
	}
	grads, err := G.Grad(g.loss, wrt...)
	if err != nil {
		return nil, fmt.Errorf("vat: differentiating the semi-supervised loss: %w", err)
	}
	np := len(m.params)
	g.grads = grads[:np]
	for k := 1; k < len(sets); k++ { // ∂loss/∂w sums every pass's part
		for i := range g.grads {
			g.grads[i] = add(s, g.grads[i], grads[k*np+i])
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	outputs := append(G.Nodes{g.loss, g.ce}, g.grads...)
	for _, n := range []*G.Node{g.lds, g.ent} {
		if n != nil {
			outputs = append(outputs, n)
		}
	}
	prog, locMap, err := G.CompileFunction(s.g, inputs, outputs)
	if err != nil {
		return nil, fmt.Errorf("vat: compiling the semi-supervised graph: %w", err)
	}
	g.vm = G.NewTapeMachine(s.g, G.WithPrecompiled(prog, locMap))
	g.streams = s.streams
	return g, nil
}

// run executes one step and fills st's loss parts.
func (g *semiGraph) run(st *SemiStep) error {
	g.vm.Reset()
	if err := g.vm.RunAll(); err != nil {
		return fmt.Errorf("vat: semi-supervised step: %w", err)
	}
	read := func(n *G.Node) float64 {
		if n == nil {
			return 0
		}
		v, _ := ops.Scalar32("loss", 0, n.Value())
		return float64(v)
	}
	st.Loss, st.CE, st.LDS, st.Entropy = read(g.loss), read(g.ce), read(g.lds), read(g.ent)
	return nil
}
