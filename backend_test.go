package vat

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/backend/backendtest"
	"github.com/org/vat/internal/device"
	"github.com/org/vat/internal/kernels"
)

// suiteGPU is the build's own GPU backend (a `-tags cuda` build on a machine
// with a GPU), or nil. The rest of the suite tests the CPU code, so TestMain
// switches the backend off; the tests in this file switch a device on, per
// test: the reference hostDevice always, the real GPU where there is one.
var suiteGPU *backend.Accelerator

func TestMain(m *testing.M) {
	suiteGPU = backend.Active()
	backend.Use(nil)
	os.Exit(m.Run())
}

type testDevice struct {
	name string
	dev  device.GPU
	mode backend.Mode // cuDNN or the device's own kernels, where it has both
}

// testDevices returns the devices to run GPU-path tests on, each once with
// its own convolution and pooling kernels and once through its dnnDevice
// (cuDNN on the GPU, a float64 definition on the host device).
func testDevices(t *testing.T) []testDevice {
	host := &backendtest.HostDevice{}
	ds := []testDevice{{"host", host, backend.ModeOff}, {"host/dnn", host, backend.ModeOn}}
	if suiteGPU != nil {
		ds = append(ds, testDevice{"gpu", suiteGPU.Device(), backend.ModeOff}, testDevice{"gpu/cudnn", suiteGPU.Device(), backend.ModeOn})
	} else if backend.Registered() {
		t.Logf("only the host reference device: no usable GPU (%s)", backend.Note())
	}
	return ds
}

// realGPU returns the GPU or skips the test, saying why.
func realGPU(t *testing.T) device.GPU {
	t.Helper()
	if suiteGPU == nil {
		if !backend.Registered() {
			t.Skip("needs a GPU: build with -tags cuda on a machine with one")
		}
		t.Skipf("needs a GPU: %s", backend.Note())
	}
	return suiteGPU.Device()
}

// withDevice makes d the backend for the rest of the test (nil: the CPU),
// in cuDNN mode mode[0] (default: the device's own kernels).
func withDevice(t testing.TB, d device.GPU, mode ...backend.Mode) *backend.Accelerator {
	t.Helper()
	if d == nil {
		backend.Use(nil)
		return nil
	}
	m := backend.ModeOff
	if len(mode) > 0 {
		m = mode[0]
	}
	a := backend.New(d, m)
	backend.Use(a)
	t.Cleanup(func() {
		backend.Use(nil)
		if err := a.Release(); err != nil {
			t.Errorf("releasing device memory: %v", err)
		}
	})
	return a
}

// closeTo fails unless max|got−want| ≤ tol·max(max|want|, 1e-3): a
// tolerance relative to the tensor's scale, since float32 sums taken in
// another order differ by a few ulps of the largest partial sums, not of
// each (possibly cancelled) entry.
func closeTo(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	closeToBut(t, what, got, want, tol, 0)
}

// closeToBut is closeTo allowing up to flips entries to be off by as much
// as 100·tol. Gradients need it: where a ReLU's input lies within rounding
// of 0, one backend may pass that unit's gradient and the other not. Such a
// flip changes the forward pass by less than the rounding itself, but sends
// a whole unit's gradient (or none) into the layer's weight gradient.
func closeToBut(t *testing.T, what string, got, want []float32, tol float64, flips int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale := 1e-3
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	off := 0
	for i := range want {
		d := math.Abs(float64(got[i])-float64(want[i])) / scale
		switch {
		case math.IsNaN(d) || d > 100*tol:
			t.Fatalf("%s: [%d] = %v, want %v (error %.3g of scale %.3g, tolerance %g)", what, i, got[i], want[i], d, scale, tol)
		case d > tol:
			off++
			if off > flips {
				t.Fatalf("%s: [%d] = %v, want %v (error %.3g of scale %.3g, tolerance %g; %d such entries allowed)",
					what, i, got[i], want[i], d, scale, tol, flips)
			}
		}
	}
}

