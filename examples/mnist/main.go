// Command mnist runs the seed's experiment: Keras' MNIST CNN trained plain,
// with dropout, with VAT and with both, then prints a table of the results.
//
//	go run ./examples/mnist                          # all four runs, 12 epochs
//	go run ./examples/mnist -runs vat -epochs 1 -train-limit 5000 -test-limit 1000
//
// It writes results.json and accuracy.png into -out. Ctrl-C stops after the
// current step, writes what finished and exits with status 130.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/org/vat"
	"github.com/org/vat/internal/results"
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
}

// runNames are the experiment's four configurations, in the seed's order.
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
	fs.BoolVar(&o.cleanGrad, "clean-grad", false, "VAT: let the gradient flow through the clean prediction (the seed's variant)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the weights, shuffling, dropout and VAT noise")
	fs.StringVar(&o.data, "data", "", "folder with the four MNIST IDX files (default: the GoMNIST module's copy)")
	fs.StringVar(&o.out, "out", "out", "folder for results.json and accuracy.png")
	fs.BoolVar(&o.progress, "progress", true, "show a progress bar on stderr")
	fs.BoolVar(&o.save, "save", false, "write each finished run's weights to <out>/<run>.safetensors")
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
	for _, r := range strings.Split(*runs, ",") {
		r = strings.TrimSpace(r)
		if !contains(runNames, r) {
			return nil, fmt.Errorf("-runs: unknown run %q (want a comma list of %s)", r, strings.Join(runNames, ", "))
		}
		if contains(o.runs, r) {
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
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
	train, test, err := vat.LoadMNIST(o.data)
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
	status := exitOK
	for _, name := range o.runs {
		rr, err := trainRun(ctx, o, name, train, test, stderr)
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
	}
	results.PrintTable(stdout, res)
	if err := res.Write(o.out); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return exitError
	}
	return status
}

// trainRun trains one configuration and returns its record (with the epochs
// that finished, also when it fails).
func trainRun(ctx context.Context, o *options, name string, train, test *vat.Dataset, stderr io.Writer) (*results.Run, error) {
	dropout := strings.Contains(name, "dropout")
	var vcfg *vat.VATConfig
	if strings.Contains(name, "vat") {
		vcfg = &vat.VATConfig{Xi: o.xi, Eps: o.eps, Ip: o.ip, Alpha: o.alpha, CleanGrad: o.cleanGrad}
	}
	model, err := vat.NewModel(vat.ModelConfig{Dropout: dropout, Seed: o.seed})
	if err != nil {
		return nil, err
	}
	bar := newProgress(stderr, name, o.epochs, o.progress)
	tr, err := vat.NewTrainer(model, vat.TrainConfig{
		Epochs: o.epochs, BatchSize: o.batch, VAT: vcfg, Seed: o.seed,
		OnStep: bar.step,
		OnEpoch: func(r vat.EpochResult) {
			bar.epoch(r)
		},
	})
	if err != nil {
		return nil, err
	}
	rr := newRunResult(name, dropout, tr.Config())
	epochs, err := tr.Fit(ctx, train, test)
	bar.done()
	rr.SetEpochs(epochs)
	rr.Interrupted = err != nil && ctx.Err() != nil
	if err == nil && o.save {
		path := filepath.Join(o.out, name+".safetensors")
		if err := model.Save(path); err != nil {
			return rr, err
		}
		fmt.Fprintf(stderr, "%s: weights saved to %s\n", name, path)
	}
	return rr, err
}

// progress reports training on stderr: on a terminal, a one-line bar with
// an ETA redrawn in place; elsewhere (a log file, a pipe), one plain line
// per epoch, so that a background run's log stays readable.
type progress struct {
	w       io.Writer
	name    string
	epochs  int
	on, tty bool
	start   time.Time
	last    time.Time
}

func newProgress(w io.Writer, name string, epochs int, on bool) *progress {
	return &progress{w: w, name: name, epochs: epochs, on: on, tty: isTerminal(w), start: time.Now()}
}

// isTerminal says whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) step(s vat.StepInfo) {
	if !p.on || !p.tty || (time.Since(p.last) < 200*time.Millisecond && s.Step != s.Steps) {
		return
	}
	p.last = time.Now()
	done := float64(s.Epoch-1)*float64(s.Steps) + float64(s.Step)
	total := float64(p.epochs * s.Steps)
	elapsed := time.Since(p.start)
	eta := time.Duration(float64(elapsed) * (total - done) / done)
	const width = 30
	filled := int(width * done / total)
	fmt.Fprintf(p.w, "\r%-12s epoch %d/%d [%s%s] %3.0f%%  loss %.4f  ETA %v   ",
		p.name, s.Epoch, p.epochs, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		100*done/total, s.Loss, eta.Round(time.Second))
}

func (p *progress) epoch(r vat.EpochResult) {
	if !p.on {
		return
	}
	start, pad := "", ""
	if p.tty {
		start, pad = "\r", strings.Repeat(" ", 20)
	}
	fmt.Fprintf(p.w, "%s%-12s epoch %d/%d: train loss %.4f, test accuracy %.2f %%, test loss %.4f, %.1f s%s\n",
		start, p.name, r.Epoch, p.epochs, r.TrainLoss, 100*r.TestAccuracy, r.TestLoss, r.Seconds, pad)
}

func (p *progress) done() {
	if p.on && p.tty {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", 100)+"\r")
	}
}

// newRunResult describes a run of the example: its name and settings.
func newRunResult(name string, dropout bool, c vat.TrainConfig) *results.Run {
	r := &results.Run{Name: name, Options: results.RunOptions{
		Dropout: dropout, VAT: c.VAT != nil, Epochs: c.Epochs, Batch: c.BatchSize, Seed: c.Seed,
		Optimizer: fmt.Sprintf("adadelta(lr=%g, rho=%g, epsilon=%g)", c.Optimizer.LR, c.Optimizer.Rho, c.Optimizer.Epsilon),
	}}
	if v := c.VAT; v != nil {
		r.Options.Xi, r.Options.Eps, r.Options.Ip, r.Options.Alpha, r.Options.CleanGrad = &v.Xi, &v.Eps, &v.Ip, &v.Alpha, &v.CleanGrad
	}
	return r
}
