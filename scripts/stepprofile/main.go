// Command stepprofile writes a CPU profile of training steps alone: the
// steps of BenchmarkTrainStep (the MNIST CNN, batch 128, plain or VAT) or of
// BenchmarkSemiStep (the 1200-1200 MLP with batch norm, 100 labeled and 250
// unlabeled images, either probe), after a few warm-up steps. A profile of
// the benchmark binaries themselves is about half MNIST loading.
//
//	go run ./scripts/stepprofile -step plain -out /tmp/plain.prof
//	go tool pprof -top /tmp/plain.prof
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/org/vat"
)

func main() {
	step := flag.String("step", "plain", "the step to profile: plain, vat, semi-exact or semi-fd")
	steps := flag.Int("steps", 60, "profiled steps (>= 1)")
	warm := flag.Int("warm", 3, "steps before the profile starts (>= 1; the first builds the graph)")
	out := flag.String("out", "step.prof", "the CPU profile to write")
	flag.Parse()
	if err := run(*step, *steps, *warm, *out); err != nil {
		fmt.Fprintln(os.Stderr, "stepprofile:", err)
		os.Exit(1)
	}
}

func run(step string, steps, warm int, out string) error {
	if steps < 1 || warm < 1 {
		return fmt.Errorf("-steps %d and -warm %d: both must be >= 1", steps, warm)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, start, elapsed := 0, time.Time{}, time.Duration(0)
	var perr error
	onStep := func(vat.StepInfo) {
		n++
		switch n {
		case warm:
			perr = pprof.StartCPUProfile(f)
			start = time.Now()
		case warm + steps:
			pprof.StopCPUProfile()
			elapsed = time.Since(start)
			cancel()
		}
	}
	train, _, err := vat.LoadMNIST("")
	if err != nil {
		return err
	}
	switch step {
	case "plain", "vat":
		var vc *vat.VATConfig
		if step == "vat" {
			vc = &vat.VATConfig{}
		}
		m, err := vat.NewModel(vat.ModelConfig{Seed: 1})
		if err != nil {
			return err
		}
		tr, err := vat.NewTrainer(m, vat.TrainConfig{VAT: vc, Seed: 1, BatchSize: 128, Epochs: 1000, OnStep: onStep})
		if err != nil {
			return err
		}
		_, err = tr.Fit(ctx, train, nil)
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	case "semi-exact", "semi-fd":
		probe := vat.Exact
		if step == "semi-fd" {
			probe = vat.FiniteDifference
		}
		split, err := vat.SplitLabeled(train, 100, vat.Classes, 1)
		if err != nil {
			return err
		}
		m, err := vat.Sequential([]int{1, 28, 28}, 1, vat.Flatten(), vat.Dense(1200), vat.BatchNorm(), vat.ReLU(),
			vat.Dense(1200), vat.BatchNorm(), vat.ReLU(), vat.Dense(10))
		if err != nil {
			return err
		}
		tr, err := vat.NewSemiTrainer(m, vat.SemiSupervisedConfig{Iterations: warm + steps,
			VAT: &vat.VATConfig{Eps: 0.3, Xi: 1e-6, Probe: probe}, BNStats: vat.RunningBNStats, OnStep: onStep})
		if err != nil {
			return err
		}
		if _, err := tr.Fit(ctx, split.Labeled, split.Unlabeled, nil); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	default:
		return fmt.Errorf("-step %q: want plain, vat, semi-exact or semi-fd", step)
	}
	if perr != nil {
		return perr
	}
	if n < warm+steps {
		pprof.StopCPUProfile()
		return fmt.Errorf("the run ended after %d steps, before the %d asked for", n, warm+steps)
	}
	fmt.Printf("%s: %d steps profiled, %.1f ms a step, profile in %s\n", step, steps, float64(elapsed.Microseconds())/1e3/float64(steps), out)
	return nil
}