// reluFlips is how many entries of a gradient with n entries closeToBut lets
// off: one, plus one per thousand.
func reluFlips(n int) int { return 1 + n/1000 }

// hostCopy returns a copy of a value's host data after synchronizing it.
func hostCopy(t *testing.T, v G.Value) []float32 {
	t.Helper()
	d := v.(*tensor.Dense).Data().([]float32)
	if err := backend.SyncToHost(d); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), d...)
}

// Every op with a GPU path, on fresh random inputs of several shapes: the
// device's result against the CPU op's. Tolerance 1e-4 of the output's
// scale (float32 sums in another order: the largest has 4,608 terms).
func TestGPUOpsMatchCPU(t *testing.T) {
	type opCase struct {
		name string
		op   func() G.Op // a fresh op: CPU and device each get their own
		in   []tensor.Shape
	}
	prep := map[string]func(in []G.Value){} // by case name: adjusts the random inputs
	conv := func(xs, ws tensor.Shape) []tensor.Shape { return []tensor.Shape{xs, ws, {ws[0]}} }
	convOut := func(xs, ws tensor.Shape) tensor.Shape {
		s, _ := convShape(xs, ws, tensor.Shape{ws[0]})
		return s
	}
	x1, w1 := tensor.Shape{3, 1, 28, 28}, tensor.Shape{32, 1, 3, 3}
	x2, w2 := tensor.Shape{2, 32, 26, 26}, tensor.Shape{32, 32, 3, 3}
	x3, w3 := tensor.Shape{2, 3, 9, 7}, tensor.Shape{4, 3, 2, 4}
	var cases []opCase
	for _, s := range [][2]tensor.Shape{{x1, w1}, {x2, w2}, {x3, w3}} {
		xs, ws := s[0], s[1]
		cases = append(cases,
			opCase{"Conv2d " + fmt.Sprint(xs), func() G.Op { return newConv2dOp(false) }, conv(xs, ws)},
			opCase{"Conv2d+ReLU " + fmt.Sprint(xs), func() G.Op { return newConv2dOp(true) }, conv(xs, ws)},
			opCase{"Conv2dGradInput " + fmt.Sprint(xs), func() G.Op {
				return &convGradInputOp{opBase: newOpBase("Conv2dGradInput"), xshape: xs}
			}, []tensor.Shape{ws, convOut(xs, ws)}},
			opCase{"Conv2dGradFilter " + fmt.Sprint(xs), func() G.Op {
				return &convGradFilterOp{opBase: newOpBase("Conv2dGradFilter"), wshape: ws}
			}, []tensor.Shape{xs, convOut(xs, ws)}},
		)
	}
	for _, xs := range []tensor.Shape{{2, 32, 24, 24}, {3, 2, 7, 5}} {
		ys, _ := poolShape(xs)
		cases = append(cases,
			opCase{"MaxPool " + fmt.Sprint(xs), func() G.Op { return newMaxPoolOp() }, []tensor.Shape{xs}},
			// The gradient is checked on inputs whose windows have one
			// maximum each (random floats); ties are covered below. y must
			// be x's pooling: cuDNN finds the maxima in x, our kernels
			// look for y's value.
			opCase{"MaxPoolGrad " + fmt.Sprint(xs), func() G.Op {
				return &maxPoolGradOp{opBase: newOpBase("MaxPool2x2Grad")}
			}, []tensor.Shape{xs, ys, ys}},
		)
		prep["MaxPoolGrad "+fmt.Sprint(xs)] = func(in []G.Value) {
			y, err := newMaxPoolOp().Do(in[0])
			if err != nil {
				t.Fatal(err)
			}
			copy(in[1].(*tensor.Dense).Data().([]float32), y.(*tensor.Dense).Data().([]float32))
		}
	}
	for _, d := range []struct {
		xs tensor.Shape
		m  int
	}{{tensor.Shape{5, 32, 12, 12}, 128}, {tensor.Shape{7, 128}, 10}, {tensor.Shape{1, 3}, 2}} {
		xs, m := d.xs, d.m
		k := xs.TotalSize() / xs[0]
		cases = append(cases,
			opCase{"Dense " + fmt.Sprint(xs), func() G.Op { return newDenseOp(false, len(xs)) }, []tensor.Shape{xs, {k, m}, {m}}},
			opCase{"Dense+ReLU " + fmt.Sprint(xs), func() G.Op { return newDenseOp(true, len(xs)) }, []tensor.Shape{xs, {k, m}, {m}}},
			opCase{"DenseGradInput " + fmt.Sprint(xs), func() G.Op {
				return &denseGradInputOp{opBase: newOpBase("DenseGradInput"), xshape: xs}
			}, []tensor.Shape{{k, m}, {xs[0], m}}},
			opCase{"DenseGradWeight " + fmt.Sprint(xs), func() G.Op {
				return &denseGradWeightOp{opBase: newOpBase("DenseGradWeight"), xrank: len(xs)}
			}, []tensor.Shape{xs, {xs[0], m}}},
		)
	}
	for _, s := range []tensor.Shape{{5, 1, 28, 28}, {3, 7}} {
		s := s
		cases = append(cases,
			opCase{"L2Normalize " + fmt.Sprint(s), func() G.Op { return newL2NormalizeOp(10, len(s)) }, []tensor.Shape{s}},
			opCase{"L2NormalizeGrad " + fmt.Sprint(s), func() G.Op {
				return &l2NormalizeGradOp{opBase: newOpBase("L2NormalizeGrad"), fwd: newL2NormalizeOp(2.5, len(s))}
			}, []tensor.Shape{s, s}},
		)
	}
	for _, s := range []tensor.Shape{{4, 32, 26, 26}, {9, 10}} {
		cases = append(cases,
			opCase{"ReluGrad " + fmt.Sprint(s), func() G.Op { return &reluGradOp{opBase: newOpBase("ReluGrad")} }, []tensor.Shape{s, s}},
			opCase{"BiasGrad " + fmt.Sprint(s), func() G.Op { return &biasGradOp{opBase: newOpBase("BiasGrad"), rank: len(s)} }, []tensor.Shape{s}},
			opCase{"Add " + fmt.Sprint(s), func() G.Op { return newAddOp() }, []tensor.Shape{s, s}},
			opCase{"StopGradient " + fmt.Sprint(s), func() G.Op { return newStopGradientOp() }, []tensor.Shape{s}},
		)
	}

	for _, dev := range testDevices(t) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, tc := range cases {
			var in []G.Value
			for _, s := range tc.in {
				in = append(in, randTensor(rng, -1, 1, s...))
			}
			withDevice(t, nil)
			if fn := prep[tc.name]; fn != nil {
				fn(in)
			}
			want, err := tc.op().Do(in...)
			if err != nil {
				t.Fatalf("%s: CPU: %v", tc.name, err)
			}
			wantData := append([]float32(nil), want.(*tensor.Dense).Data().([]float32)...)
			withDevice(t, dev.dev, dev.mode)
			got, err := tc.op().Do(in...)
			if err != nil {
				t.Fatalf("%s on %s: %v", tc.name, dev.name, err)
			}
			closeTo(t, tc.name+" on "+dev.name, hostCopy(t, got), wantData, 1e-4)
			backend.Use(nil)
		}
	}
}

