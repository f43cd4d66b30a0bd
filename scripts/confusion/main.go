// Command confusion prints where a model trained on MNIST goes wrong on
// the test set: the error per true class and the largest cells of the
// confusion matrix. It reads a semi-supervised checkpoint (.ckpt, say a
// run of examples/semisup in progress) or a saved model (vat.LoadModel's
// files, e.g. examples/semisup's -out/models):
//
//	go run ./scripts/confusion [-pop-stats] out/semisup/checkpoints/vat-1.ckpt [more files]
//
// With -pop-stats, batch normalization is evaluated on population
// statistics over the 60,000 training images (Model.PopulationStats, what
// examples/semisup's -bn-stats pop does before each evaluation) instead of
// the running averages the file holds; both are printed.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/org/vat"
	"github.com/org/vat/mnist"
)

func main() {
	pop := flag.Bool("pop-stats", false, "also evaluate with batch norm's population statistics over the training images")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: confusion [-pop-stats] FILE.ckpt|FILE.safetensors ...")
		os.Exit(2)
	}
	train, test, err := mnist.Load("")
	if err != nil {
		fail(err)
	}
	for _, p := range flag.Args() {
		m, what, err := load(p)
		if err != nil {
			fail(err)
		}
		pred, err := m.Predict(test.Images)
		if err != nil {
			fail(fmt.Errorf("%s: %w", p, err))
		}
		report(p, what+", running averages", pred, test.Labels)
		if !*pop {
			continue
		}
		if err := m.PopulationStats(train, 0); err != nil {
			fail(fmt.Errorf("%s: %w", p, err))
		}
		if pred, err = m.Predict(test.Images); err != nil {
			fail(fmt.Errorf("%s: %w", p, err))
		}
		report(p, what+", population statistics", pred, test.Labels)
	}
}

// load returns the model in a checkpoint or a saved-model file, and a
// line saying what it is.
func load(p string) (*vat.Model, string, error) {
	if strings.HasSuffix(p, ".ckpt") {
		t, err := vat.ResumeSemi(p, vat.SemiSupervisedConfig{})
		if err != nil {
			return nil, "", err
		}
		return t.Model(), fmt.Sprintf("checkpoint at iteration %d", t.Iteration()), nil
	}
	m, err := vat.LoadModel(p)
	return m, "saved model", err
}

func report(path, what string, pred, labels []int) {
	const k = vat.Classes
	var conf [k][k]int
	var total [k]int
	wrong := 0
	for i, p := range pred {
		conf[labels[i]][p]++
		total[labels[i]]++
		if p != labels[i] {
			wrong++
		}
	}
	fmt.Printf("%s (%s): test error %.2f %% (%d of %d)\n", path, what, 100*float64(wrong)/float64(len(pred)), wrong, len(pred))
	fmt.Print("  error per true class:")
	for c := 0; c < k; c++ {
		fmt.Printf(" %d: %.1f %%", c, 100*float64(total[c]-conf[c][c])/float64(max(1, total[c])))
	}
	fmt.Println()
	type cell struct{ t, p, n int }
	var cells []cell
	for t := 0; t < k; t++ {
		for p := 0; p < k; p++ {
			if t != p && conf[t][p] > 0 {
				cells = append(cells, cell{t, p, conf[t][p]})
			}
		}
	}
	sort.Slice(cells, func(a, b int) bool { return cells[a].n > cells[b].n })
	fmt.Print("  largest confusions (true -> predicted: images):")
	for _, c := range cells[:min(5, len(cells))] {
		fmt.Printf(" %d->%d: %d", c.t, c.p, c.n)
	}
	fmt.Println()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "confusion:", err)
	os.Exit(1)
}
