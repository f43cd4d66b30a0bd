package vat

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/org/vat/internal/kernels"
	"github.com/org/vat/internal/ops"
)

// cpuSeconds returns the process's user plus system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// benchTrainer returns a trainer of the preset (seed 1, VAT as given) whose
// graph for batches of 128 is built, warmed up on the first 128 images,
// and those images' indices.
func benchTrainer(b *testing.B, train *Dataset, vat *VATConfig) (*Trainer, []int) {
	return benchTrainerBatch(b, train, vat, 128)
}

// benchTrainerBatch is benchTrainer for batches of the given size.
func benchTrainerBatch(b *testing.B, train *Dataset, vat *VATConfig, batch int) (*Trainer, []int) {
	b.Helper()
	m, _ := NewModel(ModelConfig{Seed: 1})
	tr, err := NewTrainer(m, TrainConfig{VAT: vat, Seed: 1, BatchSize: batch})
	if err != nil {
		b.Fatal(err)
	}
	idx := make([]int, batch)
	for i := range idx {
		idx[i] = i
	}
	if err := tr.step(train, idx, &StepInfo{Iteration: 1, Iterations: 1}); err != nil { // build the graph
		b.Fatal(err)
	}
	return tr, idx
}

// BenchmarkTrainStep times one training step on a batch of 128 MNIST
// images, plain and with VAT (ip = 1), and reports the process's peak RSS
// during it (MNIST itself, as float32, is about 220 MB of it; the binary
// holds one copy, shared by every benchmark).
//
//	go test -run '^$' -bench '^BenchmarkTrainStep' .
func BenchmarkTrainStep(b *testing.B) {
	train, _ := loadMNIST(b) // the test binary's one copy
	for _, tc := range []struct {
		name string
		vat  *VATConfig
	}{{"plain", nil}, {"vat", &VATConfig{}}} {
		b.Run(tc.name, func(b *testing.B) {
			if err := resetPeakRSS(); err != nil {
				b.Log("cannot reset the peak RSS: ", err)
			}
			tr, idx := benchTrainer(b, train, tc.vat)
			b.ReportAllocs()
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				off := (i * 128) % (train.Len() - 128)
				for j := range idx {
					idx[j] = off + j
				}
				if err := tr.step(train, idx, &StepInfo{Iteration: 1, Iterations: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
			// CPU time is steadier than wall time on a shared machine: time
			// stolen by other tenants is not counted.
			b.ReportMetric(1000*(cpuSeconds()-cpu0)/float64(b.N), "cpu-ms/step")
			if rss, err := peakRSS(); err == nil {
				b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
			} else {
				b.Log(fmt.Sprint("peak RSS unavailable: ", err))
			}
		})
	}
}

// BenchmarkTrainStepBatch times training steps of 32, 128 and 512 images,
// plain and with VAT, and reports the time per step, per 128 images (the
// cost of the same work in batches of that size) and the peak RSS. Run
// each configuration in its own process for the RSS (the Go runtime keeps
// memory freed by an earlier one):
//
//	go test -run '^$' -bench '^BenchmarkTrainStepBatch/vat/512$' -benchtime 5x .
func BenchmarkTrainStepBatch(b *testing.B) {
	train, _ := loadMNIST(b)
	for _, tc := range []struct {
		name string
		vat  *VATConfig
	}{{"plain", nil}, {"vat", &VATConfig{}}} {
		for _, batch := range []int{32, 128, 512} {
			b.Run(fmt.Sprintf("%s/%d", tc.name, batch), func(b *testing.B) {
				if err := resetPeakRSS(); err != nil {
					b.Log("cannot reset the peak RSS: ", err)
				}
				tr, idx := benchTrainerBatch(b, train, tc.vat, batch)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					off := (i * batch) % (train.Len() - batch)
					for j := range idx {
						idx[j] = off + j
					}
					if err := tr.step(train, idx, &StepInfo{Iteration: 1, Iterations: 1}); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				ms := float64(b.Elapsed().Microseconds()) / 1e3 / float64(b.N)
				b.ReportMetric(ms, "ms/step")
				b.ReportMetric(ms*128/float64(batch), "ms/128-images")
				if rss, err := peakRSS(); err == nil {
					b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
				}
			})
		}
	}
}

// BenchmarkInference classifies the full MNIST test set (10,000 images) and
// reports images per second.
//
//	go test -run '^$' -bench Inference .
func BenchmarkInference(b *testing.B) {
	_, test := loadMNIST(b)
	m, _ := NewModel(ModelConfig{Seed: 1})
	if _, err := m.Evaluate(test.Head(evalBatch)); err != nil { // build the graph
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Evaluate(test); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(test.Len()*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkEfficiency reports, for the plain and the VAT training step of
// batch 128 and for the semi-supervised step of BenchmarkSemiStep (exact
// probe), the useful work's rate (the FLOPs of the convolution and dense
// products the step ran, counted by the ops, over the step's wall time)
// divided by the best SGEMM rate of this machine on all cores, measured in
// the same run (kernels.SgemmParallel, 1024³, best of 20): how close a step
// runs to the machine's own limit, whatever the CPU. Both rates are
// reported too.
//
//	go test -run '^$' -bench '^BenchmarkEfficiency' -benchtime 10x .
func BenchmarkEfficiency(b *testing.B) {
	train, _ := loadMNIST(b)
	for _, tc := range []struct {
		name string
		vat  *VATConfig
	}{{"plain", nil}, {"vat", &VATConfig{}}} {
		b.Run(tc.name, func(b *testing.B) {
			tr, idx := benchTrainer(b, train, tc.vat)
			best := sgemmPeak() // in the same sitting as the steps
			flops0 := ops.ProductFLOPs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := tr.step(train, idx, &StepInfo{Iteration: 1, Iterations: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportEfficiency(b, ops.ProductFLOPs()-flops0, best)
		})
	}
	b.Run("semi", func(b *testing.B) {
		split := semiBenchSplit(b)
		semiBenchSteps(b, split, &VATConfig{Eps: 0.3, Xi: 1e-6, Probe: Exact}, sgemmPeak())
	})
}

// reportEfficiency reports the rate of flops product FLOPs over the
// benchmark's elapsed time, per step and against the SGEMM rate best.
func reportEfficiency(b *testing.B, flops uint64, best float64) {
	perStep := float64(flops) / float64(b.N)
	rate := float64(flops) / b.Elapsed().Seconds()
	b.ReportMetric(perStep/1e9, "GFLOP/step")
	b.ReportMetric(rate/1e9, "GFLOP/s")
	b.ReportMetric(best/1e9, "sgemm-GFLOP/s")
	b.ReportMetric(100*rate/best, "%-of-sgemm")
}

// sgemmPeak returns the best rate, in FLOP/s, of kernels.SgemmParallel on
// 1024×1024 matrices over 20 products (about half a second on 2 cores).
func sgemmPeak() float64 {
	const d = 1024
	a, bm, c := make([]float32, d*d), make([]float32, d*d), make([]float32, d*d)
	for i := range a {
		a[i], bm[i] = float32(i%7)*0.1, float32(i%5)*0.1
	}
	best := 0.0
	for r := 0; r < 20; r++ {
		start := time.Now()
		kernels.SgemmParallel(false, false, d, d, d, a, d, bm, d, 0, c, d)
		best = max(best, 2*d*d*d/time.Since(start).Seconds())
	}
	return best
}

// BenchmarkSemiStep times one semi-supervised step of examples/semisup's
// network (MLP 784-1200-1200-10 with batch norm) at the official batch
// sizes (100 labeled, 250 unlabeled), with the exact probe.
func BenchmarkSemiStep(b *testing.B) {
	split := semiBenchSplit(b)
	for _, probe := range []Probe{Exact, FiniteDifference} {
		b.Run(probe.String(), func(b *testing.B) {
			semiBenchSteps(b, split, &VATConfig{Eps: 0.3, Xi: 1e-6, Probe: probe}, 0)
		})
	}
}

// semiBenchSplit returns MNIST's training set split into 100 labeled
// images (split 1) and the rest.
func semiBenchSplit(b *testing.B) *Split {
	train, _, err := LoadMNIST("")
	if err != nil {
		b.Fatal(err)
	}
	split, err := SplitLabeled(train, 100, Classes, 1)
	if err != nil {
		b.Fatal(err)
	}
	return split
}

// semiBenchSteps trains examples/semisup's network for b.N timed steps
// with VAT as vat says; the first step, which builds the graph, is not
// timed. With a best SGEMM rate > 0 it reports the steps' efficiency
// against it (see BenchmarkEfficiency).
func semiBenchSteps(b *testing.B, split *Split, vat *VATConfig, best float64) {
	m, err := Sequential([]int{1, 28, 28}, 1, Flatten(), Dense(1200), BatchNorm(), ReLU(), Dense(1200), BatchNorm(), ReLU(), Dense(10))
	if err != nil {
		b.Fatal(err)
	}
	// Reports without a test set cost nothing, but population statistics
	// would run one pass over 10,000 images at each: the benchmark times
	// the step alone.
	tr, err := NewSemiTrainer(m, SemiSupervisedConfig{Iterations: b.N + 1, VAT: vat, BNStats: RunningBNStats})
	if err != nil {
		b.Fatal(err)
	}
	warm := true
	var flops0 uint64
	tr.cfg.OnStep = func(SemiStep) {
		if warm { // the first step builds the graph
			warm = false
			flops0 = ops.ProductFLOPs()
			b.ResetTimer()
		}
	}
	if _, err := tr.Fit(context.Background(), split.Labeled, split.Unlabeled, nil); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if best > 0 {
		reportEfficiency(b, ops.ProductFLOPs()-flops0, best)
	}
}