// An all-zero sample normalizes to zeros, with a zero gradient, on every
// backend (VAT's probe d + z is never zero, but a user's input may be).
func TestGPUL2NormalizeZeroSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	x, g := randTensor(rng, -1, 1, 3, 1, 5, 5), randTensor(rng, -1, 1, 3, 1, 5, 5)
	kernels.Zero(x.Data().([]float32)[25:50])
	for _, dev := range testDevices(t) {
		withDevice(t, dev.dev, dev.mode)
		fwd := newL2NormalizeOp(1, 4)
		y, err := fwd.Do(x)
		if err != nil {
			t.Fatal(err)
		}
		gx, err := (&l2NormalizeGradOp{opBase: newOpBase("L2NormalizeGrad"), fwd: fwd}).Do(x, g)
		if err != nil {
			t.Fatal(err)
		}
		yd, gd := hostCopy(t, y), hostCopy(t, gx)
		for j := 25; j < 50; j++ {
			if yd[j] != 0 || gd[j] != 0 {
				t.Fatalf("%s: zero sample gives y = %v, gradient %v at %d", dev.name, yd[j], gd[j], j)
			}
		}
		if n := sampleNorm(yd[:25]); math.Abs(n-1) > 1e-6 {
			t.Fatalf("%s: first sample's norm %v, want 1", dev.name, n)
		}
		backend.Use(nil)
	}
}

