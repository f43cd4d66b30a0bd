package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// conv2dPoolOp is conv2dOp (with its optional ReLU) followed by 2×2
// max-pooling with stride 2, for inference graphs:
//
//	y[n,f,i,j] = max over the window (2i..2i+1, 2j..2j+1) of conv2dOp's output
//
// Per image, the convolution's output goes to a per-worker buffer, which
// is still in cache when it is pooled, instead of passing the whole
// batch's output through memory between two ops. The values are those of
// the two ops in sequence (the max is exact). It has no gradient, and runs
// on the CPU only: graphs that use a GPU keep the two ops.
type conv2dPoolOp struct {
	opBase
	gradOnly
	relu    bool
	out     buffer
	packed  kernels.PackedA
	scratch [][]float32 // per worker: one image's convolution output
}

// NewConv2dPool returns the fused convolution and max-pooling op of
// inference graphs (see conv2dPoolOp).
func NewConv2dPool(relu bool) G.Op {
	return &conv2dPoolOp{opBase: newOpBase("Conv2dMaxPool2x2"), relu: relu}
}

func (op *conv2dPoolOp) Arity() int { return 3 }
func (op *conv2dPoolOp) Type() hm.Type {
	return fnType(tensorType(4), tensorType(4), tensorType(1), tensorType(4))
}

func (op *conv2dPoolOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	cs, err := convInferShape(op.name, in)
	if err != nil {
		return nil, err
	}
	return poolShape(cs)
}

func (op *conv2dPoolOp) Do(inputs ...G.Value) (G.Value, error) {
	if backend.Active() != nil {
		return nil, fmt.Errorf("vat: %s runs on the CPU only; GPU graphs use Conv2d and MaxPool2x2", op.name)
	}
	x, w, b, xs, ws, cs, err := convArgs(op.name, inputs)
	if err != nil {
		return nil, err
	}
	ys, err := poolShape(cs)
	if err != nil {
		return nil, err
	}
	out := op.out.get(ys...)
	y := out.Data().([]float32)
	countFLOPs(cs[0], ws[0], cs[2]*cs[3], ws[1]*ws[2]*ws[3])
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	f, kh, kw := ws[0], ws[2], ws[3]
	ch, cw, oh, ow := cs[2], cs[3], ys[2], ys[3]
	k, p := c*kh*kw, ch*cw
	kernels.PackA(&op.packed, false, f, k, w, k)
	if nw := kernels.Workers(); len(op.scratch) < nw {
		op.scratch = make([][]float32, nw)
	}
	kernels.ParallelFor(n, func(wk, i int) {
		if len(op.scratch[wk]) < f*p {
			op.scratch[wk] = make([]float32, f*p)
		}
		ci := op.scratch[wk][:f*p]
		kernels.ConvGemmBias(&op.packed, p, x[i*c*h*wd:(i+1)*c*h*wd], c, h, wd, kh, kw, b, ci, p)
		if op.relu {
			kernels.ReLU(ci)
		}
		yi := y[i*f*oh*ow : (i+1)*f*oh*ow]
		for ff := 0; ff < f; ff++ {
			kernels.MaxPool2Plane(yi[ff*oh*ow:], ci[ff*p:], cw, oh, ow)
		}
	})
	return out, nil
}
