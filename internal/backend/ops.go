package backend

import (
	"fmt"

	"gorgonia.org/tensor"

	"github.com/org/vat/internal/device"
	"github.com/org/vat/internal/rng"
)

// The GPU side of the ops: what each op's Do runs instead of its CPU code
// when a GPU backend is active (see backend.go). Shapes have been checked
// by the op; the kernels are those of device.GPU. The weighted sum of
// scalar losses has no entry here: scalars live on the host.

// Shared device scratch: one im2col matrix and one set of per-image
// partial products serve every convolution, since ops run one at a time.
const (
	scratchCol = iota
	scratchParts
	scratchRowSums
	scratchLoss // per-row losses (LossRows)
)

// run serializes one op's device work and names the op in its error.
func (a *Accelerator) run(op string, fn func(d device.GPU) error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.profiled(op, func() error { return fn(a.dev) }); err != nil {
		return fmt.Errorf("vat: %s on the GPU: %w", op, err)
	}
	return nil
}

// bind returns the device copy of out, claimed for writing, and those of
// ins, uploaded where the host copy is newer.
func (a *Accelerator) bind(out []float32, ins ...[]float32) (device.Mem, []device.Mem, error) {
	in, err := a.ins(ins...)
	if err != nil {
		return nil, nil, err
	}
	o, err := a.out(out)
	return o, in, err
}

// convDims are the sizes of a convolution: n images of c×h×w, f filters of
// kh×kw, k = c·kh·kw rows and p output pixels per image.
type convDims struct{ n, c, h, w, f, kh, kw, k, p int }

func newConvDims(xs, ws tensor.Shape) convDims {
	d := convDims{n: xs[0], c: xs[1], h: xs[2], w: xs[3], f: ws[0], kh: ws[2], kw: ws[3]}
	d.k, d.p = d.c*d.kh*d.kw, (d.h-d.kh+1)*(d.w-d.kw+1)
	return d
}

// Conv2d computes y = conv(x, w) through cuDNN, or per image y_i = W·col(x_i) with
// im2col and cuBLAS; then bias and ReLU (conv2dOp).
func (a *Accelerator) Conv2d(y, x, w, b []float32, xs, ws tensor.Shape, relu bool) error {
	return a.run("Conv2d", func(d device.GPU) error {
		c := newConvDims(xs, ws)
		dy, in, err := a.bind(y, x, w, b)
		if err != nil {
			return err
		}
		err = a.dispatch(c.key("conv forward"), func(device.DNN) error {
			col, err := a.scratchMem(scratchCol, c.n*c.k*c.p)
			if err != nil {
				return err
			}
			if err := d.Im2col(in[0], col, c.n, c.c, c.h, c.w, c.kh, c.kw); err != nil {
				return err
			}
			return d.Sgemm(false, false, c.f, c.p, c.k, in[1], c.k, 0, col, c.p, c.k*c.p, 0, dy, c.p, c.f*c.p, c.n)
		}, func(dd device.DNN) error {
			return dd.ConvForward(in[0], in[1], dy, c.n, c.c, c.h, c.w, c.f, c.kh, c.kw)
		})
		if err != nil {
			return err
		}
		return d.BiasAct(dy, in[2], c.n, c.f, c.p, relu)
	})
}

// key names a direction of this convolution for dispatch.
func (c convDims) key(op string) kernelKey {
	return kernelKey{op, [7]int{c.n, c.c, c.h, c.w, c.f, c.kh, c.kw}}
}

// Conv2dGradInput computes through cuDNN, or per image col_i = Wᵀ·dY_i summed back
// onto the pixels (col2im).
func (a *Accelerator) Conv2dGradInput(gx, w, gy []float32, xs, ws tensor.Shape) error {
	return a.run("Conv2dGradInput", func(d device.GPU) error {
		c := newConvDims(xs, ws)
		dgx, in, err := a.bind(gx, w, gy)
		if err != nil {
			return err
		}
		return a.dispatch(c.key("conv backward data"), func(device.DNN) error {
			col, err := a.scratchMem(scratchCol, c.n*c.k*c.p)
			if err != nil {
				return err
			}
			if err := d.Sgemm(true, false, c.k, c.p, c.f, in[0], c.k, 0, in[1], c.p, c.f*c.p, 0, col, c.p, c.k*c.p, c.n); err != nil {
				return err
			}
			return d.Col2im(col, dgx, c.n, c.c, c.h, c.w, c.kh, c.kw)
		}, func(dd device.DNN) error {
			return dd.ConvBackwardData(in[0], in[1], dgx, c.n, c.c, c.h, c.w, c.f, c.kh, c.kw)
		})
	})
}

