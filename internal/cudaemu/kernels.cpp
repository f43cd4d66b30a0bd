//go:build cudaemu

// kernels.cpp compiles cuda/kernels.cu for the CPU (emu.h) and wraps each
// kernel in an emulated launch (launch.h).
#include "emu.h"

#include <ucontext.h>

#include <mutex>
#include <vector>

#include "launch.h"

dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace {

// One launch at a time: the indices above and the scheduler are shared.
std::mutex launching;

// A fiber is one thread of a block, with its own stack (kernels use a few
// hundred bytes of it).
struct fiber {
    ucontext_t ctx;
    std::vector<char> stack = std::vector<char>(64 << 10);
    bool done = false;
};

ucontext_t scheduler;          // where a fiber yields to
std::vector<fiber> fibers;     // the block's threads
const std::function<void()>* kernel;
unsigned current;              // the fiber running
bool inBlock;                  // a fiber scheduler is running

// run is a fiber's body: the kernel, as thread t.
void run(int t) {
    (*kernel)();
    fibers[t].done = true;
}

}  // namespace

void __syncthreads() {
    if (!inBlock) {
        fprintf(stderr, "cudaemu: __syncthreads in a kernel launched with EMU: launch it with EMU_SYNC\n");
        abort();
    }
    swapcontext(&fibers[current].ctx, &scheduler);
}

// emu_launch runs body as a grid of grid blocks of block threads, the
// blocks in order. Each block runs its threads as fibers in rounds: a round
// resumes every fiber, in thread order, until it reaches the next
// __syncthreads or returns, so no thread passes a barrier before all have
// reached it. A round in which some threads return and others wait at a
// barrier is a kernel whose threads disagree on their barriers: fatal.
void emu_launch(unsigned grid, unsigned block, const std::function<void()>& body) {
    std::lock_guard<std::mutex> one(launching);
    blockDim.x = block;
    gridDim.x = grid;
    fibers.resize(block);
    kernel = &body;
    inBlock = true;
    for (unsigned b = 0; b < grid; b++) {
        blockIdx.x = b;
        for (unsigned t = 0; t < block; t++) {
            fiber& f = fibers[t];
            f.done = false;
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = f.stack.data();
            f.ctx.uc_stack.ss_size = f.stack.size();
            f.ctx.uc_link = &scheduler;
            makecontext(&f.ctx, (void (*)())run, 1, (int)t);
        }
        for (;;) {
            unsigned finished = 0;
            for (unsigned t = 0; t < block; t++) {
                current = t;
                threadIdx.x = t;
                swapcontext(&scheduler, &fibers[t].ctx);
                finished += fibers[t].done;
            }
            if (finished == block) break;
            if (finished != 0) {
                fprintf(stderr, "cudaemu: block %u: %u of %u threads returned while the others wait at __syncthreads\n", b, finished, block);
                abort();
            }
        }
    }
    inBlock = false;
}

// emu_launch_serial runs body for every thread of the grid in order, on
// the calling thread: for kernels without __syncthreads, whose threads do
// not wait for each other.
static void emu_launch_serial(unsigned grid, unsigned block, const std::function<void()>& body) {
    std::lock_guard<std::mutex> one(launching);
    blockDim.x = block;
    gridDim.x = grid;
    for (unsigned b = 0; b < grid; b++) {
        blockIdx.x = b;
        for (unsigned t = 0; t < block; t++) {
            threadIdx.x = t;
            body();
        }
    }
}

#include "kernels_cu.h"

// EMU launches a kernel that never calls __syncthreads: its threads run
// one after another on the calling thread. EMU_SYNC launches one that
// does: each block's threads as OS threads.
#define EMU(grid, call) emu_launch_serial(grid, 256, [&] { call; })
#define EMU_SYNC(grid, call) emu_launch(grid, 256, [&] { call; })

extern "C" {

void emu_im2col(unsigned grid, const float* x, float* col, int n, int c, int h, int w, int kh, int kw) {
    EMU(grid, im2col(x, col, n, c, h, w, kh, kw));
}
void emu_col2im(unsigned grid, const float* col, float* x, int n, int c, int h, int w, int kh, int kw) {
    EMU(grid, col2im(col, x, n, c, h, w, kh, kw));
}
void emu_bias_act(unsigned grid, float* y, const float* b, int n, int f, int p, int relu) {
    EMU(grid, bias_act(y, b, n, f, p, relu));
}
void emu_relu_mask(unsigned grid, float* out, const float* y, const float* g, long n) {
    EMU(grid, relu_mask(out, y, g, n));
}
void emu_maxpool2(unsigned grid, const float* x, float* y, int nc, int h, int w) {
    EMU(grid, maxpool2(x, y, nc, h, w));
}
void emu_maxpool2_grad(unsigned grid, const float* x, const float* y, const float* gy, float* gx, int nc, int h, int w) {
    EMU(grid, maxpool2_grad(x, y, gy, gx, nc, h, w));
}
void emu_axpby(unsigned grid, float* z, float a, const float* x, float b, const float* y, long n) {
    EMU(grid, axpby(z, a, x, b, y, n));
}
void emu_mul(unsigned grid, float* z, const float* x, const float* y, long n) { EMU(grid, mul(z, x, y, n)); }
void emu_adadelta(unsigned grid, float* w, const float* g, float* a, float* u, long n, float rho, float eps, float lr) {
    EMU(grid, adadelta(w, g, a, u, n, rho, eps, lr));
}
void emu_adam(unsigned grid, float* w, const float* g, float* m, float* v, long n, float b1, float b2, float step, float eps) {
    EMU(grid, adam(w, g, m, v, n, b1, b2, step, eps));
}
void emu_l2normalize(unsigned grid, const float* x, float* y, int n, int m, float scale) {
    EMU_SYNC(grid, l2normalize(x, y, n, m, scale));
}
void emu_l2normalize_grad(unsigned grid, const float* x, const float* g, float* gx, int n, int m, float scale) {
    EMU_SYNC(grid, l2normalize_grad(x, g, gx, n, m, scale));
}
void emu_bernoulli_pcg(unsigned grid, float* m, long n, unsigned long long key, unsigned long long t, float v) {
    EMU(grid, bernoulli_pcg(m, n, key, t, v));
}
void emu_normals_philox(unsigned grid, float* x, long n, unsigned long long key) {
    EMU(grid, normals_philox(x, n, key));
}
void emu_bn_forward(unsigned grid, const float* x, const float* gamma, const float* beta, float* run_mean, float* run_var,
                    float* xhat, float* y, float* invstd, int n, int c, int p, int train, int update, double eps, double momentum) {
    EMU_SYNC(grid, bn_forward(x, gamma, beta, run_mean, run_var, xhat, y, invstd, n, c, p, train, update, eps, momentum));
}
void emu_bn_backward(unsigned grid, int wrt, const float* g, const float* xhat, const float* gamma, const float* invstd,
                     float* out, int n, int c, int p, int train) {
    EMU_SYNC(grid, bn_backward(wrt, g, xhat, gamma, invstd, out, n, c, p, train));
}
void emu_loss_rows(unsigned grid, int kind, const float* a, const float* b, float* loss, int n, int k) {
    EMU(grid, loss_rows(kind, a, b, loss, n, k));
}
void emu_loss_grad(unsigned grid, int kind, int wrt, const float* a, const float* b, float* grad, int n, int k, double c) {
    EMU(grid, loss_grad(kind, wrt, a, b, grad, n, k, c));
}

}  // extern "C"
