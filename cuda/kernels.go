//go:build cuda

package cuda

import (
	"fmt"

	"github.com/org/vat/internal/rng"
)

// The typed entry points of the kernels in kernels.cu. Sizes are passed as
// the kernels declare them: int as int32, long as int64.

// Im2col writes the im2col matrices of N C×H×W images into col
// (N × (C·KH·KW) × (OH·OW)).
func (d *Device) Im2col(x, col Mem, n, c, h, w, kh, kw int) error {
	total := int64(n) * int64(c*kh*kw) * int64((h-kh+1)*(w-kw+1))
	return d.launch("im2col", total, x, col, int32(n), int32(c), int32(h), int32(w), int32(kh), int32(kw))
}

// Col2im sums col back onto N C×H×W images in x (overwriting x).
func (d *Device) Col2im(col, x Mem, n, c, h, w, kh, kw int) error {
	return d.launch("col2im", int64(n*c*h*w), col, x, int32(n), int32(c), int32(h), int32(w), int32(kh), int32(kw))
}

// BiasAct adds b[f] to every y[n][f][·] (p positions) and applies a ReLU if relu.
func (d *Device) BiasAct(y, b Mem, n, f, p int, relu bool) error {
	return d.launch("bias_act", int64(n*f*p), y, b, int32(n), int32(f), int32(p), flag(relu))
}

// ReluMask sets out = g where y > 0, else 0, over n elements.
func (d *Device) ReluMask(out, y, g Mem, n int) error {
	return d.launch("relu_mask", int64(n), out, y, g, int64(n))
}

// MaxPool2 pools nc planes of h×w into (h/2)×(w/2).
func (d *Device) MaxPool2(x, y Mem, nc, h, w int) error {
	return d.launch("maxpool2", int64(nc*(h/2)*(w/2)), x, y, int32(nc), int32(h), int32(w))
}

// MaxPool2Grad computes dL/dx of MaxPool2 from x, y and dL/dy.
func (d *Device) MaxPool2Grad(x, y, gy, gx Mem, nc, h, w int) error {
	return d.launch("maxpool2_grad", int64(nc*h*w), x, y, gy, gx, int32(nc), int32(h), int32(w))
}

// BiasGrad sums g (n×f×p) over n and p into gb (f).
func (d *Device) BiasGrad(g, gb Mem, n, f, p int) error {
	// One block of 256 threads per feature: launch computes the grid from
	// the total, so ask for f·256 threads.
	return d.launch("bias_grad", int64(f)*256, g, gb, int32(n), int32(f), int32(p))
}

// Axpby sets z = a·x + b·y over n elements.
func (d *Device) Axpby(z Mem, a float32, x Mem, b float32, y Mem, n int) error {
	return d.launch("axpby", int64(n), z, a, x, b, y, int64(n))
}

// Mul sets z = x·y elementwise over n elements.
func (d *Device) Mul(z, x, y Mem, n int) error {
	return d.launch("mul", int64(n), z, x, y, int64(n))
}

// Adadelta applies Keras' Adadelta update to n parameters w with gradient
// g and running averages a (of g²) and u (of updates²).
func (d *Device) Adadelta(w, g, a, u Mem, n int, rho, eps, lr float32) error {
	return d.launch("adadelta", int64(n), w, g, a, u, int64(n), rho, eps, lr)
}

// Adam applies the root package's Adam update to n parameters.
func (d *Device) Adam(w, g, m, v Mem, n int, b1, b2, step, eps float32) error {
	return d.launch("adam", int64(n), w, g, m, v, int64(n), b1, b2, step, eps)
}

// Bernoulli writes rng.BernoulliKey(m[:n], key, t, v): one thread per
// BERN_DRAWS (16) 64-bit draws of a chunk's PCG stream.
func (d *Device) Bernoulli(m Mem, n int, key, t uint64, v float32) error {
	if n > m.n {
		return fmt.Errorf("cuda: Bernoulli of %d floats into %d", n, m.n)
	}
	const perChunk = rng.ChunkLen / 2 / 16 // threads per chunk: BERN_DRAWS 64-bit draws each
	return d.launch("bernoulli_pcg", int64((n+rng.ChunkLen-1)/rng.ChunkLen*perChunk), m, int64(n), key, t, v)
}

