// emu.h: just enough of CUDA's device-side C++ to compile cuda/kernels.cu
// with a host C++ compiler and run its kernels on the CPU (see doc.go). A
// launch runs the grid's blocks one after another, so __shared__ arrays can
// be function statics; a block's threads run one after another, or, in a
// kernel that calls __syncthreads, as fibers that each run up to the
// barrier before any goes past it.
#ifndef VAT_CUDAEMU_H
#define VAT_CUDAEMU_H

#include <math.h>
#include <functional>
#include <stdio.h>
#include <stdlib.h>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

extern dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __shared__ static

// __syncthreads returns when every thread of the block has called it: the
// calling fiber yields to the block's scheduler (kernels.cpp), which runs
// every other fiber up to the same barrier first. In a kernel launched
// serially (EMU in kernels.cpp) there is no scheduler: calling it there is
// a bug of the emulator's launch table, reported and fatal.
void __syncthreads();

// The round-to-nearest intrinsics: plain float arithmetic on the host
// (x86-64's default target has no fused multiply-add to contract into).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}

// emu_launch runs body as a grid of grid blocks of block threads.
void emu_launch(unsigned grid, unsigned block, const std::function<void()>& body);

#endif
