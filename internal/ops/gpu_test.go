package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/backend/gputest"
	"github.com/org/vat/internal/device"
	"github.com/org/vat/internal/gradcheck"
	"github.com/org/vat/internal/kernels"
	"github.com/org/vat/internal/rng"
)

// TestMain keeps the build's GPU (a cuda build on a machine with one; see
// cuda_test.go) for the GPU-path tests and runs every other test on the CPU.
func TestMain(m *testing.M) { gputest.Main(m) }

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
			opCase{"Conv2d " + fmt.Sprint(xs), func() G.Op { return NewConv2d(false) }, conv(xs, ws)},
			opCase{"Conv2d+ReLU " + fmt.Sprint(xs), func() G.Op { return NewConv2d(true) }, conv(xs, ws)},
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
			opCase{"MaxPool " + fmt.Sprint(xs), func() G.Op { return NewMaxPool() }, []tensor.Shape{xs}},
			// The gradient is checked on inputs whose windows have one
			// maximum each (random floats); ties are covered below. y must
			// be x's pooling: cuDNN finds the maxima in x, our kernels
			// look for y's value.
			opCase{"MaxPoolGrad " + fmt.Sprint(xs), func() G.Op {
				return &maxPoolGradOp{opBase: newOpBase("MaxPool2x2Grad")}
			}, []tensor.Shape{xs, ys, ys}},
		)
		prep["MaxPoolGrad "+fmt.Sprint(xs)] = func(in []G.Value) {
			y, err := NewMaxPool().Do(in[0])
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
			opCase{"Dense " + fmt.Sprint(xs), func() G.Op { return NewDense(false, len(xs)) }, []tensor.Shape{xs, {k, m}, {m}}},
			opCase{"Dense+ReLU " + fmt.Sprint(xs), func() G.Op { return NewDense(true, len(xs)) }, []tensor.Shape{xs, {k, m}, {m}}},
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
			opCase{"L2Normalize " + fmt.Sprint(s), func() G.Op { return NewL2Normalize(10, len(s)) }, []tensor.Shape{s}},
			opCase{"L2NormalizeGrad " + fmt.Sprint(s), func() G.Op {
				return &l2NormalizeGradOp{opBase: newOpBase("L2NormalizeGrad"), fwd: NewL2Normalize(2.5, len(s))}
			}, []tensor.Shape{s, s}},
		)
	}
	for _, s := range []tensor.Shape{{4, 32, 26, 26}, {9, 10}} {
		cases = append(cases,
			opCase{"ReluGrad " + fmt.Sprint(s), func() G.Op { return &reluGradOp{opBase: newOpBase("ReluGrad")} }, []tensor.Shape{s, s}},
			opCase{"BiasGrad " + fmt.Sprint(s), func() G.Op { return &biasGradOp{opBase: newOpBase("BiasGrad"), rank: len(s)} }, []tensor.Shape{s}},
			opCase{"Add " + fmt.Sprint(s), func() G.Op { return NewAdd() }, []tensor.Shape{s, s}},
			opCase{"StopGradient " + fmt.Sprint(s), func() G.Op { return NewStopGradient() }, []tensor.Shape{s}},
		)
	}

	for _, dev := range gputest.Devices(t) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, tc := range cases {
			var in []G.Value
			for _, s := range tc.in {
				in = append(in, gradcheck.RandTensor(rng, -1, 1, s...))
			}
			gputest.With(t, nil)
			if fn := prep[tc.name]; fn != nil {
				fn(in)
			}
			want, err := tc.op().Do(in...)
			if err != nil {
				t.Fatalf("%s: CPU: %v", tc.name, err)
			}
			wantData := append([]float32(nil), want.(*tensor.Dense).Data().([]float32)...)
			gputest.With(t, dev.Dev, dev.Mode)
			got, err := tc.op().Do(in...)
			if err != nil {
				t.Fatalf("%s on %s: %v", tc.name, dev.Name, err)
			}
			gputest.CloseTo(t, tc.name+" on "+dev.Name, gputest.HostCopy(t, got), wantData, 1e-4)
			backend.Use(nil)
		}
	}
}

