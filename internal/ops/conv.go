package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// conv2dOp is a "valid" 2-D convolution with stride 1, plus a bias and an
// optional ReLU, on NCHW tensors:
//
//	y[n,f,i,j] = act(b[f] + Σ_c Σ_p Σ_q w[f,c,p,q] · x[n,c,i+p,j+q])
//
// with x of shape N×C×H×W, w of shape F×C×KH×KW (PyTorch's layout), b of
// length F and y of shape N×F×(H-KH+1)×(W-KW+1). It works one image at a
// time: im2col lays the image's receptive fields out as a (C·KH·KW)×(OH·OW)
// matrix, and one matrix product with w (viewed as F×(C·KH·KW)) gives the
// image's output; the im2col matrix is never stored, the product's packing
// gathers it from the image (internal/kernels/gemm_im2col.go). Images are spread over the
// CPU cores.
type conv2dOp struct {
	opBase
	relu   bool
	out    buffer
	packed kernels.PackedA
}

// NewConv2d returns the "valid" stride-1 convolution op with a bias, and a
// ReLU when relu is set (see conv2dOp).
func NewConv2d(relu bool) *conv2dOp { return &conv2dOp{opBase: newOpBase("Conv2d"), relu: relu} }

func (op *conv2dOp) Arity() int { return 3 }
func (op *conv2dOp) Type() hm.Type {
	return fnType(tensorType(4), tensorType(4), tensorType(1), tensorType(4))
}

func (op *conv2dOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return convInferShape(op.name, in)
}

// convInferShape is a convolution's output shape from its inputs' shapes
// (x, w, b).
func convInferShape(name string, in []G.DimSizer) (tensor.Shape, error) {
	if len(in) != 3 {
		return nil, checkArity(name, 3, len(in))
	}
	xs, ok1 := in[0].(tensor.Shape)
	ws, ok2 := in[1].(tensor.Shape)
	bs, ok3 := in[2].(tensor.Shape)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("vat: %s: shapes unknown", name)
	}
	return convShape(xs, ws, bs)
}

func convShape(xs, ws, bs tensor.Shape) (tensor.Shape, error) {
	if len(xs) != 4 || len(ws) != 4 || len(bs) != 1 {
		return nil, fmt.Errorf("vat: Conv2d: want x N×C×H×W, w F×C×KH×KW, b F; got %v, %v, %v", xs, ws, bs)
	}
	if xs[1] != ws[1] || ws[0] != bs[0] || xs[2] < ws[2] || xs[3] < ws[3] {
		return nil, fmt.Errorf("vat: Conv2d: shapes do not fit: x %v, w %v, b %v", xs, ws, bs)
	}
	return tensor.Shape{xs[0], ws[0], xs[2] - ws[2] + 1, xs[3] - ws[3] + 1}, nil
}

// convArgs reads a convolution's inputs (x, w, b) and its output shape.
func convArgs(name string, inputs []G.Value) (x, w, b []float32, xs, ws, ys tensor.Shape, err error) {
	if err = checkArity(name, 3, len(inputs)); err != nil {
		return
	}
	if x, xs, err = f32sNoSync(name, 0, inputs[0]); err != nil {
		return
	}
	if w, ws, err = f32sNoSync(name, 1, inputs[1]); err != nil {
		return
	}
	var bs tensor.Shape
	if b, bs, err = f32sNoSync(name, 2, inputs[2]); err != nil {
		return
	}
	ys, err = convShape(xs, ws, bs)
	return
}

func (op *conv2dOp) Do(inputs ...G.Value) (G.Value, error) {
	x, w, b, xs, ws, ys, err := convArgs(op.name, inputs)
	if err != nil {
		return nil, err
	}
	out := op.out.get(ys...)
	countFLOPs(ys[0], ws[0], ys[2]*ys[3], ws[1]*ws[2]*ws[3]) // per image: F×(C·kh·kw) by (C·kh·kw)×P
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.Conv2d(out.Data().([]float32), x, w, b, xs, ws, op.relu))
	}
	conv2dForward(&op.packed, out.Data().([]float32), x, w, b, xs, ws, op.relu)
	return out, nil
}

// conv2dForward computes the convolution into y (see conv2dOp).
// packed is scratch for the filters, packed once for all images.
func conv2dForward(packed *kernels.PackedA, y, x, w, b []float32, xs, ws tensor.Shape, relu bool) {
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	f, kh, kw := ws[0], ws[2], ws[3]
	oh, ow := h-kh+1, wd-kw+1
	k, p := c*kh*kw, oh*ow
	kernels.PackA(packed, false, f, k, w, k)
	kernels.ParallelFor(n, func(_, i int) {
		yi := y[i*f*p : (i+1)*f*p]
		kernels.ConvGemmBias(packed, p, x[i*c*h*wd:(i+1)*c*h*wd], c, h, wd, kh, kw, b, yi, p)
		if relu {
			kernels.ReLU(yi)
		}
	})
}

func (op *conv2dOp) DiffWRT(int) []bool { return []bool{true, true, true} }

