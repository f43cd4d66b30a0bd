package vat

import (
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
	split := semiBenchSplit(b)
	devs := []gputest.Device{{Name: "null", Dev: &backendtest.NullDevice{}, Mode: backend.ModeAuto}}
	if gpu := gputest.Suite(); gpu != nil {
		devs = append(devs, gputest.Device{Name: "gpu-auto", Dev: gpu.Device(), Mode: backend.ModeAuto})
	}
	for _, dev := range devs {
		b.Run(dev.Name, func(b *testing.B) {
			a := gputest.With(b, dev.Dev, dev.Mode)
			defer backend.Use(nil)
			semiBenchSteps(b, split, &VATConfig{Eps: 5, Xi: 1e-3, Probe: FiniteDifference}, 0)
			if err := a.Device().Sync(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
