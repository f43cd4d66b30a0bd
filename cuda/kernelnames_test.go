package cuda

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// TestKernelNamesMatchSource: the kernels Open asks for are exactly the
// __global__ functions of kernels.cu, which Open compiles at run time
// (NVRTC). It runs without the cuda tag and without a GPU, so a kernel
// added to one side only fails every build's tests.
func TestKernelNamesMatchSource(t *testing.T) {
	src, err := os.ReadFile("kernels.cu")
	if err != nil {
		t.Fatal(err)
	}
	var defined []string
	for _, m := range regexp.MustCompile(`__global__\s+void\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(`).FindAllSubmatch(src, -1) {
		defined = append(defined, string(m[1]))
	}
	want, got := slices.Clone(defined), slices.Clone(KernelNames)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("KernelNames %v; kernels.cu defines %v", got, want)
	}
	if len(defined) < 19 {
		t.Errorf("only %d kernels found in kernels.cu: the pattern misses some", len(defined))
	}
	if _, err := os.Stat("kernels.ptx"); err == nil {
		t.Errorf("kernels.ptx exists: the kernels are compiled at run time from kernels.cu, and a committed PTX can go stale")
	}
}
