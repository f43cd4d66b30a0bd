//go:build cuda

package cuda

import "github.com/org/vat/internal/device"

// Buffer is device memory as the root package's backend interface sees it.
type Buffer = device.Mem

// The root package's ops call these interfaces; a changed signature here
// must fail the build, not drop the GPU or cuDNN path at run time.
var (
	_ device.GPU = (*Backend)(nil)
	_ device.DNN = (*Backend)(nil)
)

// Backend presents a Device as the root package's backend: the same
// operations, with memory passed as Buffer.
type Backend struct{ d *Device }

// OpenBackend opens GPU number index (see Open) as a Backend.
func OpenBackend(index int) (*Backend, error) {
	d, err := Open(index)
	if err != nil {
		return nil, err
	}
	return &Backend{d}, nil
}

func mem(b Buffer) Mem { return b.(Mem) }

// Device returns the underlying device.
func (b *Backend) Device() *Device { return b.d }

// Name is Device.Name.
func (b *Backend) Name() string { return b.d.Name() }

// Close is Device.Close.
func (b *Backend) Close() error { return b.d.Close() }

// Alloc is Device.Alloc.
func (b *Backend) Alloc(n int) (Buffer, error) {
	m, err := b.d.Alloc(n)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Free is Device.Free.
func (b *Backend) Free(m Buffer) error { return b.d.Free(mem(m)) }

// Upload is Device.Upload.
func (b *Backend) Upload(dst Buffer, src []float32) error { return b.d.Upload(mem(dst), src) }

// Download is Device.Download.
func (b *Backend) Download(dst []float32, src Buffer) error { return b.d.Download(dst, mem(src)) }

// Copy is Device.Copy.
func (b *Backend) Copy(dst, src Buffer, n int) error { return b.d.Copy(mem(dst), mem(src), n) }

// Sync is Device.Sync.
func (b *Backend) Sync() error { return b.d.Sync() }

// Sgemm is Device.SgemmStridedBatched.
func (b *Backend) Sgemm(transA, transB bool, m, n, k int, a Buffer, lda, strideA int, bm Buffer, ldb, strideB int,
	beta float32, c Buffer, ldc, strideC, batch int) error {
	return b.d.SgemmStridedBatched(transA, transB, m, n, k, mem(a), lda, strideA, mem(bm), ldb, strideB,
		beta, mem(c), ldc, strideC, batch)
}

// Im2col is Device.Im2col.
func (b *Backend) Im2col(x, col Buffer, n, c, h, w, kh, kw int) error {
	return b.d.Im2col(mem(x), mem(col), n, c, h, w, kh, kw)
}

// Col2im is Device.Col2im.
func (b *Backend) Col2im(col, x Buffer, n, c, h, w, kh, kw int) error {
	return b.d.Col2im(mem(col), mem(x), n, c, h, w, kh, kw)
}

// BiasAct is Device.BiasAct.
func (b *Backend) BiasAct(y, bias Buffer, n, f, p int, relu bool) error {
	return b.d.BiasAct(mem(y), mem(bias), n, f, p, relu)
}

// ReluMask is Device.ReluMask.
func (b *Backend) ReluMask(out, y, g Buffer, n int) error {
	return b.d.ReluMask(mem(out), mem(y), mem(g), n)
}

// MaxPool2 is Device.MaxPool2.
func (b *Backend) MaxPool2(x, y Buffer, nc, h, w int) error {
	return b.d.MaxPool2(mem(x), mem(y), nc, h, w)
}

// MaxPool2Grad is Device.MaxPool2Grad.
func (b *Backend) MaxPool2Grad(x, y, gy, gx Buffer, nc, h, w int) error {
	return b.d.MaxPool2Grad(mem(x), mem(y), mem(gy), mem(gx), nc, h, w)
}

// Axpby is Device.Axpby.
func (b *Backend) Axpby(z Buffer, alpha float32, x Buffer, beta float32, y Buffer, n int) error {
	return b.d.Axpby(mem(z), alpha, mem(x), beta, mem(y), n)
}

// Mul is Device.Mul.
func (b *Backend) Mul(z, x, y Buffer, n int) error { return b.d.Mul(mem(z), mem(x), mem(y), n) }

// Adadelta is Device.Adadelta.
func (b *Backend) Adadelta(w, g, accGrad, accUpdate Buffer, n int, rho, eps, lr float32) error {
	return b.d.Adadelta(mem(w), mem(g), mem(accGrad), mem(accUpdate), n, rho, eps, lr)
}

// Bernoulli is Device.Bernoulli.
func (b *Backend) Bernoulli(m Buffer, n int, key, t uint64, v float32) error {
	return b.d.Bernoulli(mem(m), n, key, t, v)
}

// Normals is Device.Normals.
func (b *Backend) Normals(x Buffer, n int, key uint64) error { return b.d.Normals(mem(x), n, key) }

// BatchNorm is Device.BatchNorm.
func (b *Backend) BatchNorm(x, gamma, beta, runMean, runVar, xhat, y, invStd Buffer, n, c, p int, train, update bool, eps, momentum float64) error {
	return b.d.BatchNorm(mem(x), mem(gamma), mem(beta), mem(runMean), mem(runVar), mem(xhat), mem(y), mem(invStd), n, c, p, train, update, eps, momentum)
}

// BatchNormGrad is Device.BatchNormGrad.
func (b *Backend) BatchNormGrad(wrt int, g, xhat, gamma, invStd, out Buffer, n, c, p int, train bool) error {
	return b.d.BatchNormGrad(wrt, mem(g), mem(xhat), mem(gamma), mem(invStd), mem(out), n, c, p, train)
}

// LossRows is Device.LossRows.
func (b *Backend) LossRows(kind int, x, y, loss Buffer, n, k int) error {
	return b.d.LossRows(kind, mem(x), mem(y), mem(loss), n, k)
}

// LossGrad is Device.LossGrad.
func (b *Backend) LossGrad(kind, wrt int, x, y, grad Buffer, n, k int, c float64) error {
	return b.d.LossGrad(kind, wrt, mem(x), mem(y), mem(grad), n, k, c)
}

// Adam is Device.Adam.
func (b *Backend) Adam(w, g, m, v Buffer, n int, b1, b2, step, eps float32) error {
	return b.d.Adam(mem(w), mem(g), mem(m), mem(v), n, b1, b2, step, eps)
}

// L2Normalize is Device.L2Normalize.
func (b *Backend) L2Normalize(x, y Buffer, n, m int, scale float32) error {
	return b.d.L2Normalize(mem(x), mem(y), n, m, scale)
}

// L2NormalizeGrad is Device.L2NormalizeGrad.
func (b *Backend) L2NormalizeGrad(x, g, gx Buffer, n, m int, scale float32) error {
	return b.d.L2NormalizeGrad(mem(x), mem(g), mem(gx), n, m, scale)
}

// ConvForward is Device.ConvForward.
func (b *Backend) ConvForward(x, w, y Buffer, n, c, h, wd, f, kh, kw int) error {
	return b.d.ConvForward(mem(x), mem(w), mem(y), ConvShape{n, c, h, wd, f, kh, kw})
}

// ConvBackwardData is Device.ConvBackwardData.
func (b *Backend) ConvBackwardData(w, gy, gx Buffer, n, c, h, wd, f, kh, kw int) error {
	return b.d.ConvBackwardData(mem(w), mem(gy), mem(gx), ConvShape{n, c, h, wd, f, kh, kw})
}

// ConvBackwardFilter is Device.ConvBackwardFilter.
func (b *Backend) ConvBackwardFilter(x, gy, gw Buffer, n, c, h, wd, f, kh, kw int) error {
	return b.d.ConvBackwardFilter(mem(x), mem(gy), mem(gw), ConvShape{n, c, h, wd, f, kh, kw})
}

// MaxPool2DNN is Device.DNNMaxPool2.
func (b *Backend) MaxPool2DNN(x, y Buffer, n, c, h, w int) error {
	return b.d.DNNMaxPool2(mem(x), mem(y), n, c, h, w)
}

// MaxPool2GradDNN is Device.DNNMaxPool2Grad.
func (b *Backend) MaxPool2GradDNN(x, y, gy, gx Buffer, n, c, h, w int) error {
	return b.d.DNNMaxPool2Grad(mem(x), mem(y), mem(gy), mem(gx), n, c, h, w)
}
