// Package backend decides where the ops of github.com/org/vat compute and
// keeps the device side of a GPU run: device mirrors of host buffers, the
// ops' GPU paths (ops.go), and the per-layer choice between the backend's
// own kernels and cuDNN (choice.go). Without a registered GPU (the default
// build) Active is nil and every op runs its pure-Go code.
package backend

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/org/vat/internal/device"
)

// This file decides where the ops compute. The default build has no GPU
// backend: every op runs its pure-Go code. Built with `-tags cuda`, the root
// package's backend_cuda.go registers the CUDA device of package cuda, and
// the ops listed in ops.go run their kernels there instead; the others
// (padding, a standalone ReLU, the exact probe's tangent ops, the weighted
// sum of scalar losses) keep running on the CPU.
// Convolutions and pooling have two GPU paths, our kernels and cuDNN, chosen
// per layer (choice.go).
//
// The graph and its values do not change with the backend: every value is
// still a host *tensor.Dense. When a GPU is in use, each host buffer that
// an op reads or writes gets a device mirror, and two flags say which copy
// holds the latest data. A GPU op uploads an input only when the host copy
// is newer and marks its output as living on the device; a CPU op downloads
// its inputs only when the device copy is newer. Between steps the weights,
// the optimizer's state and every activation stay on the device; a step
// uploads the batch and its labels once, draws dropout masks and VAT's noise
// on the device, and copies back one float per sample for each loss value.
//
// Host code outside the ops that reads a value must call SyncHost first,
// and host code that writes one must call MarkHost after; the trainer, the
// optimizer, Model.Params and the inference path do.

// opener opens GPU number index as the backend; Register sets it.
var opener func(index int) (device.GPU, error)

// Register makes open the GPU backend, opened on first use with the GPU
// VAT_DEVICE names. Package cuda registers itself when a program imports
// it (the root package does in its `cuda` build, backend_cuda.go).
func Register(open func(index int) (device.GPU, error)) { opener = open }

// Registered reports whether a GPU backend was compiled in.
func Registered() bool { return opener != nil }

var (
	backendOnce sync.Once
	gpu         *Accelerator // nil: everything runs on the CPU
	note        string       // why there is no GPU, when one was compiled in
)

// Active returns the GPU backend, opening it on first use, or nil.
func Active() *Accelerator {
	backendOnce.Do(openBackend)
	return gpu
}

func openBackend() { gpu, note = open(opener, os.Getenv, os.Stderr) }

// open opens the backend with opener as the environment (getenv) asks.
// When a GPU backend is compiled in but cannot be opened, it says why,
// once, on stderr, and returns the reason; VAT_DEVICE=cpu, the explicit
// opt-out, is silent.
func open(opener func(int) (device.GPU, error), getenv func(string) string, stderr io.Writer) (*Accelerator, string) {
	if opener == nil {
		return nil, ""
	}
	loud := func(why string) (*Accelerator, string) {
		fmt.Fprintf(stderr, "vat: built with -tags cuda, but training and inference run on the CPU: %s\n", why)
		return nil, why
	}
	cpu, index, err := ParseDevice(getenv("VAT_DEVICE"))
	switch {
	case err != nil:
		return loud(err.Error())
	case cpu:
		return nil, "VAT_DEVICE=cpu"
	}
	mode, err := ParseMode(getenv("VAT_CUDNN"))
	if err != nil {
		return loud(err.Error())
	}
	d, err := opener(index)
	if err != nil {
		return loud(err.Error())
	}
	return New(d, mode), ""
}

// ParseDevice reads VAT_DEVICE: "" or "gpu" (GPU 0), "gpu:N" (GPU N, as
// nvidia-smi -L numbers them) or "cpu" (no GPU).
func ParseDevice(v string) (cpu bool, index int, err error) {
	switch {
	case v == "" || v == "gpu":
		return false, 0, nil
	case v == "cpu":
		return true, 0, nil
	case strings.HasPrefix(v, "gpu:"):
		n, err := strconv.Atoi(v[4:])
		if err == nil && n >= 0 && n < 1024 {
			return false, n, nil
		}
	}
	return false, 0, fmt.Errorf("VAT_DEVICE=%q: want cpu, gpu or gpu:N (N from 0, as nvidia-smi -L numbers the GPUs)", v)
}

