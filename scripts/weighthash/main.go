// Command weighthash trains each of the four runs of the Keras original's
// experiment for a few steps, and three short semi-supervised runs (an MLP
// with batch normalization, Adam with its schedule: supervised, VAT with the
// finite-difference probe, VAT with the exact probe and entropy
// minimization), and prints an FNV-64a hash of the weights after each: a
// fingerprint to compare before and after a change that must not alter
// results (a refactor, a dependency upgrade). Same kernel and same
// GOMAXPROCS-independent code, same hash.
//
//	go run ./scripts/weighthash [-images 1024] [-seed 7]
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"os"

	"github.com/org/vat"
	"github.com/org/vat/mnist"
)

func main() {
	images := flag.Int("images", 1024, "training images (one epoch of batch 128)")
	seed := flag.Uint64("seed", 7, "seed of weights, shuffling, dropout and VAT noise")
	flag.Parse()
	train, _, err := mnist.Load("")
	if err != nil {
		fmt.Fprintln(os.Stderr, "weighthash:", err)
		os.Exit(1)
	}
	keras := &vat.VATConfig{Xi: 10, Eps: 1, Probe: vat.FiniteDifference} // the Keras original's settings
	for _, run := range []struct {
		name    string
		dropout bool
		vat     *vat.VATConfig
	}{{"plain", false, nil}, {"dropout", true, nil}, {"vat", false, keras}, {"dropout+vat", true, keras}} {
		m, err := vat.NewModel(vat.ModelConfig{Dropout: run.dropout, Seed: *seed})
		if err == nil {
			var tr *vat.Trainer
			if tr, err = vat.NewTrainer(m, vat.TrainConfig{VAT: run.vat, Seed: *seed}); err == nil {
				_, err = tr.TrainEpoch(context.Background(), train.Head(*images))
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "weighthash:", err)
			os.Exit(1)
		}
		fmt.Printf("%-12s %016x\n", run.name, hash(m))
	}
	split, err := vat.SplitLabeled(train.Head(2000), 100, 10, *seed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "weighthash:", err)
		os.Exit(1)
	}
	for _, run := range []struct {
		name   string
		vat    *vat.VATConfig
		entMin float64
	}{{"semi", nil, 0}, {"semi+vat", &vat.VATConfig{Xi: 10, Eps: 5, Probe: vat.FiniteDifference}, 0}, {"semi+exact", &vat.VATConfig{Eps: 5, Probe: vat.Exact}, 1}} {
		m, err := vat.Sequential([]int{784}, *seed, vat.Dense(64), vat.BatchNorm(), vat.ReLU(), vat.Dense(10))
		if err == nil {
			var tr *vat.SemiTrainer
			if tr, err = vat.NewSemiTrainer(m, vat.SemiSupervisedConfig{Iterations: 12, LabeledBatch: 50, UnlabeledBatch: 100,
				VAT: run.vat, EntMin: run.entMin, Seed: *seed}); err == nil {
				_, err = tr.Fit(context.Background(), split.Labeled, split.Unlabeled, nil)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "weighthash:", err)
			os.Exit(1)
		}
		fmt.Printf("%-12s %016x\n", run.name, hash(m))
	}
}

// hash is the FNV-64a hash of the model's weights, little-endian float32
// bits in parameter order.
func hash(m *vat.Model) uint64 {
	h := fnv.New64a()
	for _, p := range m.Params() {
		for _, v := range p.Value.Data().([]float32) {
			binary.Write(h, binary.LittleEndian, math.Float32bits(v))
		}
	}
	return h.Sum64()
}
