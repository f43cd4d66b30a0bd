//go:build cuda

package cuda

/*
#cgo LDFLAGS: -lcudnn
#include <cuda.h>
#include <cudnn.h>
#include <stdlib.h>

// A convolution's descriptors and the algorithm and workspace chosen for
// each of its three directions (0 forward, 1 backward data, 2 backward
// filter; algo -1: none fits).
typedef struct {
	cudnnTensorDescriptor_t x, y;
	cudnnFilterDescriptor_t w;
	cudnnConvolutionDescriptor_t conv;
	int algo[3];
	size_t ws[3];
} vatConvPlan;

// usable says whether cuDNN's ranking entry may be used: it ran, it is
// deterministic (a seed must give the same bits), and it does its
// arithmetic in float32 FMAs, not TF32 tensor cores (the CPU ops are the
// reference, to 1e-4).
static int usable(cudnnStatus_t st, cudnnDeterminism_t det, cudnnMathType_t math) {
	return st == CUDNN_STATUS_SUCCESS && det == CUDNN_DETERMINISTIC &&
		math != CUDNN_TENSOR_OP_MATH && math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The pick functions take the first usable algorithm of cuDNN's heuristic
// ranking whose workspace fits in limit bytes, for direction slot of p. The
// heuristics depend only on the GPU, the cuDNN version and the shapes, so
// every process makes the same choice (cuDNN's Find, which times the
// candidates, need not). RANK fills perf[0:n]; WS sets need for perf[i].
#define DEFINE_PICK(NAME, PERF, SLOT, RANK, WS) \
static cudnnStatus_t NAME(cudnnHandle_t h, vatConvPlan* p, size_t limit) { \
	PERF perf[16]; \
	int n = 0; \
	cudnnStatus_t st = RANK; \
	if (st != CUDNN_STATUS_SUCCESS) return st; \
	for (int i = 0; i < n; i++) { \
		size_t need = 0; \
		if (!usable(perf[i].status, perf[i].determinism, perf[i].mathType)) continue; \
		if (WS != CUDNN_STATUS_SUCCESS || need > limit) continue; \
		p->algo[SLOT] = (int)perf[i].algo; \
		p->ws[SLOT] = need; \
		break; \
	} \
	return CUDNN_STATUS_SUCCESS; \
}

DEFINE_PICK(pickFwd, cudnnConvolutionFwdAlgoPerf_t, 0,
	cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, 16, &n, perf),
	cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y, perf[i].algo, &need))
DEFINE_PICK(pickBwdData, cudnnConvolutionBwdDataAlgoPerf_t, 1,
	cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x, 16, &n, perf),
	cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x, perf[i].algo, &need))
DEFINE_PICK(pickBwdFilter, cudnnConvolutionBwdFilterAlgoPerf_t, 2,
	cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w, 16, &n, perf),
	cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv, p->w, perf[i].algo, &need))

// convPlanInit fills p for n c×hh×ww images and f filters of kh×kw ("valid",
// stride 1, cross-correlation, float32 throughout). *stage names the call
// that failed.
static cudnnStatus_t convPlanInit(cudnnHandle_t h, vatConvPlan* p, int n, int c, int hh, int ww, int f, int kh, int kw, size_t limit, int* stage) {
	cudnnStatus_t st;
	p->algo[0] = p->algo[1] = p->algo[2] = -1;
	p->ws[0] = p->ws[1] = p->ws[2] = 0;
	*stage = 0;
	if ((st = cudnnCreateTensorDescriptor(&p->x)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnCreateTensorDescriptor(&p->y)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnCreateFilterDescriptor(&p->w)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnCreateConvolutionDescriptor(&p->conv)) != CUDNN_STATUS_SUCCESS) return st;
	*stage = 1;
	if ((st = cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, hh, ww)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, f, hh - kh + 1, ww - kw + 1)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, f, c, kh, kw)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnSetConvolution2dDescriptor(p->conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH)) != CUDNN_STATUS_SUCCESS) return st;
	*stage = 2;
	if ((st = pickFwd(h, p, limit)) != CUDNN_STATUS_SUCCESS) return st;
	*stage = 3;
	if ((st = pickBwdData(h, p, limit)) != CUDNN_STATUS_SUCCESS) return st;
	*stage = 4;
	return pickBwdFilter(h, p, limit);
}

static void convPlanFree(vatConvPlan* p) {
	if (p->x) cudnnDestroyTensorDescriptor(p->x);
	if (p->y) cudnnDestroyTensorDescriptor(p->y);
	if (p->w) cudnnDestroyFilterDescriptor(p->w);
	if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
	free(p);
}

static cudnnStatus_t convForward(cudnnHandle_t h, vatConvPlan* p, CUdeviceptr x, CUdeviceptr w, CUdeviceptr y, CUdeviceptr ws) {
	float one = 1, zero = 0;
	return cudnnConvolutionForward(h, &one, p->x, (const void*)x, p->w, (const void*)w, p->conv,
		(cudnnConvolutionFwdAlgo_t)p->algo[0], (void*)ws, p->ws[0], &zero, p->y, (void*)y);
}

static cudnnStatus_t convBackwardData(cudnnHandle_t h, vatConvPlan* p, CUdeviceptr w, CUdeviceptr gy, CUdeviceptr gx, CUdeviceptr ws) {
	float one = 1, zero = 0;
	return cudnnConvolutionBackwardData(h, &one, p->w, (const void*)w, p->y, (const void*)gy, p->conv,
		(cudnnConvolutionBwdDataAlgo_t)p->algo[1], (void*)ws, p->ws[1], &zero, p->x, (void*)gx);
}

static cudnnStatus_t convBackwardFilter(cudnnHandle_t h, vatConvPlan* p, CUdeviceptr x, CUdeviceptr gy, CUdeviceptr gw, CUdeviceptr ws) {
	float one = 1, zero = 0;
	return cudnnConvolutionBackwardFilter(h, &one, p->x, (const void*)x, p->y, (const void*)gy, p->conv,
		(cudnnConvolutionBwdFilterAlgo_t)p->algo[2], (void*)ws, p->ws[2], &zero, p->w, (void*)gw);
}

// A 2×2, stride-2 max-pooling of n×c planes of hh×ww.
typedef struct {
	cudnnPoolingDescriptor_t pool;
	cudnnTensorDescriptor_t x, y;
} vatPoolPlan;

static cudnnStatus_t poolPlanInit(vatPoolPlan* p, int n, int c, int hh, int ww) {
	cudnnStatus_t st;
	if ((st = cudnnCreatePoolingDescriptor(&p->pool)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnCreateTensorDescriptor(&p->x)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnCreateTensorDescriptor(&p->y)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnSetPooling2dDescriptor(p->pool, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0, 0, 2, 2)) != CUDNN_STATUS_SUCCESS) return st;
	if ((st = cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, hh, ww)) != CUDNN_STATUS_SUCCESS) return st;
	return cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, hh / 2, ww / 2);
}

static void poolPlanFree(vatPoolPlan* p) {
	if (p->pool) cudnnDestroyPoolingDescriptor(p->pool);
	if (p->x) cudnnDestroyTensorDescriptor(p->x);
	if (p->y) cudnnDestroyTensorDescriptor(p->y);
	free(p);
}

static cudnnStatus_t poolForward(cudnnHandle_t h, vatPoolPlan* p, CUdeviceptr x, CUdeviceptr y) {
	float one = 1, zero = 0;
	return cudnnPoolingForward(h, p->pool, &one, p->x, (const void*)x, &zero, p->y, (void*)y);
}

static cudnnStatus_t poolBackward(cudnnHandle_t h, vatPoolPlan* p, CUdeviceptr x, CUdeviceptr y, CUdeviceptr gy, CUdeviceptr gx) {
	float one = 1, zero = 0;
	return cudnnPoolingBackward(h, p->pool, &one, p->y, (const void*)y, p->y, (const void*)gy,
		p->x, (const void*)x, &zero, p->x, (void*)gx);
}
*/
import "C"