// SymDiff returns the gradients with respect to x, w and b. With a ReLU, the
// incoming gradient is first masked where the output was clipped to 0.
func (op *conv2dOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if err := checkArity(op.name, 3, len(inputs)); err != nil {
		return nil, err
	}
	gm, err := reluGrad(op.relu, output, grad)
	if err != nil {
		return nil, err
	}
	gx, err := G.ApplyOp(&convGradInputOp{opBase: newOpBase("Conv2dGradInput"), xshape: inputs[0].Shape()}, inputs[1], gm)
	if err != nil {
		return nil, err
	}
	gw, err := G.ApplyOp(&convGradFilterOp{opBase: newOpBase("Conv2dGradFilter"), wshape: inputs[1].Shape()}, inputs[0], gm)
	if err != nil {
		return nil, err
	}
	gb, err := biasGrad(gm)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx, gw, gb}, nil
}

// convGradInputOp computes dL/dx from w and dL/dy (already ReLU-masked):
// per image, Wᵀ·dY gives the gradient of its im2col matrix, and col2im sums it
// back onto the pixels, a block of rows at a time (kernels.ConvInputGrad).
type convGradInputOp struct {
	opBase
	gradOnly
	xshape tensor.Shape
	out    buffer
	packed kernels.PackedA
}

func (op *convGradInputOp) Arity() int { return 2 }
func (op *convGradInputOp) Type() hm.Type {
	return fnType(tensorType(4), tensorType(4), tensorType(4))
}
func (op *convGradInputOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.xshape.Clone(), nil
}

func (op *convGradInputOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 2, len(inputs)); err != nil {
		return nil, err
	}
	w, ws, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	gy, gys, err := f32sNoSync(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	xs := op.xshape
	if want, err := convShape(xs, ws, tensor.Shape{ws[0]}); err != nil || !want.Eq(gys) {
		return nil, fmt.Errorf("vat: %s: gradient shape %v does not match x %v and w %v", op.name, gys, xs, ws)
	}
	out := op.out.get(xs...)
	gx := out.Data().([]float32)
	countFLOPs(xs[0], ws[1]*ws[2]*ws[3], gys[2]*gys[3], ws[0])
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.Conv2dGradInput(gx, w, gy, xs, ws))
	}
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	f, kh, kw := ws[0], ws[2], ws[3]
	k, p := c*kh*kw, gys[2]*gys[3]
	kernels.PackA(&op.packed, true, k, f, w, k) // Wᵀ, once for all images
	kernels.ParallelFor(n, func(_, i int) {
		kernels.ConvInputGrad(&op.packed, gy[i*f*p:(i+1)*f*p], gx[i*c*h*wd:(i+1)*c*h*wd], c, h, wd, kh, kw)
	})
	return out, nil
}

// convGradFilterOp computes dL/dw = Σ_n dY_n · col(x_n)ᵀ. Images are summed in
// fixed chunks, and the chunks in a fixed order, so the result does not
// depend on how the work was scheduled.
type convGradFilterOp struct {
	opBase
	gradOnly
	wshape tensor.Shape
	out    buffer
	parts  []float32
}

const gradChunk = 8 // images per partial sum of a weight gradient

func (op *convGradFilterOp) Arity() int { return 2 }
func (op *convGradFilterOp) Type() hm.Type {
	return fnType(tensorType(4), tensorType(4), tensorType(4))
}
func (op *convGradFilterOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.wshape.Clone(), nil
}

func (op *convGradFilterOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 2, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	gy, gys, err := f32sNoSync(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	ws := op.wshape
	if want, err := convShape(xs, ws, tensor.Shape{ws[0]}); err != nil || !want.Eq(gys) {
		return nil, fmt.Errorf("vat: %s: gradient shape %v does not match x %v and w %v", op.name, gys, xs, ws)
	}
	out := op.out.get(ws...)
	gw := out.Data().([]float32)
	countFLOPs(xs[0], ws[0], ws[1]*ws[2]*ws[3], gys[2]*gys[3])
	if a := backend.Active(); a != nil {
		return gpuOut(out, a.Conv2dGradFilter(gw, x, gy, xs, ws))
	}
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	f, kh, kw := ws[0], ws[2], ws[3]
	k, p := c*kh*kw, gys[2]*gys[3]
	chunks := (n + gradChunk - 1) / gradChunk
	if cap(op.parts) < chunks*f*k {
		op.parts = make([]float32, chunks*f*k)
	}
	parts := op.parts[:chunks*f*k]
	kernels.ParallelFor(chunks, func(_, ch int) {
		part := parts[ch*f*k : (ch+1)*f*k]
		kernels.Zero(part)
		for i := ch * gradChunk; i < n && i < (ch+1)*gradChunk; i++ {
			// dW += dY_i · col(x_i)ᵀ, the im2col matrix gathered while packing
			kernels.ConvGemm(false, true, f, k, p, gy[i*f*p:(i+1)*f*p], p, x[i*c*h*wd:(i+1)*c*h*wd], c, h, wd, kh, kw, 1, part, k)
		}
	})
	sumChunks(gw, parts, chunks)
	return out, nil
}

// sumChunks sets dst to the sum of the chunks consecutive len(dst)-long
// slices of parts, added in order.
func sumChunks(dst, parts []float32, chunks int) {
	m := len(dst)
	copy(dst, parts[:m])
	for ch := 1; ch < chunks; ch++ {
		src := parts[ch*m : (ch+1)*m]
		for j := range dst {
			dst[j] += src[j]
		}
	}
}
