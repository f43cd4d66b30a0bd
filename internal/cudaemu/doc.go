// Package cudaemu runs the CUDA kernels of package cuda on the CPU, so that
// their code is tested on machines without a GPU (CI, and most development
// sessions). Built with the `cudaemu` tag (and cgo with a C++17 compiler),
// it compiles cuda/kernels.cu as C++ against emu.h, a few lines of CUDA's
// device-side vocabulary (thread and block indices, __shared__,
// __syncthreads, __umulhi, the _rn intrinsics), and launches each kernel
// with package cuda's geometry: blocks of 256 threads, one block after
// another. A kernel without __syncthreads runs its threads one after
// another; one with it runs each block's threads as fibers (ucontext), in
// rounds: every thread runs up to its next barrier before any goes past it.
// Run in thread order, a reduction that lacks a barrier reads values not
// yet written and fails its test (tried: removing one __syncthreads from
// block_sum2 fails the L2 normalization and batch normalization tests).
//
// kernels_cu.h is a symbolic link to ../../cuda/kernels.cu: the go command
// hashes the header files of a package's folder into its build, so an edit
// of the kernels rebuilds the emulator (a #include of a path outside the
// folder would not be tracked, and a stale build would test old kernels).
//
// Device is backendtest.HostDevice with every kernel of kernels.cu replaced
// by its emulated launch; cuBLAS's products and cuDNN stay the host
// device's float64 definitions. The GPU-path tests
// (internal/backend/gputest.Devices) run on it as one more device:
//
//	go test -tags cudaemu -run GPU ./internal/ops/ .
//
// CI runs both: the ops' take seconds, the root package's (training steps
// on the float64 products) a few minutes.
//
// What emulation shows: the kernels' index arithmetic, bounds, grid-stride
// loops, barriers, reductions and random streams, on the CPU's float
// arithmetic. What it cannot show: timing, races between blocks (blocks run
// in order) or between threads of a warp, the memory model, and the GPU's
// own rounding of transcendental functions. Those are checked on a GPU
// (scripts/gpu-check.sh).
package cudaemu