// GPUPresent reports whether this machine has an NVIDIA GPU: /dev/nvidia0
// exists, or nvidia-smi -L lists one. The GPU tests fail, rather than
// skip, when one is present but the backend cannot open it.
func GPUPresent() bool {
	if _, err := os.Stat("/dev/nvidia0"); err == nil {
		return true
	}
	out, err := exec.Command("nvidia-smi", "-L").Output()
	return err == nil && strings.Contains(string(out), "GPU ")
}

// Note says why no GPU is in use when one was compiled in ("" otherwise).
func Note() string { return note }

// Use makes a the backend (nil: the CPU) in place of the registered one,
// which it never opens. It is for tests, which switch devices.
func Use(a *Accelerator) {
	backendOnce.Do(func() {})
	gpu = a
}

// Describe names where the ops compute: "cpu", "cpu (why no GPU)", or
// "cuda: " and the GPU's name with the cuDNN mode (see the root package's
// Backend).
func Describe() string {
	if a := Active(); a != nil {
		if _, ok := a.dev.(device.DNN); ok {
			return fmt.Sprintf("cuda: %s, cuDNN %v", a.dev.Name(), a.mode)
		}
		return "cuda: " + a.dev.Name()
	}
	if note != "" {
		return "cpu (" + note + ")"
	}
	return "cpu"
}

// Accelerator keeps the device mirrors of host buffers and the ops'
// device-only scratch memory. One mutex serializes its users.
type Accelerator struct {
	mu      sync.Mutex
	dev     device.GPU
	mirrors map[*float32]*mirror
	scratch map[int]device.Mem // by slot (ops.go)
	ones    device.Mem

	mode     Mode                      // whether convolutions and pooling use cuDNN
	choices  map[kernelKey]*pathChoice // auto mode's measured choices (choice.go)
	profile  map[string]*opTime        // per-op device time, when profiling (choice.go)
	poolTies int                       // cuDNN pooling's tie rule: 0 not probed, 1 first maximum, -1 other

	hostNormals bool // draw normals on the CPU (SetHostNormals)
}

// Device returns the device a computes on.
func (a *Accelerator) Device() device.GPU { return a.dev }

// mirror is the device copy of one host buffer. It holds the host slice,
// so the slice's address (the map key) is never reused while it exists.
type mirror struct {
	host   []float32
	mem    device.Mem
	hostOK bool // the host copy is current
	devOK  bool // the device copy is current
}

// New returns an accelerator on device d whose convolutions and pooling
// use cuDNN as mode says.
func New(d device.GPU, mode Mode) *Accelerator {
	return &Accelerator{dev: d, mode: mode, mirrors: map[*float32]*mirror{}, scratch: map[int]device.Mem{},
		choices: map[kernelKey]*pathChoice{}}
}

func (a *Accelerator) mirrorOf(h []float32) (*mirror, error) {
	if len(h) == 0 {
		return nil, fmt.Errorf("vat: internal error: empty buffer on the GPU")
	}
	key := sliceKey(h)
	m, ok := a.mirrors[key]
	if ok && len(m.host) == len(h) {
		return m, nil
	}
	if ok { // same start, other length: a view of a buffer we know; start over
		if err := a.dev.Free(m.mem); err != nil {
			return nil, err
		}
	}
	mem, err := a.dev.Alloc(len(h))
	if err != nil {
		return nil, err
	}
	m = &mirror{host: h, mem: mem, hostOK: true}
	a.mirrors[key] = m
	return m, nil
}

// in returns the device copy of h for reading, uploading it if the host
// copy is newer.
func (a *Accelerator) in(h []float32) (device.Mem, error) {
	m, err := a.mirrorOf(h)
	if err != nil {
		return nil, err
	}
	if !m.devOK {
		if err := a.dev.Upload(m.mem, h); err != nil {
			return nil, err
		}
		m.devOK = true
	}
	return m.mem, nil
}

