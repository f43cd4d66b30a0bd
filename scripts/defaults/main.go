// Command defaults measures VAT's default settings against supervised
// training on data the library was not tuned on: two moons, 20-D Gaussian
// blobs and MNIST with 1,000 labels (MNIST with 100 labels runs through
// examples/semisup, whose runs take hours). For every dataset and label
// split it trains a SemiTrainer with VAT nil (the supervised baseline)
// and with VATConfig{EpsScale: s} for each s of -scales (0: VATConfig{},
// the default, whose EpsScale SemiTrainer's search chooses), and prints
// the final test accuracy per split:
//
//	go run ./scripts/defaults [-data moons,blobs,mnist1000] [-splits 1,2,3] [-scales 0.02,0.05,0.1,0.2] [-long]
//
// -long trains ten times as many iterations, to see whether a setting
// collapses later; -iterations sets them outright. -select adds a row
// whose EpsScale vat.SelectEps chooses per split from the labeled samples
// alone (the grid given, each candidate trained for -select-iterations),
// before the chosen scale trains as the other rows do. mnist100 (MNIST
// with 100 labels, the 1200-1200 MLP with batch norm) is not in the
// default -data: 3,000 updates take about 5 minutes a run on one core.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/org/vat"
	"github.com/org/vat/internal/toydata"
	"github.com/org/vat/mnist"
)

type task struct {
	name              string
	train, test       *vat.Dataset
	labels, classes   int
	iterations        int
	labeled, unlabBat int
	net               func(seed uint64) (*vat.Model, error)
}