// An all-zero sample normalizes to zeros, with a zero gradient, on every
// backend (VAT's probe d + z is never zero, but a user's input may be).
func TestGPUL2NormalizeZeroSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	x, g := gradcheck.RandTensor(rng, -1, 1, 3, 1, 5, 5), gradcheck.RandTensor(rng, -1, 1, 3, 1, 5, 5)
	kernels.Zero(x.Data().([]float32)[25:50])
	for _, dev := range gputest.Devices(t) {
		gputest.With(t, dev.Dev, dev.Mode)
		fwd := NewL2Normalize(1, 4)
		y, err := fwd.Do(x)
		if err != nil {
			t.Fatal(err)
		}
		gx, err := (&l2NormalizeGradOp{opBase: newOpBase("L2NormalizeGrad"), fwd: fwd}).Do(x, g)
		if err != nil {
			t.Fatal(err)
		}
		yd, gd := gputest.HostCopy(t, y), gputest.HostCopy(t, gx)
		for j := 25; j < 50; j++ {
			if yd[j] != 0 || gd[j] != 0 {
				t.Fatalf("%s: zero sample gives y = %v, gradient %v at %d", dev.Name, yd[j], gd[j], j)
			}
		}
		if n := sampleNorm(yd[:25]); math.Abs(n-1) > 1e-6 {
			t.Fatalf("%s: first sample's norm %v, want 1", dev.Name, n)
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
	gy := gradcheck.RandTensor(rng, 1, 2, ys...)
	run := func(d device.GPU, mode backend.Mode) []float32 {
		gputest.With(t, d, mode)
		defer func() { backend.Use(nil) }()
		y, err := NewMaxPool().Do(x)
		if err != nil {
			t.Fatal(err)
		}
		gx, err := (&maxPoolGradOp{opBase: newOpBase("MaxPool2x2Grad")}).Do(x, y, gy)
		if err != nil {
			t.Fatal(err)
		}
		return gputest.HostCopy(t, gx)
	}
	want := run(nil, backend.ModeOff)
	for _, dev := range gputest.Devices(t) {
		gputest.CloseTo(t, "max-pool gradient with ties on "+dev.Name, run(dev.Dev, dev.Mode), want, 0)
	}
}

// Dropout draws the same masks on a device as on the CPU (the device's
// Bernoulli kernel is rng.BernoulliKey bit for bit), so both backends drop
// the same units; forward and gradient must agree exactly.
func TestGPUDropoutMatchesCPU(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := gradcheck.RandTensor(rng, -1, 1, 6, 32, 12, 12)
	g := gradcheck.RandTensor(rng, -1, 1, 6, 32, 12, 12)
	run := func(d device.GPU) (y, gx []float32) {
		gputest.With(t, d)
		defer func() { backend.Use(nil) }()
		op, _ := NewDropout(0.25, 42)
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
			y, gx = append(y, gputest.HostCopy(t, yv)...), append(gx, gputest.HostCopy(t, gv)...)
		}
		return y, gx
	}
	wantY, wantG := run(nil)
	for _, dev := range gputest.Devices(t) {
		gotY, gotG := run(dev.Dev)
		gputest.CloseTo(t, "dropout on "+dev.Name, gotY, wantY, 0)
		gputest.CloseTo(t, "dropout gradient on "+dev.Name, gotG, wantG, 0)
	}
}

