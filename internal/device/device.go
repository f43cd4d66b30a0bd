// Package device states what a GPU backend offers the ops of
// github.com/org/vat. It holds only interfaces: the root package's ops call
// them, and package cuda (built with the `cuda` tag) implements them and
// says so at compile time, so that a changed signature breaks the build
// instead of silently dropping a code path.
//
// Matrices are row-major float32 and activations NCHW, as on the CPU.
package device

// Mem is a device allocation of float32s. It is an unnamed interface so that
// an implementation can satisfy it without importing this package.
type Mem = interface{ Len() int }

// GPU is a GPU backend: device memory and the kernels the ops need.
type GPU interface {
	Name() string
	Alloc(n int) (Mem, error)
	Free(m Mem) error
	Upload(dst Mem, src []float32) error
	Download(dst []float32, src Mem) error
	// Copy copies the first n floats of src to dst.
	Copy(dst, src Mem, n int) error
	// Sync waits until all work issued so far has finished.
	Sync() error
	// Sgemm computes C_i = op(A_i)·op(B_i) + beta·C_i for i < batch, where
	// op(A_i) is m×k, op(B_i) k×n, and X_i starts i·strideX floats into X
	// (stride 0 reuses one matrix).
	Sgemm(transA, transB bool, m, n, k int, a Mem, lda, strideA int, b Mem, ldb, strideB int,
		beta float32, c Mem, ldc, strideC, batch int) error
	// Im2col writes the n×(c·kh·kw)×(oh·ow) receptive-field matrices of
	// n c×h×w images ("valid", stride 1); Col2im is its adjoint (it
	// overwrites x).
	Im2col(x, col Mem, n, c, h, w, kh, kw int) error
	Col2im(col, x Mem, n, c, h, w, kh, kw int) error
	// BiasAct adds b[j] to y[i][j][·] (p values per j) and applies a ReLU
	// when relu is set.
	BiasAct(y, b Mem, n, f, p int, relu bool) error
	// ReluMask sets out = g where y > 0 and 0 elsewhere.
	ReluMask(out, y, g Mem, n int) error
	// MaxPool2 and MaxPool2Grad are 2×2, stride-2 pooling over nc planes of
	// h×w; the gradient goes to the first maximal input of each window.
	MaxPool2(x, y Mem, nc, h, w int) error
	MaxPool2Grad(x, y, gy, gx Mem, nc, h, w int) error
	// Axpby sets z = a·x + b·y; Mul sets z = x·y (elementwise, n values).
	Axpby(z Mem, a float32, x Mem, b float32, y Mem, n int) error
	Mul(z, x, y Mem, n int) error
	// L2Normalize scales each of n samples of m values to L2 norm scale (0
	// for an all-zero sample); L2NormalizeGrad is its gradient. Sums in
	// float64.
	L2Normalize(x, y Mem, n, m int, scale float32) error
	L2NormalizeGrad(x, g, gx Mem, n, m int, scale float32) error
	// Adadelta applies Keras' Adadelta update to n parameters w with
	// gradient g and running averages accGrad (of g²) and accUpdate (of
	// updates²).
	Adadelta(w, g, accGrad, accUpdate Mem, n int, rho, eps, lr float32) error
	// Adam applies the root package's Adam update to n parameters w with
	// gradient g and moments m and v, in float32 in the CPU's order of
	// operations (no fused multiply-adds), so its results are the CPU's:
	//
	//	m ← β₁m + (1−β₁)g,  v ← β₂v + ((1−β₂)g)g,  w ← w − (step·m)/(√v + eps)
	Adam(w, g, m, v Mem, n int, beta1, beta2, step, eps float32) error
	// Bernoulli sets the first n floats of m to rng.BernoulliKey's mask for
	// key and threshold t (v with probability t/2³², else +0), bit for bit:
	// dropout draws the same masks on the GPU as on the CPU.
	Bernoulli(m Mem, n int, key, t uint64, v float32) error
	// Normals sets the first n floats of x to rng.PhiloxNormals for key
	// (N(0, 1) draws of a counter-based generator), within the rounding of
	// the GPU's float64 log, sin and cos.
	Normals(x Mem, n int, key uint64) error
	// LossRows writes the loss of each of n rows of k logits into loss
	// (n floats), and LossGrad c times the gradient of each row's loss
	// with respect to argument wrt (0: a, 1: b, KL only) into grad (n×k).
	// kind is one of the Loss constants; entropy ignores b. Computed in
	// float64, as the CPU ops compute them.
	// BatchNorm normalizes x, n samples of c channels of p values, per
	// channel: by the batch's mean and biased variance when train is set
	// (then, when update is set, runMean ← momentum·runMean +
	// (1−momentum)·mean and likewise runVar with the variance unbiased by
	// M/(M−1), M = n·p), else by runMean and runVar. It writes x̂ into
	// xhat, y = γ·x̂ + β, and 1/√(σ²+ε) per channel into invStd. Sums in
	// float64, as the CPU op.
	BatchNorm(x, gamma, beta, runMean, runVar, xhat, y, invStd Mem, n, c, p int, train, update bool, eps, momentum float64) error
	// BatchNormGrad writes one gradient of BatchNorm from the incoming
	// gradient g and the forward's xhat and invStd: wrt 0 the input's into
	// out (n·c·p), γ·invStd/M·(M·g − Σg − x̂·Σg·x̂) when train, else
	// γ·invStd·g; wrt 1 γ's, Σg·x̂ per channel (c); wrt 2 β's, Σg (c).
	BatchNormGrad(wrt int, g, xhat, gamma, invStd, out Mem, n, c, p int, train bool) error
	LossRows(kind int, a, b, loss Mem, n, k int) error
	LossGrad(kind, wrt int, a, b, grad Mem, n, k int, c float64) error
	Close() error
}

