package vat

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"github.com/org/vat/internal/device"
)

// This file decides where the ops compute. The default build has no GPU
// backend: every op runs its pure-Go code. Built with `-tags cuda`,
// backend_cuda.go registers the CUDA device of package cuda, and the ops
// listed in backend_ops.go run their kernels there instead; the others (the
// losses, which work on a few kilobytes) keep running on the CPU.
// Convolutions and pooling have two GPU paths, our kernels and cuDNN, chosen
// per layer (backend_choice.go).
//
// The graph and its values do not change with the backend: every value is
// still a host *tensor.Dense. When a GPU is in use, each host buffer that
// an op reads or writes gets a device mirror, and two flags say which copy
// holds the latest data. A GPU op uploads an input only when the host copy
// is newer and marks its output as living on the device; a CPU op downloads
// its inputs only when the device copy is newer. Between steps the weights,
// the optimizer's state and every activation stay on the device; a step
// moves the batch (and VAT's noise) in and a few small tensors (logits, loss
// gradients) back and forth.
//
// Host code outside the ops that reads a value must call syncHost first,
// and host code that writes one must call markHost after; the trainer, the
// optimizer, Model.Params and the inference path do.

// gpuDevice is a GPU backend: device memory and the kernels the ops need;
// dnnDevice is its optional cuDNN part. Both are defined in
// internal/device, which package cuda also imports to assert that it
// implements them.
type (
	gpuDevice = device.GPU
	dnnDevice = device.DNN
	devMem    = device.Mem
)

// backendOpener is set by a build-tagged registration file (backend_cuda.go).
var backendOpener func() (gpuDevice, error)

var (
	backendOnce sync.Once
	gpu         *accelerator // nil: everything runs on the CPU
	backendNote string       // why there is no GPU, when one was compiled in
)

// activeGPU returns the GPU backend, opening it on first use, or nil.
func activeGPU() *accelerator {
	backendOnce.Do(openBackend)
	return gpu
}

func openBackend() {
	if backendOpener == nil {
		return
	}
	if v := os.Getenv("VAT_DEVICE"); v == "cpu" {
		backendNote = "VAT_DEVICE=cpu"
		return
	}
	mode, err := parseDNNMode(os.Getenv("VAT_CUDNN"))
	if err != nil {
		backendNote = err.Error()
		return
	}
	d, err := backendOpener()
	if err != nil {
		backendNote = err.Error()
		return
	}
	gpu = newAccelerator(d)
	gpu.dnnMode = mode
}

// Backend names where training and inference compute: "cpu", or "cuda:"
// and the GPU's name in a build with `-tags cuda` on a machine with a GPU,
// followed by the cuDNN mode (VAT_CUDNN: auto, on or off; see
// backend_choice.go). A cuda build falls back to the CPU when it finds no
// usable GPU, or when the environment variable VAT_DEVICE is "cpu"; Backend
// then says why.
func Backend() string {
	if a := activeGPU(); a != nil {
		if _, ok := a.dev.(dnnDevice); ok {
			return fmt.Sprintf("cuda: %s, cuDNN %v", a.dev.Name(), a.dnnMode)
		}
		return "cuda: " + a.dev.Name()
	}
	if backendNote != "" {
		return "cpu (" + backendNote + ")"
	}
	return "cpu"
}

// accelerator keeps the device mirrors of host buffers and the ops'
// device-only scratch memory. One mutex serializes its users.
type accelerator struct {
	mu      sync.Mutex
	dev     gpuDevice
	mirrors map[*float32]*mirror
	scratch map[int]devMem // by slot (backend_ops.go)
	ones    devMem

	dnnMode  dnnMode                   // whether convolutions and pooling use cuDNN
	choices  map[kernelKey]*pathChoice // auto mode's measured choices (backend_choice.go)
	profile  map[string]*opTime        // per-op device time, when profiling (backend_choice.go)
	poolTies int                       // cuDNN pooling's tie rule: 0 not probed, 1 first maximum, -1 other
}

// mirror is the device copy of one host buffer. It holds the host slice,
// so the slice's address (the map key) is never reused while it exists.
type mirror struct {
	host   []float32
	mem    devMem
	hostOK bool // the host copy is current
	devOK  bool // the device copy is current
}

func newAccelerator(d gpuDevice) *accelerator {
	return &accelerator{dev: d, mirrors: map[*float32]*mirror{}, scratch: map[int]devMem{},
		choices: map[kernelKey]*pathChoice{}}
}

func (a *accelerator) mirrorOf(h []float32) (*mirror, error) {
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
func (a *accelerator) in(h []float32) (devMem, error) {
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
func (a *accelerator) ins(hs ...[]float32) ([]devMem, error) {
	out := make([]devMem, len(hs))
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
func (a *accelerator) out(h []float32) (devMem, error) {
	m, err := a.mirrorOf(h)
	if err != nil {
		return nil, err
	}
	m.devOK, m.hostOK = true, false
	return m.mem, nil
}

// syncHost makes the host copies of hs current.
func (a *accelerator) syncHost(hs ...[]float32) error {
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

// markHost records that host code rewrote hs: their device copies are stale.
func (a *accelerator) markHost(hs ...[]float32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range hs {
		a.staleDevice(h)
	}
}

// staleDevice marks the device copy of h, if any, as out of date; the
// caller holds a.mu.
func (a *accelerator) staleDevice(h []float32) {
	if len(h) == 0 {
		return
	}
	if m, ok := a.mirrors[sliceKey(h)]; ok {
		m.devOK, m.hostOK = false, true
	}
}

// scratchMem returns device-only memory of at least n floats for a scratch
// slot, kept across steps.
func (a *accelerator) scratchMem(k, n int) (devMem, error) {
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
func (a *accelerator) onesOf(n int) (devMem, error) {
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

// syncToHost makes the host copies of hs current when a GPU is in use.
func syncToHost(hs ...[]float32) error {
	if a := activeGPU(); a != nil {
		return a.syncHost(hs...)
	}
	return nil
}

// markHostWritten records host writes to hs when a GPU is in use.
func markHostWritten(hs ...[]float32) {
	if a := activeGPU(); a != nil {
		a.markHost(hs...)
	}
}

// release frees every device allocation of a. It is for tests, which open
// many accelerators on one device; a process's own accelerator lives as
// long as the process.
func (a *accelerator) release() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first error
	free := func(m devMem) {
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