// Conv2dGradFilter computes through cuDNN (a deterministic algorithm), or dW =
// Σ_i dY_i·col(x_i)ᵀ as n partial products summed by one more product with
// a vector of ones (a fixed order: deterministic).
func (a *Accelerator) Conv2dGradFilter(gw, x, gy []float32, xs, ws tensor.Shape) error {
	return a.run("Conv2dGradFilter", func(d device.GPU) error {
		c := newConvDims(xs, ws)
		dgw, in, err := a.bind(gw, x, gy)
		if err != nil {
			return err
		}
		return a.dispatch(c.key("conv backward filter"), func(device.DNN) error {
			col, err := a.scratchMem(scratchCol, c.n*c.k*c.p)
			if err != nil {
				return err
			}
			parts, err := a.scratchMem(scratchParts, c.n*c.f*c.k)
			if err != nil {
				return err
			}
			ones, err := a.onesOf(c.n)
			if err != nil {
				return err
			}
			if err := d.Im2col(in[0], col, c.n, c.c, c.h, c.w, c.kh, c.kw); err != nil {
				return err
			}
			fk := c.f * c.k
			if err := d.Sgemm(false, true, c.f, c.k, c.p, in[1], c.p, c.f*c.p, col, c.p, c.k*c.p, 0, parts, c.k, fk, c.n); err != nil {
				return err
			}
			return d.Sgemm(false, false, 1, fk, c.n, ones, c.n, 0, parts, fk, 0, 0, dgw, fk, 0, 1)
		}, func(dd device.DNN) error {
			return dd.ConvBackwardFilter(in[0], in[1], dgw, c.n, c.c, c.h, c.w, c.f, c.kh, c.kw)
		})
	})
}

// poolKey names a pooling direction for dispatch; odd sizes have no cuDNN
// path (cuDNN's window count and ours would differ), so they get none.
func poolKey(op string, xs tensor.Shape) (kernelKey, bool) {
	return kernelKey{op, [7]int{xs[0], xs[1], xs[2], xs[3]}}, xs[2]%2 == 0 && xs[3]%2 == 0
}

// MaxPool computes 2×2 windows, stride 2 (maxPoolOp).
func (a *Accelerator) MaxPool(y, x []float32, xs tensor.Shape) error {
	return a.run("MaxPool", func(d device.GPU) error {
		dy, in, err := a.bind(y, x)
		if err != nil {
			return err
		}
		own := func(device.DNN) error { return d.MaxPool2(in[0], dy, xs[0]*xs[1], xs[2], xs[3]) }
		key, even := poolKey("max-pool forward", xs)
		if !even {
			return own(nil)
		}
		return a.dispatch(key, own, func(dd device.DNN) error {
			return dd.MaxPool2DNN(in[0], dy, xs[0], xs[1], xs[2], xs[3])
		})
	})
}

// MaxPoolGrad routes dY to each window's first maximum (maxPoolGradOp).
func (a *Accelerator) MaxPoolGrad(gx, x, y, gy []float32, xs tensor.Shape) error {
	return a.run("MaxPoolGrad", func(d device.GPU) error {
		dgx, in, err := a.bind(gx, x, y, gy)
		if err != nil {
			return err
		}
		own := func(device.DNN) error { return d.MaxPool2Grad(in[0], in[1], in[2], dgx, xs[0]*xs[1], xs[2], xs[3]) }
		key, even := poolKey("max-pool backward", xs)
		if !even || !a.dnnPoolTiesFirst() {
			return own(nil)
		}
		return a.dispatch(key, own, func(dd device.DNN) error {
			return dd.MaxPool2GradDNN(in[0], in[1], in[2], dgx, xs[0], xs[1], xs[2], xs[3])
		})
	})
}

