// Patched for github.com/org/vat: shims for the CUDA 13 driver API.
// CUDA 13 changed the signatures of cuCtxCreate (a CUctxCreateParams
// argument), cuMemAdvise and cuMemPrefetchAsync (a CUmemLocation instead of a
// device), and cuGraphAddDependencies / cuGraphGetEdges (edge data). These
// wrappers keep the CUDA 10-12 calls of gorgonia.org/cu v0.9.6 working on both.
#ifndef VAT_CUDA13COMPAT_H
#define VAT_CUDA13COMPAT_H
#include <cuda.h>

static inline CUresult compatCtxCreate(CUcontext* pctx, unsigned int flags, CUdevice dev) {
#if CUDA_VERSION >= 13000
	return cuCtxCreate(pctx, NULL, flags, dev);
#else
	return cuCtxCreate(pctx, flags, dev);
#endif
}

static inline CUresult compatMemAdvise(CUdeviceptr p, size_t n, CUmem_advise advice, CUdevice dev) {
#if CUDA_VERSION >= 13000
	CUmemLocation loc;
	loc.type = dev == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST : CU_MEM_LOCATION_TYPE_DEVICE;
	loc.id = dev;
	return cuMemAdvise(p, n, advice, loc);
#else
	return cuMemAdvise(p, n, advice, dev);
#endif
}

static inline CUresult compatMemPrefetchAsync(CUdeviceptr p, size_t n, CUdevice dev, CUstream s) {
#if CUDA_VERSION >= 13000
	CUmemLocation loc;
	loc.type = dev == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST : CU_MEM_LOCATION_TYPE_DEVICE;
	loc.id = dev;
	return cuMemPrefetchAsync(p, n, loc, 0, s);
#else
	return cuMemPrefetchAsync(p, n, dev, s);
#endif
}

static inline CUresult compatGraphAddDependencies(CUgraph g, const CUgraphNode* from, const CUgraphNode* to, size_t n) {
#if CUDA_VERSION >= 13000
	return cuGraphAddDependencies(g, from, to, NULL, n);
#else
	return cuGraphAddDependencies(g, from, to, n);
#endif
}

static inline CUresult compatGraphGetEdges(CUgraph g, CUgraphNode* from, CUgraphNode* to, size_t* n) {
#if CUDA_VERSION >= 13000
	return cuGraphGetEdges(g, from, to, NULL, n);
#else
	return cuGraphGetEdges(g, from, to, n);
#endif
}
#endif
