package cuda

// KernelNames are the kernels Open loads from kernels.cu, in order: every
// __global__ function of kernels.cu, and nothing else
// (TestKernelNamesMatchSource, which runs in every build, checks it).
var KernelNames = []string{"im2col", "col2im", "bias_act", "relu_mask", "maxpool2", "maxpool2_grad", "bias_grad", "axpby",
	"mul", "adadelta", "adam", "l2normalize", "l2normalize_grad", "bernoulli_pcg", "normals_philox", "loss_rows",
	"loss_grad", "bn_forward", "bn_backward"}