func main() {
	data := flag.String("data", "moons,blobs,mnist1000", "comma-separated datasets: moons, blobs, mnist1000, mnist100")
	splits := flag.String("splits", "1,2,3", "comma-separated label-split seeds")
	scales := flag.String("scales", "0,0.05,0.2", "comma-separated VATConfig.EpsScale values (0: the default; empty: none)")
	long := flag.Bool("long", false, "ten times the iterations")
	running = flag.Bool("running-stats", false, "evaluate batch norm with its running averages instead of population statistics over the unlabeled pool (the default)")
	align = flag.Bool("align", false, "VAT runs: SemiSupervisedConfig.Align (VAT's unlabeled targets aligned with the labeled class frequencies)")
	bn := flag.Bool("bn", false, "moons and blobs: batch norm after each hidden layer (the default probe is then finite-difference)")
	iterations := flag.Int("iterations", 0, "updates per run (0: the dataset's own, times 10 with -long)")
	sel := flag.String("select", "", "comma-separated EpsScale grid: add a row whose scale vat.SelectEps picks per split from the labeled samples")
	selIter := flag.Int("select-iterations", 0, "-select: updates per candidate (0: the runs' own)")
	studyOut := flag.String("select-study", "", "with -select: instead of the table, write each candidate's per-sample held-out results (JSON lines) to this file")
	flag.Parse()
	if *iterations < 0 || *selIter < 0 {
		fail(fmt.Errorf("-iterations %d, -select-iterations %d: want >= 0", *iterations, *selIter))
	}
	var grid []float64
	if *sel != "" {
		for _, f := range strings.Split(*sel, ",") {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil || !(v > 0 && v <= 10) {
				fail(fmt.Errorf("-select: %q: want scales in (0, 10]", f))
			}
			grid = append(grid, v)
		}
	}
	var ss []float64
	for _, f := range strings.Split(*scales, ",") {
		if f == "" { // -scales "": no fixed-scale rows
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			fail(fmt.Errorf("-scales: %q: %w", f, err))
		}
		ss = append(ss, v)
	}
	var seeds []uint64
	for _, f := range strings.Split(*splits, ",") {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			fail(fmt.Errorf("-splits: %q: %w", f, err))
		}
		seeds = append(seeds, v)
	}
	var studyEnc *json.Encoder
	if *studyOut != "" {
		if grid == nil {
			fail(fmt.Errorf("-select-study needs -select"))
		}
		f, err := os.OpenFile(*studyOut, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		studyEnc = json.NewEncoder(f)
	}
	for _, name := range strings.Split(*data, ",") {
		t, err := makeTask(name, *bn)
		if err != nil {
			fail(err)
		}
		if *long {
			t.iterations *= 10
		}
		if *iterations > 0 {
			t.iterations = *iterations
		}
		if studyEnc != nil {
			if *bn && name != "mnist1000" && name != "mnist100" {
				t.name += ", batch norm"
			}
			for _, seed := range seeds {
				if err := study(studyEnc, t, grid, *selIter, seed); err != nil {
					fail(fmt.Errorf("%s, split %d: %w", t.name, seed, err))
				}
			}
			continue
		}
		net := ""
		if *bn && name != "mnist1000" {
			net = ", MLP with batch norm"
		}
		fmt.Printf("## %s%s: %d labels, %d training samples, %d iterations, data scale %.3f\n\n", t.name, net, t.labels, t.train.Len(), t.iterations, vat.DataScale(t.train))
		fmt.Printf("| setting | %smean |\n|---|%s---:|\n", joinSeeds(seeds), strings.Repeat("---:|", len(seeds)))
		settings := []*vat.VATConfig{nil}
		for _, s := range ss {
			settings = append(settings, &vat.VATConfig{EpsScale: s})
		}
		if grid != nil {
			settings = append(settings, selectRow)
		}
		for _, v := range settings {
			label := "supervised"
			switch {
			case v == selectRow:
				label = fmt.Sprintf("VAT, EpsScale by SelectEps over %v", grid)
			case v != nil && v.EpsScale == 0:
				label = "VAT, defaults (VATConfig{}: EpsScale searched)"
			case v != nil:
				label = fmt.Sprintf("VAT, EpsScale %g", v.EpsScale)
			}
			var accs []float64
			var eps float64
			var probe vat.Probe
			var picks []string
			start := time.Now()
			for _, seed := range seeds {
				rv := v
				if v == selectRow {
					best, all, err := choose(t, grid, *selIter, seed)
					if err != nil {
						fail(fmt.Errorf("%s, SelectEps, split %d: %w", t.name, seed, err))
					}
					fmt.Fprintf(os.Stderr, "%s split %d: SelectEps %+v -> %g\n", t.name, seed, all, best)
					picks = append(picks, fmt.Sprint(best))
					rv = &vat.VATConfig{EpsScale: best}
				}
				acc, c, err := run(t, rv, seed)
				if err != nil {
					fail(fmt.Errorf("%s, %s, split %d: %w", t.name, label, seed, err))
				}
				accs = append(accs, acc)
				if c != nil {
					eps, probe = c.Eps, c.Probe
				}
			}
			switch {
			case v == selectRow:
				label += fmt.Sprintf(" (picked %s; %v)", strings.Join(picks, " / "), probe)
			case v != nil:
				label += fmt.Sprintf(" (ε %.3g, %v)", eps, probe)
			}
			fmt.Printf("| %s |", label)
			mean := 0.0
			for _, a := range accs {
				fmt.Printf(" %.1f %% |", 100*a)
				mean += a / float64(len(accs))
			}
			fmt.Printf(" %.1f %% |\n", 100*mean)
			fmt.Fprintf(os.Stderr, "%s %s: %.0f s\n", t.name, label, time.Since(start).Seconds())
		}
		fmt.Println()
	}
}

var running, align *bool

// selectRow marks the -select row among the settings.
var selectRow = &vat.VATConfig{}

// choose runs vat.SelectEps on split seed's labeled samples: each scale of
// grid trains a fresh model for iterations updates (0: the task's) on 70 %
// of each class, and is scored on the other 30 %.
func choose(t *task, grid []float64, iterations int, seed uint64) (float64, []vat.EpsChoice, error) {
	split, err := vat.SplitLabeled(t.train, t.labels, t.classes, seed)
	if err != nil {
		return 0, nil, err
	}
	return vat.SelectEps(context.Background(), func() (*vat.Model, error) { return t.net(seed) }, split.Labeled, split.Unlabeled,
		searchConfig(t, iterations, seed), grid, 0.3, seed)
}

// searchConfig is the configuration each SelectEps candidate trains with
// (choose, and study, which repeats the search): iterations updates (0: the
// task's) on batches of the 70 % of the labels it trains on.
func searchConfig(t *task, iterations int, seed uint64) vat.SemiSupervisedConfig {
	if iterations == 0 {
		iterations = t.iterations
	}
	return vat.SemiSupervisedConfig{Iterations: iterations, LabeledBatch: min(t.labeled, t.labels*7/10), UnlabeledBatch: t.unlabBat,
		EvalEvery: iterations, Seed: seed, BNStats: bnStats()}
}

