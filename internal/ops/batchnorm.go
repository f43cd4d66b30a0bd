package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
	"github.com/org/vat/internal/kernels"
)

// batchNormOp is batch normalization (Ioffe & Szegedy, 2015) of x (N×C×H×W
// per channel, or N×F per feature), with scale γ and shift β:
//
//	training:  y = γ·(x − μ_B)/√(σ²_B + ε) + β   (μ_B, σ²_B over the batch and H×W)
//	inference: y = γ·(x − μ)/√(σ² + ε) + β       (running averages)
//
// In training it updates the running averages, μ ← m·μ + (1−m)·μ_B and
// σ² ← m·σ² + (1−m)·σ²_B·M/(M−1) (M values per channel), only when update is
// set: VAT's probe and adversarial passes normalize with their own batch
// statistics but leave the averages alone (the official code's
// update_batch_stats=False). Its gradient (training mode) is
//
//	∂/∂β = Σ g,  ∂/∂γ = Σ g·x̂,  ∂/∂x = γ/(M·√(σ²_B+ε))·(M·g − Σ g − x̂·Σ g·x̂)
//
// and in inference mode, where the statistics are constants,
// ∂/∂x = γ·g/√(σ²+ε) with the same ∂/∂β and ∂/∂γ.
//
// with x̂ the normalized input and the sums per channel. With a GPU it runs
// there (one block per channel), x̂ and 1/√(σ²+ε) staying on the device.
type batchNormOp struct {
	opBase
	rank            int // of x: 2 or 4
	train, update   bool
	eps, momentum   float64
	runMean, runVar []float32 // the layer's running averages, shared by its ops
	xhat            []float32 // x̂ of the last run, for the gradient
	invStd          []float64 // 1/√(σ²+ε) per channel of the last run (CPU)
	invStd32        []float32 // the same, from the last run on a GPU
	onGPU           bool      // the last run was on a GPU: xhat and invStd32 live there
	out             buffer
}

// hostStats returns x̂ and 1/√(σ²+ε) of the last run as host data, copied
// back after a run on the GPU (the exact probe's tangent op runs on the
// host).
func (op *batchNormOp) hostStats() ([]float32, []float64, error) {
	if op.onGPU {
		if err := backend.SyncToHost(op.xhat, op.invStd32); err != nil {
			return nil, nil, err
		}
		for i, v := range op.invStd32 {
			op.invStd[i] = float64(v)
		}
	}
	return op.xhat, op.invStd, nil
}

// NewBatchNorm returns a batch-normalization op over x (of rank 2 or 4), γ,
// β (see batchNormOp); runMean and runVar are the layer's running averages.
func NewBatchNorm(rank int, train, update bool, eps, momentum float64, runMean, runVar []float32) G.Op {
	name := "BatchNorm(inference)"
	if train {
		name = fmt.Sprintf("BatchNorm(train, update %v)", update)
	}
	return &batchNormOp{opBase: newOpBase(name), rank: rank, train: train, update: update, eps: eps, momentum: momentum,
		runMean: runMean, runVar: runVar}
}

func (op *batchNormOp) Arity() int { return 3 }
func (op *batchNormOp) Type() hm.Type {
	return fnType(tensorType(op.rank), tensorType(1), tensorType(1), tensorType(op.rank))
}
func (op *batchNormOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != op.rank || (len(s) != 2 && len(s) != 4) {
		return nil, fmt.Errorf("vat: BatchNorm: input %v, want N×F or N×C×H×W", in[0])
	}
	return s.Clone(), nil
}

// layout returns the batch size n, channels c and positions p per channel
// of a sample (1 for N×F).
func bnLayout(s tensor.Shape) (n, c, p int) {
	if len(s) == 4 {
		return s[0], s[1], s[2] * s[3]
	}
	return s[0], s[1], 1
}

func (op *batchNormOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 3, len(inputs)); err != nil {
		return nil, err
	}
	x, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	gamma, _, err := f32sNoSync(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	beta, _, err := f32sNoSync(op.name, 2, inputs[2])
	if err != nil {
		return nil, err
	}
	n, c, p := bnLayout(xs)
	if len(gamma) != c || len(beta) != c || len(op.runMean) != c || len(op.runVar) != c {
		return nil, fmt.Errorf("vat: BatchNorm: %d channels, γ %d, β %d", c, len(gamma), len(beta))
	}
	out := op.out.get(xs...)
	y := out.Data().([]float32)
	if len(op.xhat) != len(x) || len(op.invStd) != c {
		op.xhat, op.invStd, op.invStd32 = make([]float32, len(x)), make([]float64, c), make([]float32, c)
	}
	if a := backend.Active(); a != nil {
		op.onGPU = true
		return gpuOut(out, a.BatchNorm(y, op.xhat, op.invStd32, x, gamma, beta, op.runMean, op.runVar, n, c, p,
			op.train, op.train && op.update, op.eps, op.momentum))
	}
	op.onGPU = false
	m := float64(n * p)
	kernels.BNBlocks(c, func(lo, hi int) {
		var mean, variance, s, s2 [kernels.BNBlock]float64
		for ch := lo; ch < hi; ch++ {
			mean[ch-lo], variance[ch-lo] = float64(op.runMean[ch]), float64(op.runVar[ch])
		}
		if op.train {
			kernels.BNSum(s[:], x, n, c, p, lo, hi)
			for k := range hi - lo {
				mean[k] = s[k] / m
			}
			kernels.BNSumSqDev(s2[:], mean[:], x, n, c, p, lo, hi)
			for ch := lo; ch < hi; ch++ {
				k := ch - lo
				variance[k] = s2[k] / m
				if op.update {
					unbiased := variance[k]
					if m > 1 {
						unbiased = s2[k] / (m - 1)
					}
					op.runMean[ch] = float32(op.momentum*float64(op.runMean[ch]) + (1-op.momentum)*mean[k])
					op.runVar[ch] = float32(op.momentum*float64(op.runVar[ch]) + (1-op.momentum)*unbiased)
				}
			}
		}
		for ch := lo; ch < hi; ch++ {
			op.invStd[ch] = 1 / math.Sqrt(variance[ch-lo]+op.eps)
		}
		kernels.BNNormalize(y, op.xhat, x, mean[:], op.invStd, gamma, beta, n, c, p, lo, hi)
	})
	return out, nil
}

