package vat

import (
	"fmt"
	"slices"
	"sync"
	"testing"
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
	sizes := []int{1, 7, 503} // several batch sizes: several cached graphs (503 = 500 + 3)
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
