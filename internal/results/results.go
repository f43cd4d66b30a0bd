// Package results writes what the example programs measured: results.json
// (one shape for every example, so that tools can read any of them), a
// table on stdout and a plot of test accuracy per epoch.
package results

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/org/vat"
	"github.com/org/vat/internal/kernels"
)

// Results is the content of results.json.
type Results struct {
	Runs    []Run    `json:"runs"`
	Machine Machine  `json:"machine"`
	Command []string `json:"command"`
	Date    string   `json:"date"`
	Train   int      `json:"train_images"`
	Test    int      `json:"test_images"`
}

// Machine describes where the runs ran.
type Machine struct {
	GOOS    string `json:"goos"`
	GOARCH  string `json:"goarch"`
	CPUs    int    `json:"cpus"`
	Go      string `json:"go"`
	Backend string `json:"backend"` // vat.Backend(): cpu, or cuda and the GPU
	Kernel  string `json:"kernel"`  // the CPU matrix product's micro-kernel: avx2+fma or go
}

// Run is one training run.
type Run struct {
	Name            string       `json:"name"`
	Options         RunOptions   `json:"options"`
	TestAccuracy    float64      `json:"test_accuracy"`
	TestLoss        float64      `json:"test_loss"`
	SecondsPerEpoch float64      `json:"seconds_per_epoch"`
	Interrupted     bool         `json:"interrupted,omitempty"`
	Epochs          []vat.Report `json:"epochs"`
	// Evaluations are a semi-supervised run's test figures, every so many
	// iterations (examples/semisup); its Epochs are empty.
	Evaluations []vat.Report `json:"evaluations,omitempty"`
	// EpsChoices are the candidates of the ε search a semi-supervised run
	// made from its labels (vat.EpsSearch), the chosen one marked.
	EpsChoices []vat.EpsChoice `json:"eps_choices,omitempty"`
}

// RunOptions are a run's settings (VAT's are set only for VAT runs).
type RunOptions struct {
	Dropout   bool     `json:"dropout"`
	VAT       bool     `json:"vat"`
	Xi        *float64 `json:"xi,omitempty"`
	Eps       *float64 `json:"eps,omitempty"`
	Ip        *int     `json:"ip,omitempty"`
	Alpha     *float64 `json:"alpha,omitempty"`
	CleanGrad *bool    `json:"clean_grad,omitempty"`
	Epochs    int      `json:"epochs"`
	Batch     int      `json:"batch"`
	Seed      uint64   `json:"seed"`
	Optimizer string   `json:"optimizer"`

	// Semi-supervised runs (examples/semisup).
	Labels         int      `json:"labels,omitempty"`
	LabelSeed      *uint64  `json:"label_seed,omitempty"`
	SplitHash      string   `json:"split_hash,omitempty"` // FNV-64a of the labeled indices
	Iterations     int      `json:"iterations,omitempty"`
	LabeledBatch   int      `json:"labeled_batch,omitempty"`
	UnlabeledBatch int      `json:"unlabeled_batch,omitempty"`
	EntMin         *float64 `json:"entmin,omitempty"`
	EntMinWarmUp   *float64 `json:"entmin_warmup,omitempty"`
	Balance        *float64 `json:"balance,omitempty"` // γ of the class-balance term
	Align          bool     `json:"align,omitempty"`   // VAT's unlabeled targets aligned with the labeled class frequencies
	WarmUp         *float64 `json:"warm_up,omitempty"`
	VATOnLabeled   bool     `json:"vat_on_labeled,omitempty"`
	Probe          string   `json:"probe,omitempty"`
	Network        string   `json:"network,omitempty"`
}

// New returns the results of runs on train training and test test images,
// with this machine and command.
func New(train, test int) *Results {
	return &Results{
		Runs:    []Run{},
		Machine: ThisMachine(),
		Command: os.Args,
		Date:    time.Now().UTC().Format(time.RFC3339),
		Train:   train,
		Test:    test,
	}
}

// ThisMachine describes the machine the program runs on.
func ThisMachine() Machine {
	return Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version(),
		Backend: vat.Backend(), Kernel: kernels.Kernel()}
}

// SetEpochs records the finished epochs and the run's summary figures: the
// last epoch's test figures and the mean training seconds per epoch.
func (r *Run) SetEpochs(e []vat.Report) {
	r.Epochs = e
	if len(e) == 0 {
		return
	}
	last := e[len(e)-1]
	r.TestAccuracy, r.TestLoss = last.TestAccuracy, last.TestLoss
	var s float64
	for _, x := range e {
		s += x.Seconds
	}
	r.SecondsPerEpoch = s / float64(len(e))
}

// PrintTable writes one line per run: epochs, test accuracy and loss,
// seconds per epoch.
func PrintTable(w io.Writer, res *Results) {
	fmt.Fprintf(w, "\n%-12s %8s %10s %10s %10s\n", "run", "epochs", "test acc", "test loss", "s/epoch")
	for _, r := range res.Runs {
		note := ""
		if r.Interrupted {
			note = "  (interrupted)"
		}
		fmt.Fprintf(w, "%-12s %8d %9.2f%% %10.4f %10.1f%s\n", r.Name, len(r.Epochs), 100*r.TestAccuracy, r.TestLoss, r.SecondsPerEpoch, note)
	}
	fmt.Fprintf(w, "(%d training and %d test images)\n", res.Train, res.Test)
}

// Write stores results.json and accuracy.png in dir.
func (res *Results) Write(dir string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	for _, r := range res.Runs {
		if len(r.Evaluations) > 0 {
			return res.plotErrors(filepath.Join(dir, "test_error.png"))
		}
	}
	return res.plot(filepath.Join(dir, "accuracy.png"))
}

// plotErrors draws the test error of every semi-supervised run against the
// iterations, on a log scale.
func (res *Results) plotErrors(path string) error {
	p := plot.New()
	p.Title.Text = "MNIST test error"
	p.X.Label.Text = "iteration"
	p.Y.Label.Text = "test error (%)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var lines []interface{}
	for _, r := range res.Runs {
		pts := make(plotter.XYs, len(r.Evaluations))
		for i, e := range r.Evaluations {
			pts[i] = plotter.XY{X: float64(e.Iteration), Y: math.Max(0.01, 100*(1-e.TestAccuracy))}
		}
		lines = append(lines, r.Name, pts)
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	p.Legend.Top = true
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// plot draws the test accuracy of every run against the epoch.
func (res *Results) plot(path string) error {
	p := plot.New()
	p.Title.Text = "MNIST test accuracy"
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "test accuracy (%)"
	var lines []interface{}
	for _, r := range res.Runs {
		pts := make(plotter.XYs, len(r.Epochs))
		for i, e := range r.Epochs {
			pts[i] = plotter.XY{X: float64(e.Epoch), Y: 100 * e.TestAccuracy}
		}
		lines = append(lines, r.Name, pts)
	}
	if len(lines) > 0 {
		if err := plotutil.AddLinePoints(p, lines...); err != nil {
			return fmt.Errorf("plotting: %w", err)
		}
	}
	p.Legend.Top = false
	p.Legend.Left = false
	if err := p.Save(6*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Read loads the results.json that Write stored in dir.
func Read(dir string) (*Results, error) {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return nil, err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "results.json"), err)
	}
	return &res, nil
}