// dnnPoolTiesFirst says whether the backend's cuDNN pooling gradient goes
// to the first maximal input of a window with ties, as the CPU op's does
// (cuDNN does not document its rule). It is probed once, on one window of
// four equal values; where it does not hold, pooling's gradient always runs
// on our own kernel. The caller holds a.mu.
func (a *Accelerator) dnnPoolTiesFirst() bool {
	if a.poolTies != 0 {
		return a.poolTies > 0
	}
	a.poolTies = -1
	dd, ok := a.dev.(device.DNN)
	if !ok {
		return false
	}
	var ms []device.Mem
	defer func() {
		for _, m := range ms {
			a.dev.Free(m)
		}
	}()
	for _, v := range [][]float32{{1, 1, 1, 1}, {1}, {1}, {0, 0, 0, 0}} { // x, y, gy, gx
		m, err := a.dev.Alloc(len(v))
		if err != nil {
			return false
		}
		ms = append(ms, m)
		if err := a.dev.Upload(m, v); err != nil {
			return false
		}
	}
	if dd.MaxPool2GradDNN(ms[0], ms[1], ms[2], ms[3], 1, 1, 2, 2) != nil {
		return false
	}
	gx := make([]float32, 4)
	if a.dev.Download(gx, ms[3]) != nil {
		return false
	}
	if gx[0] == 1 && gx[1] == 0 && gx[2] == 0 && gx[3] == 0 {
		a.poolTies = 1
	}
	return a.poolTies > 0
}

// Dense computes y = x·W + b (n×k times k×m), then ReLU (denseOp).
func (a *Accelerator) Dense(y, x, w, b []float32, n, k, m int, relu bool) error {
	return a.run("Dense", func(d device.GPU) error {
		dy, in, err := a.bind(y, x, w, b)
		if err != nil {
			return err
		}
		if err := d.Sgemm(false, false, n, m, k, in[0], k, 0, in[1], m, 0, 0, dy, m, 0, 1); err != nil {
			return err
		}
		return d.BiasAct(dy, in[2], n, m, 1, relu)
	})
}

// DenseGradInput computes dX = dY·Wᵀ.
func (a *Accelerator) DenseGradInput(gx, w, g []float32, n, k, m int) error {
	return a.run("DenseGradInput", func(d device.GPU) error {
		dgx, in, err := a.bind(gx, w, g)
		if err != nil {
			return err
		}
		return d.Sgemm(false, true, n, k, m, in[1], m, 0, in[0], m, 0, 0, dgx, k, 0, 1)
	})
}

// DenseGradWeight computes dW = Xᵀ·dY.
func (a *Accelerator) DenseGradWeight(gw, x, g []float32, n, k, m int) error {
	return a.run("DenseGradWeight", func(d device.GPU) error {
		dgw, in, err := a.bind(gw, x, g)
		if err != nil {
			return err
		}
		return d.Sgemm(true, false, k, m, n, in[0], k, 0, in[1], m, 0, 0, dgw, m, 0, 1)
	})
}

// ReluGrad computes out = g where y > 0.
func (a *Accelerator) ReluGrad(out, y, g []float32) error {
	return a.run("ReluGrad", func(d device.GPU) error {
		dout, in, err := a.bind(out, y, g)
		if err != nil {
			return err
		}
		return d.ReluMask(dout, in[0], in[1], len(y))
	})
}

// BiasGrad sums g (n×f×inner) over n and inner as two products with
// vectors of ones: each (image, feature) row over its inner positions, then
// each feature over the images. cuBLAS spreads both over the whole GPU (a
// kernel with one block per feature used 32 of its SMs) and sums in a fixed
// order, so the result is deterministic.
func (a *Accelerator) BiasGrad(gb, g []float32, n, f, inner int) error {
	return a.run("BiasGrad", func(d device.GPU) error {
		dgb, in, err := a.bind(gb, g)
		if err != nil {
			return err
		}
		ones, err := a.onesOf(max(n, inner))
		if err != nil {
			return err
		}
		rows := in[0]
		if inner > 1 {
			if rows, err = a.scratchMem(scratchRowSums, n*f); err != nil {
				return err
			}
			if err := d.Sgemm(false, false, n*f, 1, inner, in[0], inner, 0, ones, 1, 0, 0, rows, 1, 0, 1); err != nil {
				return err
			}
		}
		return d.Sgemm(false, false, 1, f, n, ones, n, 0, rows, f, 0, 0, dgb, f, 0, 1)
	})
}

