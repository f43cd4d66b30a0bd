package vat

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Predict, Probabilities and Evaluate may be called from several goroutines
// at once on one model (the Model doc promises it): each caller gets what a
// lone call gets. Run with -race in CI.
func TestConcurrentInference(t *testing.T) {
	_, test := loadMNIST(t)
	m, err := NewModel(ModelConfig{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	px := ImageRows * ImageCols
	sizes := []int{1, 7, evalBatch*3 + 3} // several batch sizes: several cached graphs
	wantPred := map[int][]int{}
	wantProb := map[int][]float32{}
	for _, n := range sizes {
		if wantPred[n], err = m.Predict(test.Images[:n*px]); err != nil {
			t.Fatal(err)
		}
		if wantProb[n], err = m.Probabilities(test.Images[:n*px]); err != nil {
			t.Fatal(err)
		}
	}
	wantEval, err := m.Evaluate(test.Head(200))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for r := 0; r < 2; r++ {
				n := sizes[(g+r)%len(sizes)]
				pred, err := m.Predict(test.Images[:n*px])
				if err != nil || !slices.Equal(pred, wantPred[n]) {
					errs <- fmt.Errorf("goroutine %d: Predict(%d images) differs from a lone call (err %v)", g, n, err)
					return
				}
				prob, err := m.Probabilities(test.Images[:n*px])
				if err != nil || !slices.Equal(prob, wantProb[n]) {
					errs <- fmt.Errorf("goroutine %d: Probabilities(%d images) differs from a lone call (err %v)", g, n, err)
					return
				}
				ev, err := m.Evaluate(test.Head(200))
				if err != nil || ev != wantEval {
					errs <- fmt.Errorf("goroutine %d: Evaluate gave %+v, a lone call %+v (err %v)", g, ev, wantEval, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A sample's probabilities do not depend on the batch it is computed in:
// those of images at the edges of evalBatch-sized batches, computed among
// evalBatch+3 images, equal those computed for the image alone, bit for
// bit: every product computes each sample's row on its own, and
// inference normalizes with fixed statistics.
func TestInferenceIndependentOfBatch(t *testing.T) {
	_, test := loadMNIST(t)
	m, err := NewModel(ModelConfig{Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	px, k := ImageRows*ImageCols, m.Classes()
	n := evalBatch + 3
	all, err := m.Probabilities(test.Images[:n*px])
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, evalBatch - 1, evalBatch, n - 1} {
		one, err := m.Probabilities(test.Images[i*px : (i+1)*px])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one, all[i*k:(i+1)*k]) {
			t.Errorf("image %d: alone %v, among %d images %v", i, one, n, all[i*k:(i+1)*k])
		}
	}
}

// Inference graphs fuse a 2×2 max-pool into the convolution before it (with
// or without its ReLU, after Valid or Same padding, on odd sizes whose last
// row and column the pool drops): their logits equal those of the graph
// with separate ops, bit for bit, on fresh random inputs.
func TestFusedPoolingMatchesSeparateOps(t *testing.T) {
	m, err := Sequential([]int{2, 11, 9}, 3, Conv2D(3, 3), ReLU(), MaxPool2D(2), Conv2D(4, 3, Same), MaxPool2D(2), Flatten(), Dense(5))
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	in := make([]float32, n*2*11*9)
	for i := range in {
		in[i] = float32(r.NormFloat64())
	}
	var logits [2][]float32
	for k, fuse := range []bool{false, true} {
		eg, err := buildEvalGraph(m, n, fuse)
		if err != nil {
			t.Fatal(err)
		}
		fused := strings.Contains(fmt.Sprint(eg.logits.Graph().AllNodes()), "Conv2dMaxPool2x2")
		if fused != fuse {
			t.Fatalf("fuse %v: the graph has the fused op: %v", fuse, fused)
		}
		copy(eg.x.Data().([]float32), in)
		out, err := eg.run()
		if err != nil {
			t.Fatal(err)
		}
		logits[k] = append([]float32(nil), out...)
	}
	if !slices.Equal(logits[0], logits[1]) {
		t.Fatalf("separate ops %v\nfused        %v", logits[0], logits[1])
	}
}
