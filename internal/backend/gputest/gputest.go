// Package gputest holds the helpers of the tests that run the GPU path:
// the suite's device list (the host reference device always, the real GPU
// in a cuda build on a machine with one), switching the backend per test,
// and comparisons at a tolerance relative to a tensor's scale.
package gputest

import (
	"math"
	"os"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/backend/backendtest"
	"github.com/org/vat/internal/device"
)

// suiteGPU is the build's own GPU backend (a `-tags cuda` build on a machine
// with a GPU, its cuda package imported), or nil. The rest of a suite tests
// the CPU code, so Main switches the backend off; the GPU-path tests switch
// a device on, per test.
var suiteGPU *backend.Accelerator

// Main is a test binary's TestMain: it keeps the registered GPU for the
// GPU-path tests and runs the others on the CPU.
func Main(m *testing.M) {
	suiteGPU = backend.Active()
	backend.Use(nil)
	os.Exit(m.Run())
}

// Suite returns the build's GPU backend, or nil.
func Suite() *backend.Accelerator { return suiteGPU }

// Device is one device to run GPU-path tests on, in one cuDNN mode.
type Device struct {
	Name string
	Dev  device.GPU
	Mode backend.Mode // cuDNN or the device's own kernels, where it has both
}

// emulated returns package cuda's kernels emulated on the CPU, in a
// `cudaemu` build (emulated.go); nil otherwise.
var emulated func() device.GPU

// Devices returns the devices to run GPU-path tests on, each once with
// its own convolution and pooling kernels and once through its dnnDevice
// (cuDNN on the GPU, a float64 definition on the host device), and, in a
// `cudaemu` build, package cuda's kernels emulated on the CPU.
func Devices(t testing.TB) []Device {
	host := &backendtest.HostDevice{}
	ds := []Device{{Name: "host", Dev: host, Mode: backend.ModeOff}, {Name: "host/dnn", Dev: host, Mode: backend.ModeOn}}
	if emulated != nil {
		ds = append(ds, Device{Name: "cudaemu", Dev: emulated(), Mode: backend.ModeOff})
	}
	if suiteGPU != nil {
		ds = append(ds, Device{Name: "gpu", Dev: suiteGPU.Device(), Mode: backend.ModeOff}, Device{Name: "gpu/cudnn", Dev: suiteGPU.Device(), Mode: backend.ModeOn})
	} else if backend.Registered() {
		t.Logf("only the host reference device: no usable GPU (%s)", backend.Note())
	}
	return ds
}

// KernelDevices is Devices with each device once, on its own kernels: for
// the ops that have no cuDNN path.
func KernelDevices(t testing.TB) []Device {
	var ds []Device
	for _, d := range Devices(t) {
		if d.Mode == backend.ModeOff {
			ds = append(ds, d)
		}
	}
	return ds
}

// RealGPU returns the GPU or skips the test, saying why.
func RealGPU(t testing.TB) device.GPU {
	t.Helper()
	if suiteGPU == nil {
		if !backend.Registered() {
			t.Skip("needs a GPU: build with -tags cuda on a machine with one")
		}
		if backend.GPUPresent() && backend.Note() != "VAT_DEVICE=cpu" {
			t.Fatalf("this machine has a GPU, but the backend could not open it: %s", backend.Note())
		}
		t.Skipf("needs a GPU: %s", backend.Note())
	}
	return suiteGPU.Device()
}

// With makes d the backend for the rest of the test (nil: the CPU),
// in cuDNN mode mode[0] (default: the device's own kernels).
func With(t testing.TB, d device.GPU, mode ...backend.Mode) *backend.Accelerator {
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

// CloseTo fails unless max|got−want| ≤ tol·max(max|want|, 1e-3): a
// tolerance relative to the tensor's scale, since float32 sums taken in
// another order differ by a few ulps of the largest partial sums, not of
// each (possibly cancelled) entry.
func CloseTo(t testing.TB, what string, got, want []float32, tol float64) {
	t.Helper()
	CloseToBut(t, what, got, want, tol, 0)
}

// CloseToBut is CloseTo allowing up to flips entries to be off by as much
// as 100·tol. Gradients need it: where a ReLU's input lies within rounding
// of 0, one backend may pass that unit's gradient and the other not. Such a
// flip changes the forward pass by less than the rounding itself, but sends
// a whole unit's gradient (or none) into the layer's weight gradient.
func CloseToBut(t testing.TB, what string, got, want []float32, tol float64, flips int) {
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

// ReluFlips is how many entries of a gradient with n entries CloseToBut lets
// off: one, plus one per thousand.
func ReluFlips(n int) int { return 1 + n/1000 }

// HostCopy returns a copy of a value's host data after synchronizing it.
func HostCopy(t testing.TB, v G.Value) []float32 {
	t.Helper()
	d := v.(*tensor.Dense).Data().([]float32)
	if err := backend.SyncToHost(d); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), d...)
}