func (op *batchNormOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *batchNormOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	grads := make(G.Nodes, 3)
	for wrt := range grads {
		g, err := G.ApplyOp(&batchNormGradOp{opBase: newOpBase("BatchNormGrad"), fwd: op, wrt: wrt}, inputs[0], inputs[1], grad)
		if err != nil {
			return nil, err
		}
		grads[wrt] = g
	}
	return grads, nil
}

// batchNormGradOp is one gradient of batchNormOp in training mode: wrt 0
// (x), 1 (γ) or 2 (β). It reads x̂ and 1/√(σ²+ε) from the forward op's last
// run.
type batchNormGradOp struct {
	opBase
	gradOnly
	fwd *batchNormOp
	wrt int
	out buffer
}

func (op *batchNormGradOp) Arity() int { return 3 }
func (op *batchNormGradOp) Type() hm.Type {
	x := tensorType(op.fwd.rank)
	if op.wrt == 0 {
		return fnType(x, tensorType(1), x, x)
	}
	return fnType(x, tensorType(1), x, tensorType(1))
}
func (op *batchNormGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	k := 0 // x's shape, or γ's for γ and β
	if op.wrt > 0 {
		k = 1
	}
	s, ok := in[k].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: BatchNormGrad: shape unknown")
	}
	return s.Clone(), nil
}

func (op *batchNormGradOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 3, len(inputs)); err != nil {
		return nil, err
	}
	_, xs, err := f32sNoSync(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	gamma, gs, err := f32sNoSync(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	g, _, err := f32sNoSync(op.name, 2, inputs[2])
	if err != nil {
		return nil, err
	}
	n, c, p := bnLayout(xs)
	xh := op.fwd.xhat
	if len(xh) != len(g) {
		return nil, fmt.Errorf("vat: BatchNormGrad: the forward op has not run on this input")
	}
	if a := backend.Active(); a != nil {
		if !op.fwd.onGPU {
			return nil, fmt.Errorf("vat: BatchNormGrad: the forward op ran on the CPU, its gradient would run on the GPU")
		}
		shape := xs
		if op.wrt > 0 {
			shape = gs
		}
		out := op.out.get(shape...)
		return gpuOut(out, a.BatchNormGrad(op.wrt, out.Data().([]float32), g, xh, gamma, op.fwd.invStd32, n, c, p, op.fwd.train))
	}
	if op.fwd.onGPU {
		return nil, fmt.Errorf("vat: BatchNormGrad: the forward op ran on the GPU, its gradient would run on the CPU")
	}
	// Per channel: Σ g and Σ g·x̂, only those the wanted gradient needs.
	var sumG, sumGX []float64
	if op.wrt != 1 {
		sumG = make([]float64, c)
	}
	if op.wrt != 2 {
		sumGX = make([]float64, c)
	}
	if op.wrt > 0 || op.fwd.train {
		kernels.BNBlocks(c, func(lo, hi int) {
			var sg, sgx []float64
			if sumG != nil {
				sg = sumG[lo:hi]
			}
			if sumGX != nil {
				sgx = sumGX[lo:hi]
			}
			kernels.BNSumDot(sg, sgx, g, xh, n, c, p, lo, hi)
		})
	}
	if op.wrt > 0 {
		out := op.out.get(gs...)
		o := out.Data().([]float32)
		for ch := range o {
			if op.wrt == 1 {
				o[ch] = float32(sumGX[ch])
			} else {
				o[ch] = float32(sumG[ch])
			}
		}
		return out, nil
	}
	out := op.out.get(xs...)
	o := out.Data().([]float32)
	m := float64(n * p)
	kernels.BNBlocks(c, func(lo, hi int) {
		var scale [kernels.BNBlock]float64
		for ch := lo; ch < hi; ch++ {
			scale[ch-lo] = float64(gamma[ch]) * op.fwd.invStd[ch]
		}
		if !op.fwd.train { // fixed statistics: ∂x = g·γ/√(σ²+ε)
			kernels.BNCenter(o, g, nil, scale[:], 1, nil, nil, n, c, p, lo, hi)
			return
		}
		for k := range hi - lo {
			scale[k] /= m
		}
		kernels.BNCenter(o, g, xh, scale[:], m, sumG[lo:hi], sumGX[lo:hi], n, c, p, lo, hi)
	})
	return out, nil
}
