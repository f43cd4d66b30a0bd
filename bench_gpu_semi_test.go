package vat

import (
	"context"
	"testing"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/backend/backendtest"
	"github.com/org/vat/internal/backend/gputest"
)

// BenchmarkGPUSemiStep times a semi-supervised step of examples/semisup
// (MLP 784-1200-1200-10 with batch norm, 100 labeled and 250 unlabeled
// images, VAT with the finite-difference probe, Adam) on the GPU path: on
// the null device (every kernel a no-op: the host's share of a GPU step)
// and, in a cuda build on a GPU machine, on the GPU (auto mode).
//
//	go test -run '^$' -bench GPUSemiStep .
func BenchmarkGPUSemiStep(b *testing.B) {
	train, _, err := LoadMNIST("")
	if err != nil {
		b.Fatal(err)
	}
	split, err := SplitLabeled(train, 100, Classes, 1)
	if err != nil {
		b.Fatal(err)
	}
	devs := []gputest.Device{{Name: "null", Dev: &backendtest.NullDevice{}, Mode: backend.ModeAuto}}
	if gpu := gputest.Suite(); gpu != nil {
		devs = append(devs, gputest.Device{Name: "gpu-auto", Dev: gpu.Device(), Mode: backend.ModeAuto})
	}
	for _, dev := range devs {
		b.Run(dev.Name, func(b *testing.B) {
			a := gputest.With(b, dev.Dev, dev.Mode)
			defer backend.Use(nil)
			m, err := Sequential([]int{1, 28, 28}, 1, Flatten(), Dense(1200), BatchNorm(), ReLU(), Dense(1200), BatchNorm(), ReLU(), Dense(10))
			if err != nil {
				b.Fatal(err)
			}
			tr, err := NewSemiTrainer(m, SemiSupervisedConfig{Iterations: b.N + 1, VAT: &VATConfig{Eps: 5, Xi: 1e-3, Probe: FiniteDifference}})
			if err != nil {
				b.Fatal(err)
			}
			warm := true
			tr.cfg.OnStep = func(SemiStep) {
				if warm { // the first step builds the graph
					warm = false
					b.ResetTimer()
				}
			}
			if _, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, nil); err != nil {
				b.Fatal(err)
			}
			if err := a.Device().Sync(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
