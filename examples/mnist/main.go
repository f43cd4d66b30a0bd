// Command mnist runs the Keras original's experiment: Keras' MNIST CNN trained plain,
// with dropout, with VAT and with both, then prints a table of the results.
//
//	go run ./examples/mnist                          # all four runs, 12 epochs
//	go run ./examples/mnist -runs vat -epochs 1 -train-limit 5000 -test-limit 1000
//	go run ./examples/mnist -save                    # also <out>/<run>.safetensors
//	go run ./examples/mnist -resume out/vat.last.ckpt
//	go run ./examples/mnist -load out/plain.safetensors,out/vat.safetensors -robustness
//
// It writes results.json and accuracy.png into -out, and a checkpoint of
// each run after every epoch: <run>.last.ckpt, and <run>.best.ckpt for the
// best test accuracy so far. Ctrl-C stops after the current step, writes
// the checkpoint and what finished, and exits with status 130; -resume
// continues that run, ending with the weights an uninterrupted run has.
// -load evaluates saved weights on the test set without training, and
// -robustness measures test accuracy under perturbations of growing norm
// (robustness.json, robustness.png, adversarial.png).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/org/vat"
	"github.com/org/vat/internal/cli"
	"github.com/org/vat/internal/results"
	"github.com/org/vat/mnist"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK          = 0
	exitError       = 1
	exitInterrupted = 130 // 128 + SIGINT, as shells report it
)

// options are the parsed command-line flags.
type options struct {
	runs                  []string
	epochs, batch         int
	trainLimit, testLimit int
	xi, eps, alpha        float64
	ip                    int
	cleanGrad             bool
	seed                  uint64
	data, out             string
	progress, save        bool
	resume                string   // a checkpoint to continue
	load                  []string // weights files to evaluate
	robustness            bool
	digitsEps             float64
	set                   map[string]bool // flags given on the command line
}