// Ties in a pooling window: the CPU op and the kernels send the gradient to
// the first maximal input in row-major order; a window of equal values
// makes any other choice visible.
func TestGPUMaxPoolGradTies(t *testing.T) {
	xs := tensor.Shape{2, 3, 6, 4}
	x := tensor.New(tensor.WithShape(xs...), tensor.Of(tensor.Float32))
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range x.Data().([]float32) {
		x.Data().([]float32)[i] = float32(rng.IntN(3)) // many ties
	}
	ys, _ := poolShape(xs)
	gy := randTensor(rng, 1, 2, ys...)
	run := func(d device.GPU, mode backend.Mode) []float32 {
		withDevice(t, d, mode)
		defer func() { backend.Use(nil) }()
		y, err := newMaxPoolOp().Do(x)
		if err != nil {
			t.Fatal(err)
		}
		gx, err := (&maxPoolGradOp{opBase: newOpBase("MaxPool2x2Grad")}).Do(x, y, gy)
		if err != nil {
			t.Fatal(err)
		}
		return hostCopy(t, gx)
	}
	want := run(nil, backend.ModeOff)
	for _, dev := range testDevices(t) {
		closeTo(t, "max-pool gradient with ties on "+dev.name, run(dev.dev, dev.mode), want, 0)
	}
}

// Dropout draws its mask on the CPU from its own seed, so both backends drop
// the same units; forward and gradient must agree exactly.
func TestGPUDropoutMatchesCPU(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := randTensor(rng, -1, 1, 6, 32, 12, 12)
	g := randTensor(rng, -1, 1, 6, 32, 12, 12)
	run := func(d device.GPU) (y, gx []float32) {
		withDevice(t, d)
		defer func() { backend.Use(nil) }()
		op, _ := newDropoutOp(0.25, 42)
		grad := &dropoutGradOp{opBase: newOpBase("DropoutGrad"), fwd: op}
		for step := 0; step < 2; step++ { // the second step draws a new mask
			yv, err := op.Do(x)
			if err != nil {
				t.Fatal(err)
			}
			gv, err := grad.Do(g)
			if err != nil {
				t.Fatal(err)
			}
			y, gx = append(y, hostCopy(t, yv)...), append(gx, hostCopy(t, gv)...)
		}
		return y, gx
	}
	wantY, wantG := run(nil)
	for _, dev := range testDevices(t) {
		gotY, gotG := run(dev.dev)
		closeTo(t, "dropout on "+dev.name, gotY, wantY, 0)
		closeTo(t, "dropout gradient on "+dev.name, gotG, wantG, 0)
	}
}

