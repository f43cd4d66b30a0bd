//go:build cuda

package cuda

/*
#cgo LDFLAGS: -lcuda -lcublas
#include <cuda.h>
#include <cublas_v2.h>
#include <stdlib.h>
#include <string.h>

// sgemmBatched calls cublasSgemmStridedBatched with device addresses, so
// that Go never turns them into pointers.
static cublasStatus_t sgemmBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
		int m, int n, int k, float alpha, CUdeviceptr a, int lda, long long sa,
		CUdeviceptr b, int ldb, long long sb, float beta, CUdeviceptr c, int ldc, long long sc, int batch) {
	return cublasSgemmStridedBatched(h, ta, tb, m, n, k, &alpha, (const float*)a, lda, sa,
		(const float*)b, ldb, sb, &beta, (float*)c, ldc, sc, batch);
}

// launch builds the kernel parameter array from a flat buffer of argument
// values (each 8 bytes apart) and launches f on the context's null stream.
static CUresult launch(CUfunction f, unsigned grid, unsigned block, char* args, int nargs) {
	void* params[32];
	for (int i = 0; i < nargs && i < 32; i++) params[i] = args + 8 * i;
	return cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, 0, params, NULL);
}

// setWorkspace hands cuBLAS a device buffer as its workspace.
static cublasStatus_t setWorkspace(cublasHandle_t h, CUdeviceptr p, size_t n) {
	return cublasSetWorkspace(h, (void*)p, n);
}

static const char* errName(CUresult r) {
	const char* s = NULL;
	cuGetErrorName(r, &s);
	return s ? s : "unknown CUDA error";
}
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// cublasWorkspace is the size in bytes of the workspace given to cuBLAS.
const cublasWorkspace = 32 << 20

// Device is one GPU with its primary context, a cuBLAS handle and the
// package's kernels. Its methods may be called from any goroutine: each call
// binds the context to the calling OS thread for its duration. All work is
// issued on the null stream, so calls are ordered.
type Device struct {
	mu   sync.Mutex
	dev  C.CUdevice
	ctx  C.CUcontext
	blas C.cublasHandle_t
	work C.CUdeviceptr // cuBLAS workspace
	mod  C.CUmodule
	fns  map[string]C.CUfunction
	name string
	dnn  *dnnState // cuDNN, from first use (dnn.go)
}

// Mem is a device allocation of float32s.
type Mem struct {
	ptr C.CUdeviceptr
	n   int
}

// Len returns the number of float32s in m.
func (m Mem) Len() int { return m.n }

func check(what string, r C.CUresult) error {
	if r == C.CUDA_SUCCESS {
		return nil
	}
	return fmt.Errorf("cuda: %s: %s (%d)", what, C.GoString(C.errName(r)), int(r))
}

func checkBLAS(what string, s C.cublasStatus_t) error {
	if s == C.CUBLAS_STATUS_SUCCESS {
		return nil
	}
	return fmt.Errorf("cuda: %s: cuBLAS status %d", what, int(s))
}

// Open initializes GPU number index (0 is the first, as nvidia-smi -L
// numbers them) and compiles the kernels for it (nvrtc.go). It fails with
// an error (never a panic)
// when there is no driver or no GPU.
func Open(index int) (*Device, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := check("cuInit", C.cuInit(0)); err != nil {
		return nil, err
	}
	var n C.int
	if err := check("cuDeviceGetCount", C.cuDeviceGetCount(&n)); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("cuda: no GPU found")
	}
	if index < 0 || index >= int(n) {
		return nil, fmt.Errorf("cuda: GPU %d requested (VAT_DEVICE), the machine has %d (0-%d)", index, int(n), int(n)-1)
	}
	d := &Device{fns: map[string]C.CUfunction{}}
	if err := check("cuDeviceGet", C.cuDeviceGet(&d.dev, C.int(index))); err != nil {
		return nil, err
	}
	var name [256]C.char
	C.cuDeviceGetName(&name[0], 256, d.dev)
	d.name = C.GoString(&name[0])
	if err := check("cuDevicePrimaryCtxRetain", C.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return nil, err
	}
	if err := check("cuCtxSetCurrent", C.cuCtxSetCurrent(d.ctx)); err != nil {
		return nil, err
	}
	if err := checkBLAS("cublasCreate", C.cublasCreate(&d.blas)); err != nil {
		return nil, err
	}
	// A workspace of our own, so that cuBLAS never allocates one during a
	// product (an allocation waits for the whole device). Without it cuBLAS
	// still works, only slower, so a failure here is not fatal.
	if C.cuMemAlloc(&d.work, cublasWorkspace) == C.CUDA_SUCCESS {
		C.setWorkspace(d.blas, d.work, cublasWorkspace)
	}
	major, minor, err := computeCapability(d.dev)
	if err != nil {
		return nil, err
	}
	src, err := kernelPTX(major, minor)
	if err != nil {
		return nil, err
	}
	ptx := C.CString(src)
	defer C.free(unsafe.Pointer(ptx))
	if err := check("cuModuleLoadData", C.cuModuleLoadData(&d.mod, unsafe.Pointer(ptx))); err != nil {
		return nil, err
	}
	for _, k := range KernelNames {
		var f C.CUfunction
		cname := C.CString(k)
		err := check("cuModuleGetFunction "+k, C.cuModuleGetFunction(&f, d.mod, cname))
		C.free(unsafe.Pointer(cname))
		if err != nil {
			return nil, err
		}
		d.fns[k] = f
	}
	return d, nil
}

// Name returns the GPU's name.
func (d *Device) Name() string { return d.name }

// do runs fn with the device's context current on a locked OS thread.
func (d *Device) do(fn func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := check("cuCtxSetCurrent", C.cuCtxSetCurrent(d.ctx)); err != nil {
		return err
	}
	return fn()
}

// Close releases the device's resources.
func (d *Device) Close() error {
	return d.do(func() error {
		d.closeDNN()
		C.cublasDestroy(d.blas)
		if d.work != 0 {
			C.cuMemFree(d.work)
		}
		C.cuModuleUnload(d.mod)
		return check("cuDevicePrimaryCtxRelease", C.cuDevicePrimaryCtxRelease(d.dev))
	})
}

// Alloc returns uninitialized device memory for n float32s.
func (d *Device) Alloc(n int) (Mem, error) {
	m := Mem{n: n}
	err := d.do(func() error {
		return check("cuMemAlloc", C.cuMemAlloc(&m.ptr, C.size_t(4*max(n, 1))))
	})
	return m, err
}

// Free releases m.
func (d *Device) Free(m Mem) error {
	return d.do(func() error { return check("cuMemFree", C.cuMemFree(m.ptr)) })
}

// Upload copies src into m.
func (d *Device) Upload(m Mem, src []float32) error {
	if len(src) > m.n {
		return fmt.Errorf("cuda: Upload of %d floats into %d", len(src), m.n)
	}
	if len(src) == 0 {
		return nil
	}
	return d.do(func() error {
		return check("cuMemcpyHtoD", C.cuMemcpyHtoD(m.ptr, unsafe.Pointer(&src[0]), C.size_t(4*len(src))))
	})
}

// Download copies the first len(dst) floats of m into dst.
func (d *Device) Download(dst []float32, m Mem) error {
	if len(dst) > m.n {
		return fmt.Errorf("cuda: Download of %d floats from %d", len(dst), m.n)
	}
	if len(dst) == 0 {
		return nil
	}
	return d.do(func() error {
		return check("cuMemcpyDtoH", C.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), m.ptr, C.size_t(4*len(dst))))
	})
}

// Copy copies the first n floats of src into dst (device to device).
func (d *Device) Copy(dst, src Mem, n int) error {
	if n > dst.n || n > src.n {
		return fmt.Errorf("cuda: Copy of %d floats between %d and %d", n, src.n, dst.n)
	}
	if n == 0 {
		return nil
	}
	return d.do(func() error {
		return check("cuMemcpyDtoD", C.cuMemcpyDtoD(dst.ptr, src.ptr, C.size_t(4*n)))
	})
}

// Sync waits for all issued work.
func (d *Device) Sync() error {
	return d.do(func() error { return check("cuCtxSynchronize", C.cuCtxSynchronize()) })
}

func blasOp(t bool) C.cublasOperation_t {
	if t {
		return C.CUBLAS_OP_T
	}
	return C.CUBLAS_OP_N
}

// Sgemm computes C = op(A)·op(B) + beta·C on row-major matrices with the
// same conventions as the root package's CPU sgemm (op(A) m×k, op(B) k×n,
// C m×n). cuBLAS is column-major, so it computes Cᵀ = op(B)ᵀ·op(A)ᵀ.
func (d *Device) Sgemm(transA, transB bool, m, n, k int, a Mem, lda int, b Mem, ldb int, beta float32, c Mem, ldc int) error {
	return d.SgemmStridedBatched(transA, transB, m, n, k, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)
}

// SgemmStridedBatched runs batch products C_i = op(A_i)·op(B_i) + beta·C_i,
// where X_i starts strideX floats after X_{i-1} (a stride of 0 reuses one
// matrix for every product).
func (d *Device) SgemmStridedBatched(transA, transB bool, m, n, k int, a Mem, lda, strideA int, b Mem, ldb, strideB int, beta float32, c Mem, ldc, strideC, batch int) error {
	return d.do(func() error {
		return checkBLAS("cublasSgemmStridedBatched", C.sgemmBatched(d.blas,
			blasOp(transB), blasOp(transA), C.int(n), C.int(m), C.int(k), 1,
			b.ptr, C.int(ldb), C.longlong(strideB), a.ptr, C.int(lda), C.longlong(strideA),
			C.float(beta), c.ptr, C.int(ldc), C.longlong(strideC), C.int(batch)))
	})
}

// launch runs kernel name over total elements (grid-stride loops) with the
// given arguments: Mem, int (passed as int32 or int64 per the kernel's
// signature, see arg types), uint64, float32, float64.
func (d *Device) launch(name string, total int64, args ...any) error {
	f, ok := d.fns[name]
	if !ok {
		return fmt.Errorf("cuda: no kernel %q", name)
	}
	buf := make([]byte, 8*len(args))
	for i, a := range args {
		slot := buf[8*i:]
		switch v := a.(type) {
		case Mem:
			binary.LittleEndian.PutUint64(slot, uint64(v.ptr))
		case int32:
			binary.LittleEndian.PutUint32(slot, uint32(v))
		case int64:
			binary.LittleEndian.PutUint64(slot, uint64(v))
		case uint64:
			binary.LittleEndian.PutUint64(slot, v)
		case float32:
			binary.LittleEndian.PutUint32(slot, math.Float32bits(v))
		case float64:
			binary.LittleEndian.PutUint64(slot, math.Float64bits(v))
		default:
			return fmt.Errorf("cuda: kernel %s: argument %d has unsupported type %T", name, i, a)
		}
	}
	const block = 256
	grid := (total + block - 1) / block
	if grid > 65535*8 {
		grid = 65535 * 8
	}
	if grid < 1 {
		grid = 1
	}
	return d.do(func() error {
		return check("launch "+name, C.launch(f, C.uint(grid), block, (*C.char)(unsafe.Pointer(&buf[0])), C.int(len(args))))
	})
}