// runNames are the experiment's four configurations, in the Keras original's order.
var runNames = []string{"plain", "dropout", "vat", "dropout+vat"}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("mnist", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runs := fs.String("runs", strings.Join(runNames, ","), "comma-separated runs: "+strings.Join(runNames, ", "))
	fs.IntVar(&o.epochs, "epochs", 12, "epochs per run (>= 1)")
	fs.IntVar(&o.batch, "batch", 128, "batch size (>= 1)")
	fs.IntVar(&o.trainLimit, "train-limit", 0, "use the first N training images (0 = all 60,000)")
	fs.IntVar(&o.testLimit, "test-limit", 0, "use the first N test images (0 = all 10,000)")
	fs.Float64Var(&o.xi, "xi", 10, "VAT: length of the power-iteration probe (> 0)")
	fs.Float64Var(&o.eps, "eps", 1, "VAT: length of the adversarial perturbation (> 0)")
	fs.IntVar(&o.ip, "ip", 1, "VAT: power iterations (>= 1)")
	fs.Float64Var(&o.alpha, "alpha", 1, "VAT: weight of the VAT loss (> 0)")
	fs.BoolVar(&o.cleanGrad, "clean-grad", false, "VAT: let the gradient flow through the clean prediction (the Keras original's variant)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the weights, shuffling, dropout and VAT noise")
	fs.StringVar(&o.data, "data", "", "folder with the four MNIST IDX files (default: the GoMNIST module's copy)")
	fs.StringVar(&o.out, "out", "out", "folder for results.json and accuracy.png")
	fs.BoolVar(&o.progress, "progress", true, "show a progress bar on stderr")
	fs.BoolVar(&o.save, "save", false, "write each finished run's weights to <out>/<run>.safetensors")
	fs.StringVar(&o.resume, "resume", "", "continue the run of this checkpoint (<out>/<run>.last.ckpt); -epochs may extend it")
	load := fs.String("load", "", "comma-separated weights files to evaluate on the test set, instead of training")
	fs.BoolVar(&o.robustness, "robustness", false, "measure test accuracy under random, virtual adversarial and adversarial perturbations")
	fs.Float64Var(&o.digitsEps, "digits-eps", 2, "norm of the perturbation shown in adversarial.png (> 0)")
	// The flag package calls Usage on every parse error; errors get one
	// line instead, so the full usage is printed for -h only.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "usage: mnist [flags]\n\nTrains Keras' MNIST CNN plain, with dropout, with VAT and with both.\n\n")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if *load != "" {
		for _, f := range strings.Split(*load, ",") {
			if f = strings.TrimSpace(f); f == "" {
				return nil, fmt.Errorf("-load: empty file name in %q", *load)
			}
			o.load = append(o.load, f)
		}
	}
	if o.resume != "" || o.load != nil {
		// The run is the checkpoint's, or there is none: settings of a run
		// would be ignored, so they are errors.
		for _, f := range []string{"runs", "batch", "seed", "xi", "eps", "ip", "alpha", "clean-grad"} {
			if o.set[f] && !(o.load != nil && (f == "seed" || f == "xi" || f == "ip")) {
				what := "a resumed run keeps its checkpoint's settings"
				if o.load != nil {
					what = "-load trains nothing"
				}
				return nil, fmt.Errorf("-%s: %s", f, what)
			}
		}
		if o.resume != "" && o.load != nil {
			return nil, fmt.Errorf("-load and -resume: choose one")
		}
		if o.load != nil && o.set["epochs"] {
			return nil, fmt.Errorf("-epochs: -load trains nothing")
		}
	}
	for _, r := range strings.Split(*runs, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(runNames, r) {
			return nil, fmt.Errorf("-runs: unknown run %q (want a comma list of %s)", r, strings.Join(runNames, ", "))
		}
		if slices.Contains(o.runs, r) {
			return nil, fmt.Errorf("-runs: %q given twice", r)
		}
		o.runs = append(o.runs, r)
	}
	switch {
	case o.epochs < 1:
		return nil, fmt.Errorf("-epochs %d: want >= 1", o.epochs)
	case o.batch < 1 || o.batch > 65536:
		return nil, fmt.Errorf("-batch %d: want 1 to 65536", o.batch)
	case o.trainLimit < 0:
		return nil, fmt.Errorf("-train-limit %d: want >= 0 (0 = all)", o.trainLimit)
	case o.testLimit < 0:
		return nil, fmt.Errorf("-test-limit %d: want >= 0 (0 = all)", o.testLimit)
	case !(o.xi > 0):
		return nil, fmt.Errorf("-xi %v: want > 0", o.xi)
	case !(o.eps > 0):
		return nil, fmt.Errorf("-eps %v: want > 0", o.eps)
	case o.ip < 1 || o.ip > 100:
		return nil, fmt.Errorf("-ip %d: want 1 to 100", o.ip)
	case !(o.alpha > 0):
		return nil, fmt.Errorf("-alpha %v: want > 0", o.alpha)
	case o.out == "":
		return nil, fmt.Errorf("-out: want a folder")
	case !(o.digitsEps > 0) || math.IsInf(o.digitsEps, 0):
		return nil, fmt.Errorf("-digits-eps %v: want a finite number > 0", o.digitsEps)
	}
	return o, nil
}

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	var train, test *vat.Dataset
	if o.load != nil { // evaluating saved models needs the test set alone
		test, err = mnist.LoadTest(o.data)
	} else {
		train, test, err = mnist.Load(o.data)
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	train, test = train.Head(o.trainLimit), test.Head(o.testLimit)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		fmt.Fprintf(stderr, "error: -out: %v\n", err)
		return exitError
	}

	res := results.New(train.Len(), test.Len())
	fmt.Fprintf(stderr, "backend: %s\n", res.Machine.Backend)
	var models []namedModel
	if o.load != nil {
		if models, err = evaluateFiles(o.load, test, stdout); err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return exitError
		}
		return robustness(o, models, test, stdout, stderr)
	}
	runs := o.runs
	rl := &relay{}
	var resumed *vat.Trainer
	if o.resume != "" {
		epochs := 0
		if o.set["epochs"] {
			epochs = o.epochs
		}
		if resumed, err = vat.Resume(o.resume, vat.TrainConfig{Epochs: epochs, OnStep: rl.step, OnEpoch: rl.epoch}); err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return exitError
		}
		runs = []string{runName(resumed)}
		if old, err := results.Read(o.out); err == nil { // keep the other runs' records
			for _, r := range old.Runs {
				if r.Name != runs[0] {
					res.Runs = append(res.Runs, r)
				}
			}
		}
	}
	status := exitOK
	for _, name := range runs {
		rr, model, err := trainRun(ctx, o, name, resumed, rl, train, test, stderr)
		if rr != nil && len(rr.Epochs) > 0 {
			res.Runs = append(res.Runs, *rr)
		}
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(stderr, "interrupted: writing the %d finished run(s) and epochs\n", len(res.Runs))
				status = exitInterrupted
				break
			}
			fmt.Fprintf(stderr, "error: %v\n", err)
			return exitError
		}
		models = append(models, namedModel{name, model})
	}
	results.PrintTable(stdout, res)
	if err := res.Write(o.out); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	if status == exitOK {
		status = robustness(o, models, test, stdout, stderr)
	}
	return status
}