// Mul computes z = x·mask elementwise.
func (a *Accelerator) Mul(what string, z, x, mask []float32) error {
	return a.run(what, func(d device.GPU) error {
		dz, in, err := a.bind(z, x, mask)
		if err != nil {
			return err
		}
		return d.Mul(dz, in[0], in[1], len(z))
	})
}

// Add computes z = x + y.
func (a *Accelerator) Add(z, x, y []float32) error { return a.axpby("Add", z, 1, x, 1, y) }

// CopyOf computes y = x (stopGradientOp).
func (a *Accelerator) CopyOf(y, x []float32) error {
	return a.run("StopGradient", func(d device.GPU) error {
		dy, in, err := a.bind(y, x)
		if err != nil {
			return err
		}
		return d.Copy(dy, in[0], len(y))
	})
}

// L2Normalize scales each sample of x (n of m values) to norm scale.
func (a *Accelerator) L2Normalize(y, x []float32, n int, scale float64) error {
	return a.run("L2Normalize", func(d device.GPU) error {
		dy, in, err := a.bind(y, x)
		if err != nil {
			return err
		}
		return d.L2Normalize(in[0], dy, n, len(x)/n, float32(scale))
	})
}

// L2NormalizeGrad is the gradient of L2Normalize.
func (a *Accelerator) L2NormalizeGrad(gx, x, g []float32, n int, scale float64) error {
	return a.run("L2NormalizeGrad", func(d device.GPU) error {
		dgx, in, err := a.bind(gx, x, g)
		if err != nil {
			return err
		}
		return d.L2NormalizeGrad(in[0], in[1], dgx, n, len(x)/n, float32(scale))
	})
}

// Adadelta updates every parameter on the device; the weights and the
// running averages then live there (host copies are synchronized on demand).
func (a *Accelerator) Adadelta(ws, gs, accG, accU [][]float32, rho, eps, lr float32) error {
	return a.update("Adadelta", ws, gs, accG, accU, func(d device.GPU, w, g, s1, s2 device.Mem, n int) error {
		return d.Adadelta(w, g, s1, s2, n, rho, eps, lr)
	})
}

// Adam updates every parameter on the device with the root package's Adam
// (device.Adam); the weights and moments then live there.
func (a *Accelerator) Adam(ws, gs, ms, vs [][]float32, b1, b2, step, eps float32) error {
	return a.update("Adam", ws, gs, ms, vs, func(d device.GPU, w, g, s1, s2 device.Mem, n int) error {
		return d.Adam(w, g, s1, s2, n, b1, b2, step, eps)
	})
}

// update runs an optimizer's kernel on every parameter i: weights ws[i],
// gradient gs[i] and two state buffers s1[i], s2[i], uploaded where the host
// copy is newer; the weights and the state then live on the device.
func (a *Accelerator) update(name string, ws, gs, s1, s2 [][]float32, kernel func(d device.GPU, w, g, s1, s2 device.Mem, n int) error) error {
	return a.run(name, func(d device.GPU) error {
		for i := range ws {
			in, err := a.ins(ws[i], gs[i], s1[i], s2[i])
			if err != nil {
				return err
			}
			for _, h := range [][]float32{ws[i], s1[i], s2[i]} {
				if _, err := a.out(h); err != nil {
					return err
				}
			}
			if err := kernel(d, in[0], in[1], in[2], in[3], len(ws[i])); err != nil {
				return err
			}
		}
		return nil
	})
}

// Bernoulli draws the mask of rng.BernoulliKey for key into m's device copy
// (dropout: the same bits as the CPU draws).
func (a *Accelerator) Bernoulli(m []float32, key uint64, keep float64, v float32) error {
	return a.run("Bernoulli", func(d device.GPU) error {
		dm, err := a.out(m)
		if err != nil {
			return err
		}
		return d.Bernoulli(dm, len(m), key, rng.Threshold(keep), v)
	})
}

// Normals fills x with N(0, 1) draws of r's next fill: the device
// generator's (rng.PhiloxNormals for the fill's key) drawn into x's device
// copy, or, after SetHostNormals(true), the CPU's (Chunked.Normals).
func (a *Accelerator) Normals(r *rng.Chunked, x []float32) error {
	if a.hostNormals {
		r.Normals(x)
		a.MarkHost(x)
		return nil
	}
	key := r.Next()
	return a.run("Normals", func(d device.GPU) error {
		dx, err := a.out(x)
		if err != nil {
			return err
		}
		return d.Normals(dx, len(x), key)
	})
}