// ins is in for several buffers.
func (a *Accelerator) ins(hs ...[]float32) ([]device.Mem, error) {
	out := make([]device.Mem, len(hs))
	for i, h := range hs {
		var err error
		if out[i], err = a.in(h); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// out returns the device copy of h for a kernel to overwrite: afterwards
// only the device copy is current.
func (a *Accelerator) out(h []float32) (device.Mem, error) {
	m, err := a.mirrorOf(h)
	if err != nil {
		return nil, err
	}
	m.devOK, m.hostOK = true, false
	return m.mem, nil
}

// SyncHost makes the host copies of hs current.
func (a *Accelerator) SyncHost(hs ...[]float32) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range hs {
		if len(h) == 0 {
			continue
		}
		m, ok := a.mirrors[sliceKey(h)]
		if !ok || m.hostOK {
			continue
		}
		if err := a.dev.Download(m.host, m.mem); err != nil {
			return fmt.Errorf("vat: copying from the GPU: %w", err)
		}
		m.hostOK = true
	}
	return nil
}

// MarkHost records that host code rewrote hs: their device copies are stale.
func (a *Accelerator) MarkHost(hs ...[]float32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range hs {
		a.staleDevice(h)
	}
}

// staleDevice marks the device copy of h, if any, as out of date; the
// caller holds a.mu.
func (a *Accelerator) staleDevice(h []float32) {
	if len(h) == 0 {
		return
	}
	if m, ok := a.mirrors[sliceKey(h)]; ok {
		m.devOK, m.hostOK = false, true
	}
}

// scratchMem returns device-only memory of at least n floats for a scratch
// slot, kept across steps.
func (a *Accelerator) scratchMem(k, n int) (device.Mem, error) {
	if m, ok := a.scratch[k]; ok {
		if m.Len() >= n {
			return m, nil
		}
		if err := a.dev.Free(m); err != nil {
			return nil, err
		}
		delete(a.scratch, k)
	}
	m, err := a.dev.Alloc(n)
	if err != nil {
		return nil, err
	}
	a.scratch[k] = m
	return m, nil
}

// onesOf returns a device vector of at least n ones.
func (a *Accelerator) onesOf(n int) (device.Mem, error) {
	if a.ones != nil && a.ones.Len() >= n {
		return a.ones, nil
	}
	if a.ones != nil {
		if err := a.dev.Free(a.ones); err != nil {
			return nil, err
		}
		a.ones = nil
	}
	h := make([]float32, n)
	for i := range h {
		h[i] = 1
	}
	m, err := a.dev.Alloc(n)
	if err != nil {
		return nil, err
	}
	if err := a.dev.Upload(m, h); err != nil {
		return nil, err
	}
	a.ones = m
	return m, nil
}

// sliceKey identifies a host buffer by its first element's address.
func sliceKey(h []float32) *float32 { return unsafe.SliceData(h) }

// SyncToHost makes the host copies of hs current when a GPU is in use.
func SyncToHost(hs ...[]float32) error {
	if a := Active(); a != nil {
		return a.SyncHost(hs...)
	}
	return nil
}

// MarkHostWritten records host writes to hs when a GPU is in use.
func MarkHostWritten(hs ...[]float32) {
	if a := Active(); a != nil {
		a.MarkHost(hs...)
	}
}

// Release frees every device allocation of a. It is for tests, which open
// many accelerators on one device; a process's own Accelerator lives as
// long as the process.
func (a *Accelerator) Release() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first error
	free := func(m device.Mem) {
		if err := a.dev.Free(m); err != nil && first == nil {
			first = err
		}
	}
	for k, m := range a.mirrors {
		free(m.mem)
		delete(a.mirrors, k)
	}
	for k, m := range a.scratch {
		free(m)
		delete(a.scratch, k)
	}
	if a.ones != nil {
		free(a.ones)
		a.ones = nil
	}
	return first
}
