// Command weighthash trains each of the four runs of the seed's experiment
// for a few steps and prints an FNV-64a hash of the weights after them: a
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
)

func main() {
	images := flag.Int("images", 1024, "training images (one epoch of batch 128)")
	seed := flag.Uint64("seed", 7, "seed of weights, shuffling, dropout and VAT noise")
	flag.Parse()
	train, _, err := vat.LoadMNIST("")
	if err != nil {
		fmt.Fprintln(os.Stderr, "weighthash:", err)
		os.Exit(1)
	}
	for _, run := range []struct {
		name    string
		dropout bool
		vat     *vat.VATConfig
	}{{"plain", false, nil}, {"dropout", true, nil}, {"vat", false, &vat.VATConfig{}}, {"dropout+vat", true, &vat.VATConfig{}}} {
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
		h := fnv.New64a()
		for _, p := range m.Params() {
			for _, v := range p.Value.Data().([]float32) {
				binary.Write(h, binary.LittleEndian, math.Float32bits(v))
			}
		}
		fmt.Printf("%-12s %016x\n", run.name, h.Sum64())
	}
}