// namedModel is a trained or loaded model and its run's name.
type namedModel struct {
	name  string
	model *vat.Model
}

// runName is the example's name of the run a trainer trains.
func runName(tr *vat.Trainer) string {
	name := "plain"
	switch dropout, v := tr.Model().Config().Dropout, tr.Config().VAT != nil; {
	case dropout && v:
		name = "dropout+vat"
	case dropout:
		name = "dropout"
	case v:
		name = "vat"
	}
	return name
}

// evaluateFiles loads each weights file and prints its test accuracy and
// loss.
func evaluateFiles(files []string, test *vat.Dataset, stdout io.Writer) ([]namedModel, error) {
	var models []namedModel
	fmt.Fprintf(stdout, "\n%-30s %10s %10s\n", "weights", "test acc", "test loss")
	for _, f := range files {
		m, err := vat.LoadModel(f)
		if err != nil {
			return nil, err
		}
		ev, err := m.Evaluate(test)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "%-30s %9.2f%% %10.4f\n", f, 100*ev.Accuracy, ev.Loss)
		models = append(models, namedModel{strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)), m})
	}
	fmt.Fprintf(stdout, "(%d test images)\n", test.Len())
	return models, nil
}

// robustness writes the robustness report of models when -robustness is
// set; it returns the exit status.
func robustness(o *options, models []namedModel, test *vat.Dataset, stdout, stderr io.Writer) int {
	if !o.robustness || len(models) == 0 {
		return exitOK
	}
	cfg := vat.RobustnessConfig{VAT: vat.VATConfig{Xi: o.xi, Ip: o.ip}, Seed: o.seed}
	rep := &results.Robustness{Test: test.Len(), Xi: o.xi, Ip: o.ip, Seed: o.seed}
	var digits []results.DigitRow
	const shown = 8
	for _, nm := range models {
		start := time.Now()
		pts, err := nm.model.Robustness(test, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "error: %s: %v\n", nm.name, err)
			return exitError
		}
		fmt.Fprintf(stderr, "%s: robustness measured in %.1f s\n", nm.name, time.Since(start).Seconds())
		rep.Runs = append(rep.Runs, results.RobustnessRun{Name: nm.name, Points: pts})
		row, err := digitRow(nm, test.Head(shown), o.digitsEps, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "error: %s: %v\n", nm.name, err)
			return exitError
		}
		digits = append(digits, row)
	}
	results.PrintRobustness(stdout, rep)
	if err := rep.Write(o.out); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	if err := results.WriteDigits(filepath.Join(o.out, "adversarial.png"), test.Head(shown).Images, test.Head(shown).Labels, o.digitsEps, digits); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	return exitOK
}

// digitRow computes a model's virtual adversarial perturbation of the
// first test images at norm eps and its predictions on them.
func digitRow(nm namedModel, d *vat.Dataset, eps float64, cfg vat.RobustnessConfig) (results.DigitRow, error) {
	u, err := nm.model.Directions(d.Images, nil, vat.VirtualAdversarial, cfg)
	if err != nil {
		return results.DigitRow{}, err
	}
	moved := make([]float32, len(u))
	for i := range u {
		u[i] *= float32(eps)
		moved[i] = d.Images[i] + u[i]
	}
	clean, err := nm.model.Predict(d.Images)
	if err != nil {
		return results.DigitRow{}, err
	}
	pred, err := nm.model.Predict(moved)
	if err != nil {
		return results.DigitRow{}, err
	}
	return results.DigitRow{Name: nm.name, RAdv: u, Clean: clean, Moved: pred}, nil
}

// relay forwards a trainer's callbacks to the run's progress bar and
// checkpoint writer, which exist only once the run's name is known (after
// Resume).
type relay struct {
	onStep  func(vat.StepInfo)
	onEpoch func(vat.Report)
}

func (r *relay) step(s vat.StepInfo) { r.onStep(s) }
func (r *relay) epoch(e vat.Report)  { r.onEpoch(e) }