// Normals writes rng.PhiloxNormals(x[:n], key): one thread per four values.
func (d *Device) Normals(x Mem, n int, key uint64) error {
	if n > x.n {
		return fmt.Errorf("cuda: Normals of %d floats into %d", n, x.n)
	}
	return d.launch("normals_philox", int64((n+3)/4), x, int64(n), key)
}

// BatchNorm normalizes per channel: one block of 256 threads per channel.
func (d *Device) BatchNorm(x, gamma, beta, runMean, runVar, xhat, y, invStd Mem, n, c, p int, train, update bool, eps, momentum float64) error {
	if err := perBlock("BatchNorm", c); err != nil {
		return err
	}
	return d.launch("bn_forward", int64(c)*256, x, gamma, beta, runMean, runVar, xhat, y, invStd,
		int32(n), int32(c), int32(p), flag(train), flag(update), eps, momentum)
}

// BatchNormGrad writes one gradient of BatchNorm: one block per channel.
func (d *Device) BatchNormGrad(wrt int, g, xhat, gamma, invStd, out Mem, n, c, p int, train bool) error {
	if err := perBlock("BatchNormGrad", c); err != nil {
		return err
	}
	return d.launch("bn_backward", int64(c)*256, int32(wrt), g, xhat, gamma, invStd, out, int32(n), int32(c), int32(p), flag(train))
}

// perBlock checks that a kernel with one block per item (sample, channel)
// gets a block for each of n items: launch caps the grid at 65535·8 blocks,
// and these kernels have no grid-stride loop over blocks.
func perBlock(what string, n int) error {
	if n > 65535*8 {
		return fmt.Errorf("cuda: %s of %d items, at most %d", what, n, 65535*8)
	}
	return nil
}

// flag is a bool as a kernel's int argument.
func flag(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// LossRows writes each row's softmax loss: one thread per row.
func (d *Device) LossRows(kind int, a, b, loss Mem, n, k int) error {
	if n*k > a.n || n*k > b.n || n > loss.n {
		return fmt.Errorf("cuda: LossRows of %d×%d with %d, %d and %d floats", n, k, a.n, b.n, loss.n)
	}
	return d.launch("loss_rows", int64(n), int32(kind), a, b, loss, int32(n), int32(k))
}

// LossGrad writes c times each row's loss gradient: one thread per row.
func (d *Device) LossGrad(kind, wrt int, a, b, grad Mem, n, k int, c float64) error {
	if n*k > a.n || n*k > b.n || n*k > grad.n {
		return fmt.Errorf("cuda: LossGrad of %d×%d with %d, %d and %d floats", n, k, a.n, b.n, grad.n)
	}
	return d.launch("loss_grad", int64(n), int32(kind), int32(wrt), a, b, grad, int32(n), int32(k), c)
}

// L2Normalize scales each of n samples of m values in x to L2 norm scale
// (all-zero samples give 0) into y.
func (d *Device) L2Normalize(x, y Mem, n, m int, scale float32) error {
	// One block of 256 threads per sample: ask for n·256 threads.
	if err := perBlock("L2Normalize", n); err != nil {
		return err
	}
	return d.launch("l2normalize", int64(n)*256, x, y, int32(n), int32(m), scale)
}

// L2NormalizeGrad computes the gradient of L2Normalize with respect to x
// from x and the gradient g of its output.
func (d *Device) L2NormalizeGrad(x, g, gx Mem, n, m int, scale float32) error {
	if err := perBlock("L2NormalizeGrad", n); err != nil {
		return err
	}
	return d.launch("l2normalize_grad", int64(n)*256, x, g, gx, int32(n), int32(m), scale)
}
