package kernels

// Kernel names the matrix product's micro-kernel in use: "avx2+fma" (Go
// assembly, amd64 processors with AVX2 and FMA) or "go" (portable). Results
// are bit-identical from run to run on one kernel; the two kernels round
// differently.
func Kernel() string {
	if useAsmKernel {
		return "avx2+fma"
	}
	return "go"
}