// trainRun trains one configuration, or continues the resumed trainer, and
// returns its record (with the epochs that finished, also when it fails)
// and the model. It writes <run>.last.ckpt after every epoch and when
// interrupted, and <run>.best.ckpt after an epoch with the best test
// accuracy so far.
func trainRun(ctx context.Context, o *options, name string, tr *vat.Trainer, rl *relay, train, test *vat.Dataset, stderr io.Writer) (*results.Run, *vat.Model, error) {
	last := filepath.Join(o.out, name+".last.ckpt")
	best := filepath.Join(o.out, name+".best.ckpt")
	var ckptErr error
	bestAcc := -1.0
	if tr == nil {
		dropout := strings.Contains(name, "dropout")
		var vcfg *vat.VATConfig
		if strings.Contains(name, "vat") {
			vcfg = &vat.VATConfig{Xi: o.xi, Eps: o.eps, Ip: o.ip, Alpha: o.alpha, CleanGrad: o.cleanGrad, Probe: vat.FiniteDifference} // the Keras original's probe
		}
		model, err := vat.NewModel(vat.ModelConfig{Dropout: dropout, Seed: o.seed})
		if err != nil {
			return nil, nil, err
		}
		if tr, err = vat.NewTrainer(model, vat.TrainConfig{Epochs: o.epochs, BatchSize: o.batch, VAT: vcfg, Seed: o.seed,
			OnStep: rl.step, OnEpoch: rl.epoch}); err != nil {
			return nil, nil, err
		}
	} else {
		for _, r := range tr.History() {
			bestAcc = max(bestAcc, r.TestAccuracy)
		}
	}
	bar := newProgress(stderr, name, tr.Config().Epochs, o.progress)
	rl.onStep = bar.step
	rl.onEpoch = func(r vat.Report) {
		bar.epoch(r)
		if ckptErr == nil {
			ckptErr = tr.Checkpoint(last)
		}
		if ckptErr == nil && r.TestAccuracy > bestAcc {
			bestAcc = r.TestAccuracy
			ckptErr = tr.Checkpoint(best)
		}
	}
	c := tr.Config()
	rr := newRunResult(name, tr.Model().Config().Dropout, c)
	_, err := tr.Fit(ctx, train, test)
	bar.done()
	rr.SetEpochs(tr.History())
	rr.Interrupted = err != nil && ctx.Err() != nil
	if rr.Interrupted && ckptErr == nil {
		if ckptErr = tr.Checkpoint(last); ckptErr == nil {
			fmt.Fprintf(stderr, "%s: checkpoint written; continue with -resume %s\n", name, last)
		}
	}
	if ckptErr != nil {
		return rr, nil, ckptErr
	}
	if err == nil && o.save {
		path := filepath.Join(o.out, name+".safetensors")
		if err := tr.Model().Save(path); err != nil {
			return rr, nil, err
		}
		fmt.Fprintf(stderr, "%s: weights saved to %s\n", name, path)
	}
	return rr, tr.Model(), err
}

// progress reports a run's training on stderr (see cli.Progress): a bar
// per step, a line per epoch.
type progress struct {
	*cli.Progress
	epochs int
}

func newProgress(w io.Writer, name string, epochs int, on bool) *progress {
	return &progress{cli.NewProgress(w, name, on), epochs}
}

func (p *progress) step(s vat.StepInfo) {
	done := float64(s.Epoch-1)*float64(s.Steps) + float64(s.Step)
	p.Update(done, float64(p.epochs*s.Steps), fmt.Sprintf("epoch %d/%d  loss %.4f", s.Epoch, p.epochs, s.Loss))
}

func (p *progress) epoch(r vat.Report) {
	p.Line("epoch %d/%d: train loss %.4f, test accuracy %.2f %%, test loss %.4f, %.1f s",
		r.Epoch, p.epochs, r.TrainLoss, 100*r.TestAccuracy, r.TestLoss, r.Seconds)
}

func (p *progress) done() { p.Done() }

// newRunResult describes a run of the example: its name and settings.
func newRunResult(name string, dropout bool, c vat.TrainConfig) *results.Run {
	r := &results.Run{Name: name, Options: results.RunOptions{
		Dropout: dropout, VAT: c.VAT != nil, Epochs: c.Epochs, Batch: c.BatchSize, Seed: c.Seed,
		Optimizer: fmt.Sprintf("%v, %#v", c.Optimizer, c.Schedule),
	}}
	if v := c.VAT; v != nil {
		r.Options.Xi, r.Options.Eps, r.Options.Ip, r.Options.Alpha, r.Options.CleanGrad = &v.Xi, &v.Eps, &v.Ip, &v.Alpha, &v.CleanGrad
	}
	return r
}