import "fmt"

// The cuDNN side of Device: convolutions and max-pooling through cuDNN 9's
// legacy (descriptor) API, one plan per shape, made on first use. cuDNN runs
// on the same null stream as the package's kernels and cuBLAS, so its work
// is ordered with theirs.

// dnnWorkspaceLimit bounds the workspace an algorithm may ask for. The
// network's layers need far less; the bound keeps a caller's large layer
// from taking the GPU's memory.
const dnnWorkspaceLimit = 256 << 20

// ConvShape is a convolution's sizes: N images of C×H×W, F filters of KH×KW
// ("valid", stride 1).
type ConvShape struct{ N, C, H, W, F, KH, KW int }

func (s ConvShape) String() string {
	return fmt.Sprintf("%d×%d×%d×%d * %d×%d×%d×%d", s.N, s.C, s.H, s.W, s.F, s.C, s.KH, s.KW)
}

type dnnState struct {
	h       C.cudnnHandle_t
	convs   map[ConvShape]*C.vatConvPlan
	pools   map[[4]int]*C.vatPoolPlan
	work    C.CUdeviceptr
	workLen C.size_t
}

func checkDNN(what string, s C.cudnnStatus_t) error {
	if s == C.CUDNN_STATUS_SUCCESS {
		return nil
	}
	return fmt.Errorf("cuda: %s: %s (cuDNN status %d)", what, C.GoString(C.cudnnGetErrorString(s)), int(s))
}