// The softmax losses of GPU.LossRows and GPU.LossGrad, with p = softmax(a)
// and q = softmax(b) row by row:
//
//	LossCrossEntropy  −Σ_j b_j log p_j                  (b: targets)
//	LossKL            Σ_j p_j (log p_j − log q_j)
//	LossEntropy       −Σ_j p_j log p_j
const (
	LossCrossEntropy = iota
	LossKL
	LossEntropy
)

// DNN is the optional part of a GPU backend that runs convolutions and
// pooling through a vendor library (cuDNN). The root package uses it, layer
// by layer, where it measures faster than the GPU's own im2col and pooling
// kernels (see internal/backend/choice.go).
//
// The convolutions are "valid" cross-correlations with stride 1 and no
// bias, on n images of c×h×w and f filters of c×kh×kw (PyTorch's layouts):
//
//	ConvForward:        y[n,f,i,j] = Σ_c Σ_p Σ_q w[f,c,p,q]·x[n,c,i+p,j+q]
//	ConvBackwardData:   gx = ∂L/∂x from gy = ∂L/∂y (overwrites gx)
//	ConvBackwardFilter: gw = ∂L/∂w from x and gy, summed over the batch (overwrites gw)
//
// Implementations must be deterministic: the same inputs give the same bits.
type DNN interface {
	ConvForward(x, w, y Mem, n, c, h, wd, f, kh, kw int) error
	ConvBackwardData(w, gy, gx Mem, n, c, h, wd, f, kh, kw int) error
	ConvBackwardFilter(x, gy, gw Mem, n, c, h, wd, f, kh, kw int) error
	// MaxPool2DNN and MaxPool2GradDNN are MaxPool2 and MaxPool2Grad of GPU
	// on n×c planes of h×w (h and w even).
	MaxPool2DNN(x, y Mem, n, c, h, w int) error
	MaxPool2GradDNN(x, y, gy, gx Mem, n, c, h, w int) error
}