// One training step (dropout + VAT, both VAT variants) on a device must
// match the CPU step: the loss, r_adv, every weight gradient and every
// updated weight, within 1e-4 of each tensor's scale (gradients with a few
// ReLU flips, see closeToBut: seen here, one entry of conv1's bias gradient
// off by 1e-3 of its scale, all else within 3e-7); then two more steps'
// losses and an evaluation within 1e-4 relative. Weights after several
// steps are not compared: Adadelta moves a weight by about ±1.4e-3 whatever
// the size of its gradient once |g| exceeds ~1e-3, so a near-zero gradient
// component whose rounding differs sends the weight a different way, which
// is rounding, not a bug.
func TestGPUTrainingMatchesCPU(t *testing.T) {
	train, test := loadMNIST(t)
	data, eval := train.Head(3*16), test.Head(50)
	type run struct {
		losses                []float64
		rAdv                  []float32
		grads, stepOne, final [][]float32
		ev                    Evaluation
	}
	for _, clean := range []bool{false, true} {
		do := func(d device.GPU, mode backend.Mode) run {
			withDevice(t, d, mode)
			defer func() { backend.Use(nil) }()
			m, _ := NewModel(ModelConfig{Dropout: true, Seed: 3})
			var r run
			var tr *Trainer
			var err error
			tr, err = NewTrainer(m, TrainConfig{BatchSize: 16, Seed: 3, VAT: &VATConfig{CleanGrad: clean},
				OnStep: func(s StepInfo) {
					r.losses = append(r.losses, s.Loss)
					if s.Step > 1 {
						return
					}
					tg := tr.graphs[16]
					rAdv, err := tg.adversarial()
					if err != nil {
						t.Fatal(err)
					}
					r.rAdv = append([]float32(nil), rAdv.Data().([]float32)...)
					for i, p := range m.Params() {
						g, err := tg.grad(i)
						if err != nil {
							t.Fatal(err)
						}
						r.grads = append(r.grads, append([]float32(nil), g.Data().([]float32)...))
						r.stepOne = append(r.stepOne, append([]float32(nil), p.Value.Data().([]float32)...))
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tr.TrainEpoch(context.Background(), data); err != nil {
				t.Fatal(err)
			}
			if r.ev, err = m.Evaluate(eval); err != nil {
				t.Fatal(err)
			}
			return r
		}
		want := do(nil, backend.ModeOff)
		for _, dev := range testDevices(t) {
			if dev.name == "host/dnn" && clean {
				continue // the float64 convolutions are slow; one pass covers that path
			}
			got := do(dev.dev, dev.mode)
			what := fmt.Sprintf("%s, clean grad %v", dev.name, clean)
			closeToBut(t, what+": r_adv", got.rAdv, want.rAdv, 1e-4, reluFlips(len(want.rAdv)))
			for i := range want.grads {
				closeToBut(t, what+": gradient of "+paramName(i), got.grads[i], want.grads[i], 1e-4, reluFlips(len(want.grads[i])))
				closeTo(t, what+": "+paramName(i)+" after one step", got.stepOne[i], want.stepOne[i], 1e-4)
			}
			for i := range want.losses {
				if math.Abs(got.losses[i]-want.losses[i]) > 1e-4*math.Max(1, want.losses[i]) {
					t.Fatalf("%s: step %d loss %v, CPU %v", what, i+1, got.losses[i], want.losses[i])
				}
			}
			if math.Abs(got.ev.Loss-want.ev.Loss) > 1e-4*want.ev.Loss || math.Abs(got.ev.Accuracy-want.ev.Accuracy) > 0.021 {
				t.Fatalf("%s: evaluation %+v, CPU %+v", what, got.ev, want.ev)
			}
		}
	}
}

func paramName(i int) string {
	m, _ := NewModel(ModelConfig{})
	return m.params[i].Name
}

// Writes through Model.Params reach the device: zeroed weights give every
// class the same logit, so the mean cross-entropy is ln 10.
func TestGPUParamsWrite(t *testing.T) {
	train, test := loadMNIST(t)
	for _, dev := range testDevices(t) {
		withDevice(t, dev.dev, dev.mode)
		m, _ := NewModel(ModelConfig{Seed: 1})
		tr, _ := NewTrainer(m, TrainConfig{BatchSize: 32})
		if _, err := tr.TrainEpoch(context.Background(), train.Head(64)); err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Params() {
			kernels.Zero(p.Value.Data().([]float32))
		}
		ev, err := m.Evaluate(test.Head(20))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(ev.Loss-math.Log(10)) > 1e-6 {
			t.Fatalf("%s: loss with zero weights %v, want ln 10 = %v", dev.name, ev.Loss, math.Log(10))
		}
		backend.Use(nil)
	}
}

// Training on the GPU learns: after 2 epochs on the first 10,000 training
// images, plain and VAT classify at least 90 % of the first 1,000 test
// images (chance: 10 %; the CPU, same seed: plain 94.9 %). It runs as
// programs do, in auto mode (each layer on its measured faster path), and
// logs the choices.
func TestGPULearns(t *testing.T) {
	dev := realGPU(t)
	train, test := loadMNIST(t)
	for _, tc := range []struct {
		name string
		vat  *VATConfig
	}{{"plain", nil}, {"vat", &VATConfig{}}} {
		a := withDevice(t, dev, backend.ModeAuto)
		m, _ := NewModel(ModelConfig{Seed: 4})
		tr, err := NewTrainer(m, TrainConfig{Epochs: 2, VAT: tc.vat, Seed: 4})
		if err != nil {
			t.Fatal(err)
		}
		res, err := tr.Fit(context.Background(), train.Head(10000), test.Head(1000))
		if err != nil {
			t.Fatal(err)
		}
		acc := res[len(res)-1].TestAccuracy
		t.Logf("%s on the GPU: %.1f %% after 2 epochs, %.2f s per epoch", tc.name, 100*acc, res[1].Seconds)
		for _, c := range a.KernelChoices() {
			t.Logf("  %s", c)
		}
		if acc < 0.90 {
			t.Errorf("%s: test accuracy %.1f %%, want >= 90 %%", tc.name, 100*acc)
		}
		backend.Use(nil)
	}
}

// BenchmarkGPUTrainStep times training steps of 128 images on the GPU path:
// on the null device (every kernel a no-op: the host's share of a GPU step)
// and, in a cuda build on a GPU machine, on the GPU with convolutions and
// pooling on our own kernels (gpu-own), on cuDNN (gpu-cudnn) and on each
// layer's measured faster path (gpu-auto, what programs use). ms/step is
// the mean over 20 steps per iteration, as an epoch runs them. On the GPU,
// auto mode also logs its choices and a per-op profile of one more epoch
// (each op waited for: slower than a real step, but it shows where the
// device time goes).
//
//	go test -run '^$' -bench GPUTrainStep .
func BenchmarkGPUTrainStep(b *testing.B) {
	train, _ := loadMNIST(b)
	devs := []testDevice{{"null", &backendtest.NullDevice{}, backend.ModeAuto}}
	if suiteGPU != nil {
		devs = append(devs, testDevice{"gpu-own", suiteGPU.Device(), backend.ModeOff}, testDevice{"gpu-cudnn", suiteGPU.Device(), backend.ModeOn},
			testDevice{"gpu-auto", suiteGPU.Device(), backend.ModeAuto})
	}
	for _, dev := range devs {
		for _, tc := range []struct {
			name string
			drop bool
			vat  *VATConfig
		}{{"plain", false, nil}, {"dropout", true, nil}, {"vat", false, &VATConfig{}}, {"dropout+vat", true, &VATConfig{}}} {
			b.Run(dev.name+"/"+tc.name, func(b *testing.B) {
				a := withDevice(b, dev.dev, dev.mode)
				defer func() { backend.Use(nil) }()
				m, _ := NewModel(ModelConfig{Dropout: tc.drop, Seed: 1})
				tr, err := NewTrainer(m, TrainConfig{VAT: tc.vat, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				data := train.Head(128 * 20)
				if _, err := tr.TrainEpoch(context.Background(), data); err != nil { // build, warm up
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := tr.TrainEpoch(context.Background(), data); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(20*b.N), "ms/step")
				if dev.name != "gpu-auto" {
					return
				}
				b.StopTimer()
				for _, c := range a.KernelChoices() {
					b.Logf("choice: %s", c)
				}
				a.StartProfile()
				if _, err := tr.TrainEpoch(context.Background(), data); err != nil {
					b.Fatal(err)
				}
				for _, line := range a.StopProfile() {
					b.Logf("profile: %s", line)
				}
			})
		}
	}
}

// BenchmarkGPUConvPaths times each convolution and pooling direction of the
// MNIST network at batch 128 on the GPU, on our own kernels and on cuDNN:
// the measurements behind auto mode's per-layer choice. It needs a GPU.
//
//	go test -tags cuda -run '^$' -bench GPUConvPaths .
func BenchmarkGPUConvPaths(b *testing.B) {
	if suiteGPU == nil {
		b.Skip("needs a GPU: build with -tags cuda on a machine with one")
	}
	conv := func(xs, ws tensor.Shape) []tensor.Shape { return []tensor.Shape{xs, ws, {ws[0]}} }
	convOut := func(xs, ws tensor.Shape) tensor.Shape {
		s, _ := convShape(xs, ws, tensor.Shape{ws[0]})
		return s
	}
	type layer struct {
		name string
		op   func() G.Op
		in   []tensor.Shape
	}
	var layers []layer
	for _, l := range []struct {
		name   string
		xs, ws tensor.Shape
	}{{"conv1", tensor.Shape{128, 1, 28, 28}, tensor.Shape{32, 1, 3, 3}}, {"conv2", tensor.Shape{128, 32, 26, 26}, tensor.Shape{32, 32, 3, 3}}} {
		xs, ws := l.xs, l.ws
		layers = append(layers,
			layer{l.name + "/forward", func() G.Op { return newConv2dOp(true) }, conv(xs, ws)},
			layer{l.name + "/backward-data", func() G.Op {
				return &convGradInputOp{opBase: newOpBase("Conv2dGradInput"), xshape: xs}
			}, []tensor.Shape{ws, convOut(xs, ws)}},
			layer{l.name + "/backward-filter", func() G.Op {
				return &convGradFilterOp{opBase: newOpBase("Conv2dGradFilter"), wshape: ws}
			}, []tensor.Shape{xs, convOut(xs, ws)}})
	}
	px := tensor.Shape{128, 32, 24, 24}
	py, _ := poolShape(px)
	layers = append(layers,
		layer{"pool/forward", func() G.Op { return newMaxPoolOp() }, []tensor.Shape{px}},
		layer{"pool/backward", func() G.Op { return &maxPoolGradOp{opBase: newOpBase("MaxPool2x2Grad")} }, []tensor.Shape{px, py, py}})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, l := range layers {
		var in []G.Value
		for _, s := range l.in {
			in = append(in, randTensor(rng, -1, 1, s...))
		}
		for _, mode := range []backend.Mode{backend.ModeOff, backend.ModeOn} {
			name := map[backend.Mode]string{backend.ModeOff: "own", backend.ModeOn: "cudnn"}[mode]
			b.Run(l.name+"/"+name, func(b *testing.B) {
				a := withDevice(b, suiteGPU.Device(), mode)
				defer func() { backend.Use(nil) }()
				op := l.op()
				if _, err := op.Do(in...); err != nil { // upload, plan
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := op.Do(in...); err != nil {
						b.Fatal(err)
					}
				}
				if err := a.Device().Sync(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N), "µs/op")
			})
		}
	}
}