// dnnLocked returns the cuDNN state, creating the handle on first use; the
// caller holds the device (inside do).
func (d *Device) dnnLocked() (*dnnState, error) {
	if d.dnn != nil {
		return d.dnn, nil
	}
	s := &dnnState{convs: map[ConvShape]*C.vatConvPlan{}, pools: map[[4]int]*C.vatPoolPlan{}}
	if err := checkDNN("cudnnCreate", C.cudnnCreate(&s.h)); err != nil {
		return nil, err
	}
	d.dnn = s
	return s, nil
}

// DNNVersion returns the version of the cuDNN library in use (e.g. 91900
// for 9.19.0).
func DNNVersion() int { return int(C.cudnnGetVersion()) }

// workspace returns device memory of at least n bytes (0 when n is 0).
func (s *dnnState) workspace(n C.size_t) (C.CUdeviceptr, error) {
	if n == 0 {
		return 0, nil
	}
	if n <= s.workLen {
		return s.work, nil
	}
	if s.work != 0 {
		if err := check("cuMemFree", C.cuMemFree(s.work)); err != nil {
			return 0, err
		}
		s.work, s.workLen = 0, 0
	}
	if err := check("cuMemAlloc (cuDNN workspace)", C.cuMemAlloc(&s.work, n)); err != nil {
		return 0, err
	}
	s.workLen = n
	return s.work, nil
}

func (s *dnnState) convPlan(sh ConvShape) (*C.vatConvPlan, error) {
	if p, ok := s.convs[sh]; ok {
		return p, nil
	}
	if sh.N <= 0 || sh.C <= 0 || sh.F <= 0 || sh.KH <= 0 || sh.KW <= 0 || sh.H < sh.KH || sh.W < sh.KW {
		return nil, fmt.Errorf("cuda: convolution %v: sizes out of range", sh)
	}
	p := (*C.vatConvPlan)(C.calloc(1, C.sizeof_vatConvPlan))
	var stage C.int
	st := C.convPlanInit(s.h, p, C.int(sh.N), C.int(sh.C), C.int(sh.H), C.int(sh.W), C.int(sh.F), C.int(sh.KH), C.int(sh.KW),
		dnnWorkspaceLimit, &stage)
	if err := checkDNN(fmt.Sprintf("convolution plan %v (%s)", sh, [...]string{"descriptors", "shapes", "forward algorithm", "backward-data algorithm", "backward-filter algorithm"}[stage]), st); err != nil {
		C.convPlanFree(p)
		return nil, err
	}
	s.convs[sh] = p
	return p, nil
}

// withPlan runs fn on the device with the cuDNN state and the plan of
// shape sh, made on first use.
func (d *Device) withPlan(sh ConvShape, fn func(s *dnnState, p *C.vatConvPlan) error) error {
	return d.do(func() error {
		s, err := d.dnnLocked()
		if err != nil {
			return err
		}
		p, err := s.convPlan(sh)
		if err != nil {
			return err
		}
		return fn(s, p)
	})
}

// convRun runs direction dir (0 forward, 1 backward data, 2 backward
// filter) of the convolution of shape sh.
func (d *Device) convRun(sh ConvShape, dir int, a, b, out Mem) error {
	return d.withPlan(sh, func(s *dnnState, p *C.vatConvPlan) error {
		name := [...]string{"cudnnConvolutionForward", "cudnnConvolutionBackwardData", "cudnnConvolutionBackwardFilter"}[dir]
		if p.algo[dir] < 0 {
			return fmt.Errorf("cuda: %s %v: no deterministic float32 algorithm within a %d MiB workspace", name, sh, dnnWorkspaceLimit>>20)
		}
		ws, err := s.workspace(p.ws[dir])
		if err != nil {
			return err
		}
		var st C.cudnnStatus_t
		switch dir {
		case 0:
			st = C.convForward(s.h, p, a.ptr, b.ptr, out.ptr, ws)
		case 1:
			st = C.convBackwardData(s.h, p, a.ptr, b.ptr, out.ptr, ws)
		default:
			st = C.convBackwardFilter(s.h, p, a.ptr, b.ptr, out.ptr, ws)
		}
		return checkDNN(name+" "+sh.String(), st)
	})
}