// BenchmarkGPUConvPaths times each convolution and pooling direction of the
// MNIST network at batch 128 on the GPU, on our own kernels and on cuDNN:
// the measurements behind auto mode's per-layer choice. It needs a GPU.
//
//	go test -tags cuda -run '^$' -bench GPUConvPaths .
func BenchmarkGPUConvPaths(b *testing.B) {
	if gputest.Suite() == nil {
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
			layer{l.name + "/forward", func() G.Op { return NewConv2d(true) }, conv(xs, ws)},
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
		layer{"pool/forward", func() G.Op { return NewMaxPool() }, []tensor.Shape{px}},
		layer{"pool/backward", func() G.Op { return &maxPoolGradOp{opBase: newOpBase("MaxPool2x2Grad")} }, []tensor.Shape{px, py, py}})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, l := range layers {
		var in []G.Value
		for _, s := range l.in {
			in = append(in, gradcheck.RandTensor(rng, -1, 1, s...))
		}
		for _, mode := range []backend.Mode{backend.ModeOff, backend.ModeOn} {
			name := map[backend.Mode]string{backend.ModeOff: "own", backend.ModeOn: "cudnn"}[mode]
			b.Run(l.name+"/"+name, func(b *testing.B) {
				a := gputest.With(b, gputest.Suite().Device(), mode)
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

// The devices' random kernels against their definitions in internal/rng:
// dropout's masks bit for bit (rng.BernoulliKey; the GPU kernel's threads
// skip ahead in a chunk's PCG stream, hence lengths around chunk and thread
// boundaries, odd lengths, and thresholds that keep nothing or
// everything), the normals within 1e-6 (rng.PhiloxNormals; a GPU's float64
// log, sin and cos may differ from Go's in the last bit, which float32
// rounding almost always hides), and neither writes past the n values
// asked for.
func TestGPURandomKernels(t *testing.T) {
	for _, dev := range gputest.KernelDevices(t) {
		d := dev.Dev
		fill := func(n, size int, draw func(m device.Mem) error) []float32 {
			t.Helper()
			m, err := d.Alloc(size)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Free(m)
			sentinel := make([]float32, size)
			for i := range sentinel {
				sentinel[i] = -7
			}
			if err := d.Upload(m, sentinel); err != nil {
				t.Fatal(err)
			}
			if err := draw(m); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, size)
			if err := d.Download(got, m); err != nil {
				t.Fatal(err)
			}
			for i, v := range got[n:] {
				if v != -7 {
					t.Fatalf("%s: a fill of %d values wrote %v at %d", dev.Name, n, v, n+i)
				}
			}
			return got[:n]
		}
		for _, n := range []int{1, 2, 31, 33, 4095, 4096, 4097, 3*4096 + 5, 100_003} {
			for _, key := range []uint64{0, 0xdead_beef_cafe_f00d} {
				for _, keep := range []float64{0, 0.25, 0.75, 1} {
					v := float32(1 / math.Max(keep, 0.5))
					got := fill(n, n+3, func(m device.Mem) error { return d.Bernoulli(m, n, key, rng.Threshold(keep), v) })
					want := make([]float32, n)
					rng.BernoulliKey(want, key, rng.Threshold(keep), v)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s: Bernoulli n = %d, keep = %g, key = %#x: m[%d] = %v, want %v", dev.Name, n, keep, key, i, got[i], want[i])
						}
					}
				}
				got := fill(n, n+3, func(m device.Mem) error { return d.Normals(m, n, key) })
				want := make([]float32, n)
				rng.PhiloxNormals(want, key)
				exact := 0
				for i := range want {
					if diff := math.Abs(float64(got[i] - want[i])); diff > 1e-6*math.Max(1, math.Abs(float64(want[i]))) {
						t.Fatalf("%s: Normals n = %d, key = %#x: x[%d] = %v, want %v", dev.Name, n, key, i, got[i], want[i])
					}
					if got[i] == want[i] {
						exact++
					}
				}
				if n > 10_000 && dev.Name != "host" {
					t.Logf("%s: Normals n = %d, key = %#x: %d bit-identical to Go's", dev.Name, n, key, exact)
				}
			}
		}
	}
}

// GaussianNoise on a device adds σ times the device generator's normals
// for the op's k-th fill (rng.PhiloxNormals), fresh every run; the CPU op
// draws its own (Go's ziggurat), so the device is compared with that
// definition, not with the CPU op.
func TestGPUGaussianNoise(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := gradcheck.RandTensor(r, -1, 1, 5, 37)
	xs := x.Data().([]float32)
	for _, dev := range gputest.KernelDevices(t) {
		gputest.With(t, dev.Dev)
		op, _ := NewGaussianNoise(0.5, 9)
		keys := rng.NewChunked(9)
		for step := 1; step <= 2; step++ {
			y, err := op.Do(x)
			if err != nil {
				t.Fatal(err)
			}
			noise := make([]float32, len(xs))
			rng.PhiloxNormals(noise, keys.Next())
			want := make([]float32, len(xs))
			for i := range want {
				want[i] = xs[i] + 0.5*noise[i]
			}
			gputest.CloseTo(t, fmt.Sprintf("GaussianNoise on %s, run %d", dev.Name, step), gputest.HostCopy(t, y), want, 1e-6)
		}
		if op.Draws() != 2 {
			t.Errorf("%s: %d draws after two runs", dev.Name, op.Draws())
		}
		backend.Use(nil)
	}
}

// The loss ops on a device against the CPU ops, on fresh random logits:
// one-hot and soft targets, 10 and 1,000 classes, both KL reductions and
// both of its arguments, the joint loss. Both compute in float64 from the
// same formulas, so the tolerance is 1e-6 of the scale (the GPU may fuse a
// multiply and an add; the device returns each row's loss as a float32).
func TestGPULossesMatchCPU(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	type lossCase struct {
		name string
		op   func() G.Op
		in   []func(n, k int) *tensor.Dense
	}
	logits := func(n, k int) *tensor.Dense { return gradcheck.RandTensor(r, -4, 4, n, k) }
	oneHot := func(n, k int) *tensor.Dense {
		y := tensor.New(tensor.WithShape(n, k), tensor.Of(tensor.Float32))
		d := y.Data().([]float32)
		for i := 0; i < n; i++ {
			d[i*k+r.IntN(k)] = 1
		}
		return y
	}
	soft := func(n, k int) *tensor.Dense { return gradcheck.RandTensor(r, 0, 0.3, n, k) }
	g := func(int, int) *tensor.Dense { return tensor.New(tensor.FromScalar(float32(0.7))) }
	cases := []lossCase{
		{"CrossEntropy one-hot", func() G.Op { return NewCrossEntropy() }, []func(int, int) *tensor.Dense{logits, oneHot}},
		{"CrossEntropy soft", func() G.Op { return NewCrossEntropy() }, []func(int, int) *tensor.Dense{logits, soft}},
		{"CrossEntropyGrad", func() G.Op { return &crossEntropyGradOp{opBase: newOpBase("CrossEntropyGrad")} },
			[]func(int, int) *tensor.Dense{logits, soft, g}},
		{"Entropy", func() G.Op { return NewEntropy() }, []func(int, int) *tensor.Dense{logits}},
		{"EntropyGrad", func() G.Op { return &entropyGradOp{opBase: newOpBase("EntropyGrad")} }, []func(int, int) *tensor.Dense{logits, g}},
		{"JointLoss", func() G.Op { return NewJointLoss(0.6) }, []func(int, int) *tensor.Dense{logits, oneHot, logits}},
	}
	for _, red := range []Reduction{Mean, Sum} {
		cases = append(cases, lossCase{"KL " + red.String(), func() G.Op { return NewKL(red) }, []func(int, int) *tensor.Dense{logits, logits}})
		for wrt := 0; wrt < 2; wrt++ {
			cases = append(cases, lossCase{fmt.Sprintf("KLGrad %s wrt %d", red, wrt), func() G.Op {
				return &klGradOp{opBase: newOpBase("KLGrad"), fwd: NewKL(red), wrt: wrt}
			}, []func(int, int) *tensor.Dense{logits, logits, g}})
		}
	}
	values := func(v G.Value) []float32 {
		if s, ok := v.(*G.F32); ok {
			return []float32{float32(*s)}
		}
		return gputest.HostCopy(t, v)
	}
	for _, c := range cases {
		for _, nk := range [][2]int{{7, 10}, {3, 1000}} {
			in := make([]G.Value, len(c.in))
			for i, f := range c.in {
				in[i] = f(nk[0], nk[1])
			}
			want, err := c.op().Do(in...)
			if err != nil {
				t.Fatal(err)
			}
			for _, dev := range gputest.KernelDevices(t) {
				gputest.With(t, dev.Dev)
				got, err := c.op().Do(in...)
				if err != nil {
					t.Fatalf("%s on %s: %v", c.name, dev.Name, err)
				}
				gputest.CloseTo(t, fmt.Sprintf("%s %v on %s", c.name, nk, dev.Name), values(got), values(want), 1e-6)
				backend.Use(nil)
			}
		}
	}
}

// Batch normalization on a device against the CPU op, on fresh random
// inputs: N×F and N×C×H×W, one sample of one value (variance 0), training
// with and without updating the running averages and inference; the
// output, the three gradients, the updated averages and the exact probe's
// tangent (which reads x̂ and 1/√(σ²+ε) back from the device). Both sum in
// float64; the device keeps 1/√(σ²+ε) as a float32, hence 1e-5.
func TestGPUBatchNormMatchesCPU(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, xs := range []tensor.Shape{{5, 7}, {4, 3, 5, 6}, {1, 3}, {300, 2}} {
		_, c, _ := bnLayout(xs)
		x := gradcheck.RandTensor(r, -2, 3, xs...)
		g := gradcheck.RandTensor(r, -1, 1, xs...)
		tan := gradcheck.RandTensor(r, -1, 1, xs...)
		gamma := gradcheck.RandTensor(r, 0.5, 1.5, c)
		beta := gradcheck.RandTensor(r, -1, 1, c)
		mean0 := gradcheck.RandTensor(r, -1, 1, c).Data().([]float32)
		var0 := gradcheck.RandTensor(r, 0.5, 2, c).Data().([]float32)
		for _, mode := range []struct{ train, update bool }{{true, true}, {true, false}, {false, false}} {
			run := func(d device.GPU) (outs [][]float32) {
				if d != nil {
					gputest.With(t, d)
					defer backend.Use(nil)
				}
				runMean, runVar := slices.Clone(mean0), slices.Clone(var0)
				fwd := NewBatchNorm(len(xs), mode.train, mode.update, 1e-3, 0.9, runMean, runVar)
				y, err := fwd.Do(x, gamma, beta)
				if err != nil {
					t.Fatal(err)
				}
				outs = append(outs, gputest.HostCopy(t, y))
				for wrt := 0; wrt < 3; wrt++ {
					gop := &batchNormGradOp{opBase: newOpBase("BatchNormGrad"), fwd: fwd.(*batchNormOp), wrt: wrt}
					gv, err := gop.Do(x, gamma, g)
					if err != nil {
						t.Fatal(err)
					}
					outs = append(outs, gputest.HostCopy(t, gv))
				}
				top, _ := NewBatchNormTangent(fwd)
				tv, err := top.Do(tan, gamma, x)
				if err != nil {
					t.Fatal(err)
				}
				outs = append(outs, gputest.HostCopy(t, tv))
				if err := backend.SyncToHost(runMean, runVar); err != nil {
					t.Fatal(err)
				}
				return append(outs, runMean, runVar)
			}
			want := run(nil)
			names := []string{"y", "∂x", "∂γ", "∂β", "tangent", "running mean", "running variance"}
			for _, dev := range gputest.KernelDevices(t) {
				got := run(dev.Dev)
				for i := range want {
					gputest.CloseTo(t, fmt.Sprintf("BatchNorm %v train %v update %v on %s: %s", xs, mode.train, mode.update, dev.Name, names[i]),
						got[i], want[i], 1e-5)
				}
			}
		}
	}
}
