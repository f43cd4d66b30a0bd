// Command defaults measures VAT's default settings against supervised
// training on data the library was not tuned on: two moons, 20-D Gaussian
// blobs and MNIST with 1,000 labels (MNIST with 100 labels runs through
// examples/semisup, whose runs take hours). For every dataset and label
// split it trains a SemiTrainer with VAT nil (the supervised baseline)
// and with VATConfig{EpsScale: s} for each s of -scales (0.05, the
// default, among them), and prints the final test accuracy per split:
//
//	go run ./scripts/defaults [-data moons,blobs,mnist1000] [-splits 1,2,3] [-scales 0.02,0.05,0.1,0.2] [-long]
//
// -long trains ten times as many iterations, to see whether a setting
// collapses later.
package main

import (
	"context"
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
	data := flag.String("data", "moons,blobs,mnist1000", "comma-separated datasets: moons, blobs, mnist1000")
	splits := flag.String("splits", "1,2,3", "comma-separated label-split seeds")
	scales := flag.String("scales", "0,0.05,0.2", "comma-separated VATConfig.EpsScale values (0: the default)")
	long := flag.Bool("long", false, "ten times the iterations")
	running = flag.Bool("running-stats", false, "evaluate batch norm with its running averages instead of population statistics over the unlabeled pool (the default)")
	bn := flag.Bool("bn", false, "moons and blobs: batch norm after each hidden layer (the default probe is then finite-difference)")
	flag.Parse()
	var ss []float64
	for _, f := range strings.Split(*scales, ",") {
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
	for _, name := range strings.Split(*data, ",") {
		t, err := makeTask(name, *bn)
		if err != nil {
			fail(err)
		}
		if *long {
			t.iterations *= 10
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
		for _, v := range settings {
			label := "supervised"
			if v != nil {
				label = fmt.Sprintf("VAT, EpsScale %g", v.EpsScale)
				if v.EpsScale == 0 {
					label = "VAT, defaults (VATConfig{})"
				}
			}
			var accs []float64
			var eps float64
			var probe vat.Probe
			start := time.Now()
			for _, seed := range seeds {
				acc, c, err := run(t, v, seed)
				if err != nil {
					fail(fmt.Errorf("%s, %s, split %d: %w", t.name, label, seed, err))
				}
				accs = append(accs, acc)
				if c != nil {
					eps, probe = c.Eps, c.Probe
				}
			}
			if v != nil {
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

var running *bool

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
		VAT: v, EvalEvery: t.iterations, Seed: seed, BNStats: bnStats()})
	if err != nil {
		return 0, nil, err
	}
	evals, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, t.test)
	if err != nil {
		return 0, nil, err
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
	case "mnist1000":
		train, test, err := mnist.Load("")
		if err != nil {
			return nil, err
		}
		return &task{name: "MNIST, 1,000 labels", train: train, test: test, labels: 1000, classes: 10, iterations: 2000,
			labeled: 100, unlabBat: 250, net: func(seed uint64) (*vat.Model, error) {
				return vat.Sequential([]int{784}, seed, vat.Dense(256), vat.BatchNorm(), vat.ReLU(), vat.Dense(256), vat.BatchNorm(), vat.ReLU(), vat.Dense(10))
			}}, nil
	}
	return nil, fmt.Errorf("-data: unknown dataset %q (want moons, blobs or mnist1000)", name)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "defaults:", err)
	os.Exit(1)
}