// SetHostNormals makes Normals draw on the CPU, the numbers a CPU run
// draws: for tests that compare a device's training step with the CPU's.
func (a *Accelerator) SetHostNormals(on bool) { a.hostNormals = on }

// Normals fills x with N(0, 1) draws of r's next fill, on the GPU when one
// is in use (Accelerator.Normals), else on the CPU (Chunked.Normals).
// Either way r advances by one fill, so a checkpoint's fill count resumes
// both.
func Normals(r *rng.Chunked, x []float32) error {
	if a := Active(); a != nil {
		return a.Normals(r, x)
	}
	r.Normals(x)
	return nil
}

// Axpby computes z = α·x + β·y.
func (a *Accelerator) Axpby(z []float32, alpha float32, x []float32, beta float32, y []float32) error {
	return a.axpby("Axpby", z, alpha, x, beta, y)
}

// axpby is Axpby under the op name what (profiles and errors).
func (a *Accelerator) axpby(what string, z []float32, alpha float32, x []float32, beta float32, y []float32) error {
	return a.run(what, func(d device.GPU) error {
		dz, in, err := a.bind(z, x, y)
		if err != nil {
			return err
		}
		return d.Axpby(dz, alpha, in[0], beta, in[1], len(z))
	})
}

// LossRows returns the loss of each of n rows of k logits (device.LossRows:
// kind, a, b), computed on the device and copied back: the forward loss
// ops' GPU path, which then sums the rows on the host in float64.
func (a *Accelerator) LossRows(kind int, x, y []float32, n, k int) ([]float32, error) {
	rows := make([]float32, n)
	err := a.run("LossRows", func(d device.GPU) error {
		in, err := a.ins(x, y)
		if err != nil {
			return err
		}
		dl, err := a.scratchMem(scratchLoss, n)
		if err != nil {
			return err
		}
		if err := d.LossRows(kind, in[0], in[1], dl, n, k); err != nil {
			return err
		}
		return d.Download(rows, dl)
	})
	return rows, err
}

// LossGrad writes c times the gradient of each row's loss with respect to
// argument wrt into grad's device copy (device.LossGrad).
func (a *Accelerator) LossGrad(kind, wrt int, grad, x, y []float32, n, k int, c float64) error {
	return a.run("LossGrad", func(d device.GPU) error {
		dg, in, err := a.bind(grad, x, y)
		if err != nil {
			return err
		}
		return d.LossGrad(kind, wrt, in[0], in[1], dg, n, k, c)
	})
}

// BatchNorm normalizes x per channel on the device (device.BatchNorm): y,
// x̂ and 1/√(σ²+ε) (invStd, c floats) are written there, and, when update
// is set, the running averages too.
func (a *Accelerator) BatchNorm(y, xhat, invStd, x, gamma, beta, runMean, runVar []float32, n, c, p int, train, update bool, eps, momentum float64) error {
	return a.run("BatchNorm", func(d device.GPU) error {
		in, err := a.ins(x, gamma, beta, runMean, runVar)
		if err != nil {
			return err
		}
		outs := [][]float32{y, xhat, invStd}
		if update {
			outs = append(outs, runMean, runVar)
		}
		dev := make([]device.Mem, len(outs))
		for i, h := range outs {
			if dev[i], err = a.out(h); err != nil {
				return err
			}
		}
		return d.BatchNorm(in[0], in[1], in[2], in[3], in[4], dev[1], dev[0], dev[2], n, c, p, train, update, eps, momentum)
	})
}

// BatchNormGrad writes one gradient of BatchNorm into out's device copy
// (device.BatchNormGrad).
func (a *Accelerator) BatchNormGrad(wrt int, out, g, xhat, gamma, invStd []float32, n, c, p int, train bool) error {
	return a.run("BatchNormGrad", func(d device.GPU) error {
		dout, in, err := a.bind(out, g, xhat, gamma, invStd)
		if err != nil {
			return err
		}
		return d.BatchNormGrad(wrt, in[0], in[1], in[2], in[3], dout, n, c, p, train)
	})
}