func bnStats() vat.BNStats {
	if *running {
		return vat.RunningBNStats
	}
	return vat.PopulationBNStats
}

func joinSeeds(seeds []uint64) string {
	var b strings.Builder
	for _, s := range seeds {
		fmt.Fprintf(&b, "split %d | ", s)
	}
	return b.String()
}

func run(t *task, v *vat.VATConfig, seed uint64) (acc float64, resolved *vat.VATConfig, err error) {
	split, err := vat.SplitLabeled(t.train, t.labels, t.classes, seed)
	if err != nil {
		return 0, nil, err
	}
	m, err := t.net(seed)
	if err != nil {
		return 0, nil, err
	}
	tr, err := vat.NewSemiTrainer(m, vat.SemiSupervisedConfig{Iterations: t.iterations, LabeledBatch: t.labeled, UnlabeledBatch: t.unlabBat,
		VAT: v, Align: v != nil && *align, EvalEvery: t.iterations, Seed: seed, BNStats: bnStats()})
	if err != nil {
		return 0, nil, err
	}
	evals, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, t.test)
	if err != nil {
		return 0, nil, err
	}
	if all := tr.EpsChoices(); len(all) > 0 {
		fmt.Fprintf(os.Stderr, "%s split %d: the default's ε search %+v\n", t.name, seed, all)
	}
	return evals[len(evals)-1].TestAccuracy, tr.Config().VAT, nil
}

func makeTask(name string, bn bool) (*task, error) {
	mlp := func(in int, hidden []int, classes int) func(uint64) (*vat.Model, error) {
		return func(seed uint64) (*vat.Model, error) {
			var ls []vat.Layer
			for _, h := range hidden {
				ls = append(ls, vat.Dense(h))
				if bn {
					ls = append(ls, vat.BatchNorm())
				}
				ls = append(ls, vat.ReLU())
			}
			return vat.Sequential([]int{in}, seed, append(ls, vat.Dense(classes))...)
		}
	}
	switch name {
	case "moons":
		x, l := toydata.Moons(1000, 0.1, 1)
		tx, tl := toydata.Moons(1000, 0.1, 2)
		train, err := vat.NewDataset(x, []int{2}, l, 2)
		if err != nil {
			return nil, err
		}
		test, err := vat.NewDataset(tx, []int{2}, tl, 2)
		return &task{name: "two moons (noise 0.1)", train: train, test: test, labels: 8, classes: 2, iterations: 500,
			labeled: 8, unlabBat: 64, net: mlp(2, []int{64, 64}, 2)}, err
	case "blobs":
		x, l := toydata.Blobs(3000, 20, 3, 3, 1)
		tx, tl := toydata.Blobs(3000, 20, 3, 3, 2)
		train, err := vat.NewDataset(x, []int{20}, l, 3)
		if err != nil {
			return nil, err
		}
		test, err := vat.NewDataset(tx, []int{20}, tl, 3)
		return &task{name: "20-D Gaussian blobs (3 classes)", train: train, test: test, labels: 30, classes: 3, iterations: 500,
			labeled: 30, unlabBat: 128, net: mlp(20, []int{64, 64}, 3)}, err
	case "mnist100", "mnist1000":
		train, test, err := mnist.Load("")
		if err != nil {
			return nil, err
		}
		bn = true // the MNIST networks always have batch norm
		t := &task{name: "MNIST, 1,000 labels", train: train, test: test, labels: 1000, classes: 10, iterations: 2000,
			labeled: 100, unlabBat: 250, net: mlp(784, []int{256, 256}, 10)}
		if name == "mnist100" { // examples/semisup's network
			t.name, t.labels, t.iterations, t.net = "MNIST, 100 labels", 100, 3000, mlp(784, []int{1200, 1200}, 10)
		}
		return t, nil
	}
	return nil, fmt.Errorf("-data: unknown dataset %q (want moons, blobs, mnist1000 or mnist100)", name)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "defaults:", err)
	os.Exit(1)
}
