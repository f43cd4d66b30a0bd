package kernels

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// kernelSet is one set of the matrix product's micro-kernels.
type kernelSet int

const (
	kernelGo     kernelSet = iota // portable Go
	kernelAVX2                    // Go assembly with AVX2 and FMA (6×16 tiles)
	kernelAVX512                  // AVX-512F (24×16 and 12×16 tiles), AVX2 for the edges
)

var kernelNames = [...]string{kernelGo: "go", kernelAVX2: "avx2+fma", kernelAVX512: "avx512"}

func (k kernelSet) String() string { return kernelNames[k] }

// kernel is the set in use: the best one the CPU supports, or the one
// VAT_KERNEL names.
var kernel = chooseKernel(os.Getenv("VAT_KERNEL"), supportedKernels(), os.Stderr)

// useAsmKernel and useAVX512 are kernel, read in the inner loops.
var (
	useAsmKernel = kernel >= kernelAVX2
	useAVX512    = kernel == kernelAVX512
)

// setKernel switches the kernel set (tests and benchmarks compare them).
func setKernel(k kernelSet) {
	kernel, useAsmKernel, useAVX512 = k, k >= kernelAVX2, k == kernelAVX512
}

// chooseKernel returns the best of the supported sets, or the one env
// names if it is supported; an unknown or unsupported name is reported on
// w, once, and the best set is used.
func chooseKernel(env string, supported []kernelSet, w io.Writer) kernelSet {
	best := supported[len(supported)-1]
	if env == "" {
		return best
	}
	var names []string
	for _, k := range supported {
		if strings.EqualFold(env, k.String()) || strings.EqualFold(env+"+fma", k.String()) {
			return k
		}
		names = append(names, k.String())
	}
	fmt.Fprintf(w, "vat: VAT_KERNEL=%q is not a kernel this CPU supports (%s); using %s\n", env, strings.Join(names, ", "), best)
	return best
}

// Kernel names the matrix product's micro-kernels in use: "avx512"
// (AVX-512F on amd64, with the AVX2 kernel for edge tiles), "avx2+fma" (Go
// assembly, amd64 processors with AVX2 and FMA) or "go" (portable). The
// environment variable VAT_KERNEL chooses another one the CPU supports
// ("go", "avx2" or "avx512"). Results are bit-identical from run to run on
// one kernel; "avx512" and "avx2+fma" give the same bits as each other
// (each element is the same chain of fused multiply-adds), while "go"
// rounds differently (separate multiplies and adds).
func Kernel() string { return kernel.String() }
