//go:build cuda

package cuda

/*
#cgo LDFLAGS: -lnvrtc
#include <cuda.h>
#include <nvrtc.h>
#include <stdlib.h>
*/
import "C"

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"
)

// The kernels are compiled when a process opens the device, by NVRTC (the
// CUDA toolkit's run-time compiler, which the cuda build needs anyway), for
// the device's own compute capability: so they always match kernels.cu,
// and load on any GPU the toolkit supports, from a GTX 10-series (sm_61) to
// an H200 (sm_90). The PTX is cached per source, compute capability and
// NVRTC version in the user's cache folder (VAT_KERNEL_CACHE names another;
// "off" disables the cache), so a second process starts at once.

//go:embed kernels.cu
var kernelsSource string

// kernelPTX returns the kernels' PTX for compute capability major.minor,
// from the cache or compiled now.
func kernelPTX(major, minor int) (string, error) {
	var vmaj, vmin C.int
	if r := C.nvrtcVersion(&vmaj, &vmin); r != C.NVRTC_SUCCESS {
		return "", nvrtcErr("nvrtcVersion", r)
	}
	arch, err := targetArch(major*10+minor, int(vmaj), int(vmin))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(kernelsSource))
	name := fmt.Sprintf("kernels-%s-compute_%d-nvrtc%d.%d.ptx", hex.EncodeToString(sum[:8]), arch, vmaj, vmin)
	dir := kernelCacheDir()
	if dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil && len(b) > 0 {
			return string(b), nil
		}
	}
	ptx, err := compile(arch)
	if err != nil {
		return "", err
	}
	if dir != "" { // a failed write only costs the next process a compile
		if os.MkdirAll(dir, 0o755) == nil {
			tmp := filepath.Join(dir, name+".tmp"+fmt.Sprint(os.Getpid()))
			if os.WriteFile(tmp, []byte(ptx), 0o644) == nil {
				os.Rename(tmp, filepath.Join(dir, name))
			}
		}
	}
	return ptx, nil
}

// kernelCacheDir returns the PTX cache folder, or "" for none.
func kernelCacheDir() string {
	switch v := os.Getenv("VAT_KERNEL_CACHE"); v {
	case "off":
		return ""
	case "":
		d, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(d, "github.com-org-vat")
	default:
		return v
	}
}

// targetArch returns the newest virtual architecture NVRTC supports that
// is not newer than the device's compute capability cc (61 for 6.1).
func targetArch(cc, vmaj, vmin int) (int, error) {
	var n C.int
	if r := C.nvrtcGetNumSupportedArchs(&n); r != C.NVRTC_SUCCESS {
		return 0, nvrtcErr("nvrtcGetNumSupportedArchs", r)
	}
	if n <= 0 {
		return 0, fmt.Errorf("cuda: NVRTC %d.%d lists no architectures", vmaj, vmin)
	}
	archs := make([]C.int, n)
	if r := C.nvrtcGetSupportedArchs(&archs[0]); r != C.NVRTC_SUCCESS {
		return 0, nvrtcErr("nvrtcGetSupportedArchs", r)
	}
	best := 0
	for _, a := range archs {
		if int(a) <= cc && int(a) > best {
			best = int(a)
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("cuda: the GPU's compute capability %d.%d is older than NVRTC %d.%d supports (oldest %d.%d)",
			cc/10, cc%10, vmaj, vmin, int(archs[0])/10, int(archs[0])%10)
	}
	return best, nil
}

// compile compiles kernelsSource to PTX for compute_arch.
func compile(arch int) (string, error) {
	src := C.CString(kernelsSource)
	defer C.free(unsafe.Pointer(src))
	file := C.CString("kernels.cu")
	defer C.free(unsafe.Pointer(file))
	var prog C.nvrtcProgram
	if r := C.nvrtcCreateProgram(&prog, src, file, 0, nil, nil); r != C.NVRTC_SUCCESS {
		return "", nvrtcErr("nvrtcCreateProgram", r)
	}
	defer C.nvrtcDestroyProgram(&prog)
	opts := []string{fmt.Sprintf("--gpu-architecture=compute_%d", arch), "--std=c++17"}
	copts := make([]*C.char, len(opts))
	for i, o := range opts {
		copts[i] = C.CString(o)
		defer C.free(unsafe.Pointer(copts[i]))
	}
	if r := C.nvrtcCompileProgram(prog, C.int(len(copts)), &copts[0]); r != C.NVRTC_SUCCESS {
		var n C.size_t
		log := ""
		if C.nvrtcGetProgramLogSize(prog, &n) == C.NVRTC_SUCCESS && n > 1 {
			buf := make([]byte, n)
			if C.nvrtcGetProgramLog(prog, (*C.char)(unsafe.Pointer(&buf[0]))) == C.NVRTC_SUCCESS {
				log = string(buf[:n-1])
			}
		}
		return "", fmt.Errorf("cuda: compiling kernels.cu for compute_%d: %w: %s", arch, nvrtcErr("nvrtcCompileProgram", r), log)
	}
	var n C.size_t
	if r := C.nvrtcGetPTXSize(prog, &n); r != C.NVRTC_SUCCESS {
		return "", nvrtcErr("nvrtcGetPTXSize", r)
	}
	if n == 0 {
		return "", fmt.Errorf("cuda: NVRTC produced no PTX")
	}
	buf := make([]byte, n)
	if r := C.nvrtcGetPTX(prog, (*C.char)(unsafe.Pointer(&buf[0]))); r != C.NVRTC_SUCCESS {
		return "", nvrtcErr("nvrtcGetPTX", r)
	}
	return string(buf[:n-1]), nil // without the terminating NUL
}

func nvrtcErr(fn string, r C.nvrtcResult) error {
	return fmt.Errorf("cuda: %s: %s", fn, C.GoString(C.nvrtcGetErrorString(r)))
}

// computeCapability returns the device's compute capability.
func computeCapability(dev C.CUdevice) (major, minor int, err error) {
	var ma, mi C.int
	if err := check("cuDeviceGetAttribute", C.cuDeviceGetAttribute(&ma, C.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)); err != nil {
		return 0, 0, err
	}
	if err := check("cuDeviceGetAttribute", C.cuDeviceGetAttribute(&mi, C.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)); err != nil {
		return 0, 0, err
	}
	return int(ma), int(mi), nil
}