// ConvForward sets y = x ⋆ w (cross-correlation, no bias) through cuDNN.
func (d *Device) ConvForward(x, w, y Mem, sh ConvShape) error { return d.convRun(sh, 0, x, w, y) }

// ConvBackwardData sets gx to the gradient with respect to x, given gy.
func (d *Device) ConvBackwardData(w, gy, gx Mem, sh ConvShape) error {
	return d.convRun(sh, 1, w, gy, gx)
}

// ConvBackwardFilter sets gw to the gradient with respect to w, summed over
// the batch, given x and gy.
func (d *Device) ConvBackwardFilter(x, gy, gw Mem, sh ConvShape) error {
	return d.convRun(sh, 2, x, gy, gw)
}

// ConvAlgorithms returns the cuDNN algorithms (forward, backward data,
// backward filter; cuDNN's enum values, -1 for none) and their workspace
// sizes in bytes chosen for shape sh.
func (d *Device) ConvAlgorithms(sh ConvShape) (algo [3]int, ws [3]int, err error) {
	err = d.withPlan(sh, func(_ *dnnState, p *C.vatConvPlan) error {
		for i := range algo {
			algo[i], ws[i] = int(p.algo[i]), int(p.ws[i])
		}
		return nil
	})
	return algo, ws, err
}

func (d *Device) poolRun(n, c, h, w int, fn func(s *dnnState, p *C.vatPoolPlan) C.cudnnStatus_t, name string) error {
	if n <= 0 || c <= 0 || h < 2 || w < 2 || h%2 != 0 || w%2 != 0 {
		return fmt.Errorf("cuda: %s: %d×%d×%d×%d: want even h and w of at least 2", name, n, c, h, w)
	}
	return d.do(func() error {
		s, err := d.dnnLocked()
		if err != nil {
			return err
		}
		key := [4]int{n, c, h, w}
		p, ok := s.pools[key]
		if !ok {
			p = (*C.vatPoolPlan)(C.calloc(1, C.sizeof_vatPoolPlan))
			if err := checkDNN("pooling plan", C.poolPlanInit(p, C.int(n), C.int(c), C.int(h), C.int(w))); err != nil {
				C.poolPlanFree(p)
				return err
			}
			s.pools[key] = p
		}
		return checkDNN(fmt.Sprintf("%s %d×%d×%d×%d", name, n, c, h, w), fn(s, p))
	})
}

// DNNMaxPool2 pools n×c planes of h×w (both even) into (h/2)×(w/2) through
// cuDNN (CUDNN_POOLING_MAX_DETERMINISTIC).
func (d *Device) DNNMaxPool2(x, y Mem, n, c, h, w int) error {
	return d.poolRun(n, c, h, w, func(s *dnnState, p *C.vatPoolPlan) C.cudnnStatus_t {
		return C.poolForward(s.h, p, x.ptr, y.ptr)
	}, "cudnnPoolingForward")
}

// DNNMaxPool2Grad is the gradient of DNNMaxPool2 (through cuDNN).
func (d *Device) DNNMaxPool2Grad(x, y, gy, gx Mem, n, c, h, w int) error {
	return d.poolRun(n, c, h, w, func(s *dnnState, p *C.vatPoolPlan) C.cudnnStatus_t {
		return C.poolBackward(s.h, p, x.ptr, y.ptr, gy.ptr, gx.ptr)
	}, "cudnnPoolingBackward")
}

// closeDNN releases the cuDNN handle, plans and workspace; the caller holds
// the device.
func (d *Device) closeDNN() {
	s := d.dnn
	if s == nil {
		return
	}
	for _, p := range s.convs {
		C.convPlanFree(p)
	}
	for _, p := range s.pools {
		C.poolPlanFree(p)
	}
	if s.work != 0 {
		C.cuMemFree(s.work)
	}
	C.cudnnDestroy(s.h)
	d.dnn = nil
}
