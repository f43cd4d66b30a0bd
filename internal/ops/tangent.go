package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/kernels"
)

// The ops in this file compute VAT's exact power iteration (the root
// package's Exact probe): the network's tangent map J·d at a clean pass,
// and the quadratic form of the softmax's Fisher matrix. Near a point x,
// a network of ReLU, max-pool, convolution, dense and batch-normalization
// layers is linear on each region where the ReLU masks and the max-pool
// choices stay as at x, up to batch normalization's statistics, whose
// first-order motion NewBatchNormTangent includes (x and J·r then stand
// for the whole batch), so
//
//	logits(x + r) − logits(x) = J·r,   KL(p ‖ softmax(logits + J·r)) = ½ rᵀJᵀFJr + O(‖r‖³),
//	F = diag(p) − p·pᵀ,
//
// and the gradient of ½ (J·u)ᵀ F (J·u) with respect to u is H·u exactly, with
// H = JᵀFJ the KL's Hessian: no ξ, no difference of nearly equal numbers.
// The tangent ops take the clean pass's values as a second input: the ReLU
// output for the mask, the max-pool's input for its choices. They are
// linear in their first input, and their gradient ops apply the transposed
// map. They run on the CPU (in a cuda build, on the host copies).

// NewMask returns the op t·[ref > 0] elementwise: a ReLU's tangent, ref
// being the ReLU's output at the clean pass (a positive NaN in ref counts
// as positive, as in the ReLU's gradient). Its gradient with respect to t
// is the same masking of the incoming gradient.
func NewMask() G.Op { return &maskOp{opBase: newOpBase("Mask")} }

type maskOp struct {
	opBase
	out buffer
}

func (op *maskOp) Arity() int { return 2 }
func (op *maskOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return fnType(a, a, a)
}
func (op *maskOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	r, ok2 := in[1].(tensor.Shape)
	if !ok || !ok2 || !s.Eq(r) {
		return nil, fmt.Errorf("vat: Mask: shapes %v and %v differ", in[0], in[1])
	}
	return s.Clone(), nil
}

func (op *maskOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 2, len(inputs)); err != nil {
		return nil, err
	}
	t, ts, err := f32s(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	ref, _, err := f32s(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	if len(ref) != len(t) {
		return nil, fmt.Errorf("vat: Mask: %d values and a mask of %d", len(t), len(ref))
	}
	out := op.out.get(ts...)
	y := out.Data().([]float32)
	kernels.ParallelChunks(len(y), func(lo, hi int) { kernels.ReLUMask(y[lo:hi], ref[lo:hi], t[lo:hi]) })
	return out, nil
}

func (op *maskOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *maskOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := reluGrad(true, inputs[1], grad) // g·[ref > 0]
	return G.Nodes{g, nil}, err
}

// NewPoolSelect returns max-pooling's tangent: from t (N×C×H×W) it takes,
// in every 2×2 window, the element where ref (the max-pool's input at the
// clean pass) has its maximum (the first one in row-major order on ties,
// as the max-pool's gradient does). Its inputs are t, ref and refOut, the
// max-pool's output at the clean pass, which the gradient needs.
func NewPoolSelect() G.Op { return &poolSelectOp{opBase: newOpBase("PoolSelect")} }

type poolSelectOp struct {
	opBase
	out buffer
}

func (op *poolSelectOp) Arity() int { return 3 }
func (op *poolSelectOp) Type() hm.Type {
	t := tensorType(4)
	return fnType(t, t, t, t)
}
func (op *poolSelectOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: PoolSelect: shape unknown")
	}
	return poolShape(s)
}

func (op *poolSelectOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 3, len(inputs)); err != nil {
		return nil, err
	}
	t, ts, err := f32s(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	x, xs, err := f32s(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	ys, err := poolShape(ts)
	if err != nil || !ts.Eq(xs) {
		return nil, fmt.Errorf("vat: PoolSelect: shapes %v and %v do not fit", ts, xs)
	}
	out := op.out.get(ys...)
	y := out.Data().([]float32)
	h, w, oh, ow := ts[2], ts[3], ys[2], ys[3]
	kernels.ParallelFor(ts[0]*ts[1], func(_, p int) {
		xp, tp, yp := x[p*h*w:], t[p*h*w:], y[p*oh*ow:]
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				k := 2*i*w + 2*j
				best := k
				for _, c := range [3]int{k + 1, k + w, k + w + 1} {
					if xp[c] > xp[best] {
						best = c
					}
				}
				yp[i*ow+j] = tp[best]
			}
		}
	})
	return out, nil
}

func (op *poolSelectOp) DiffWRT(int) []bool { return []bool{true, false, false} }

// SymDiff routes each gradient back to the chosen element: the max-pool's
// own gradient at the clean pass.
func (op *poolSelectOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&maxPoolGradOp{opBase: newOpBase("MaxPool2x2Grad")}, inputs[1], inputs[2], grad)
	return G.Nodes{g, nil, nil}, err
}

// NewBatchNormTangent returns batch normalization's tangent at the last
// run of the batch-normalization op fwd (made by NewBatchNorm). In
// inference mode the statistics are constants and the tangent is
// t·γ/√(σ²+ε) per channel. In training mode the batch's mean and variance
// move with the perturbation too, and per channel, with x̂ the normalized
// input of fwd's run and means over the channel's M entries in the batch,
//
//	t ↦ γ/√(σ²_B+ε) · (t − mean(t) − x̂·mean(x̂·t))
//
// (the derivative of x̂ = (x − μ_B)/√(σ²_B+ε), as in batch normalization's
// gradient). That map is symmetric, so its gradient op is the same map.
// With it the probe is the exact power iteration on the batch's KL, which
// the finite-difference probe approximates (checked against float64
// central differences of the whole batch, TestExactProbeMatchesFloat64).
// Its inputs are t, γ and fwd's output: that input is not read, but makes
// the graph run fwd first.
func NewBatchNormTangent(fwd G.Op) (G.Op, error) {
	bn, ok := fwd.(*batchNormOp)
	if !ok {
		return nil, fmt.Errorf("vat: BatchNormTangent: %v is not a batch normalization", fwd)
	}
	return &bnTangentOp{opBase: newOpBase("BatchNormTangent"), fwd: bn}, nil
}

type bnTangentOp struct {
	opBase
	fwd  *batchNormOp
	grad bool // the gradient op: the same scaling, not differentiable again
	out  buffer
}

func (op *bnTangentOp) Arity() int { return 3 }
func (op *bnTangentOp) Type() hm.Type {
	x := tensorType(op.fwd.rank)
	return fnType(x, tensorType(1), x, x)
}
func (op *bnTangentOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != op.fwd.rank {
		return nil, fmt.Errorf("vat: BatchNormTangent: input %v, want rank %d", in[0], op.fwd.rank)
	}
	return s.Clone(), nil
}

func (op *bnTangentOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 3, len(inputs)); err != nil {
		return nil, err
	}
	t, ts, err := f32s(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	gamma, _, err := f32s(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	n, c, p := bnLayout(ts)
	xh, invStd, err := op.fwd.hostStats()
	if err != nil {
		return nil, err
	}
	if len(gamma) != c || len(invStd) != c {
		return nil, fmt.Errorf("vat: BatchNormTangent: %d channels, γ %d, statistics %d (has the batch normalization run?)", c, len(gamma), len(invStd))
	}
	out := op.out.get(ts...)
	y := out.Data().([]float32)
	if op.fwd.train && len(xh) != len(t) {
		return nil, fmt.Errorf("vat: BatchNormTangent: input of %d values, the batch normalization's last run had %d", len(t), len(xh))
	}
	m := float64(n * p)
	kernels.BNBlocks(c, func(lo, hi int) {
		var scale, mt, mxt [kernels.BNBlock]float64 // mean(t), mean(x̂·t): zero in inference mode
		for ch := lo; ch < hi; ch++ {
			scale[ch-lo] = float64(gamma[ch]) * invStd[ch]
		}
		if !op.fwd.train {
			kernels.BNCenter(y, t, nil, scale[:], 1, nil, nil, n, c, p, lo, hi)
			return
		}
		kernels.BNSumDot(mt[:], mxt[:], t, xh, n, c, p, lo, hi)
		for k := range hi - lo {
			mt[k], mxt[k] = mt[k]/m, mxt[k]/m
		}
		kernels.BNCenter(y, t, xh, scale[:], 1, mt[:], mxt[:], n, c, p, lo, hi)
	})
	return out, nil
}

func (op *bnTangentOp) DiffWRT(int) []bool {
	if op.grad {
		return []bool{false, false, false}
	}
	return []bool{true, false, false}
}

func (op *bnTangentOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if op.grad {
		return nil, fmt.Errorf("vat: %s is not differentiable", op.name)
	}
	g, err := G.ApplyOp(&bnTangentOp{opBase: newOpBase("BatchNormTangentGrad"), fwd: op.fwd, grad: true}, grad, inputs[1], inputs[2])
	return G.Nodes{g, nil, nil}, err
}

// NewFisherQuadratic returns the op ½ Σ_i a_iᵀ F_i a_i over the rows of a
// (N×K), with F_i = diag(p_i) − p_i p_iᵀ and p_i = softmax of the i-th row
// of logits (a constant: no gradient flows to it):
//
//	½ Σ_i ( Σ_k p_ik a_ik² − (Σ_k p_ik a_ik)² ),
//
// the second-order term of KL(p ‖ softmax(logits + a)). Its gradient with
// respect to a is F_i a_i per row.
func NewFisherQuadratic() G.Op { return &fisherOp{opBase: newOpBase("FisherQuadratic")} }

type fisherOp struct {
	opBase
	scaled bool // NewFisherDirection
	batch  bool // NewFisherDirectionBatch: one scale for the whole batch
}

func (op *fisherOp) Arity() int    { return 2 }
func (op *fisherOp) Type() hm.Type { return lossType(2) }
func (op *fisherOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return lossInferShape(op.name, 2, in)
}

// softmaxRow writes softmax(z) into p (float64).
func softmaxRow(p []float64, z []float32) {
	LogSoftmax(p, z)
	for k, l := range p {
		p[k] = math.Exp(l)
	}
}

func (op *fisherOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 2, len(inputs)); err != nil {
		return nil, err
	}
	z, zs, err := f32s(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	a, as, err := f32s(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	if !zs.Eq(as) || len(zs) != 2 {
		return nil, fmt.Errorf("vat: %s: shapes %v and %v, want equal N×K", op.name, zs, as)
	}
	n, k := zs[0], zs[1]
	p, _, div := fisherRows(z, a, n, k, op.scaled, op.batch)
	var q float64
	for i := 0; i < n; i++ {
		var s1, s2 float64
		for j, pj := range p[i*k : (i+1)*k] {
			v := float64(a[i*k+j])
			s1 += pj * v * v
			s2 += pj * v
		}
		q += 0.5 * (s1 - s2*s2) / div[i]
	}
	return G.NewF32(float32(q)), nil
}

// fisherRows returns, for the N×K logits z and directions a, every row's
// softmax p_i and F_i a_i (N×K each), and the divisor of each row's scale:
// 1 unless scaled; max_k |(F_i a_i)_k| per row when scaled; the largest of
// those over the batch when batch is set too (a zero maximum divides by 1).
func fisherRows(z, a []float32, n, k int, scaled, batch bool) (p, v, div []float64) {
	p, v, div = make([]float64, n*k), make([]float64, n*k), make([]float64, n)
	top := 0.0
	for i := 0; i < n; i++ {
		softmaxRow(p[i*k:(i+1)*k], z[i*k:(i+1)*k])
		div[i] = fisherRow(v[i*k:(i+1)*k], p[i*k:(i+1)*k], a[i*k:(i+1)*k])
		top = math.Max(top, div[i])
	}
	for i := range div {
		switch {
		case batch:
			div[i] = orOne(top)
		case scaled:
			div[i] = orOne(div[i])
		default:
			div[i] = 1
		}
	}
	return p, v, div
}

// fisherRow sets v = F·a = p ⊙ a − p (pᵀa) for one row and returns
// max_k |v_k| (0 when v is zero).
func fisherRow(v, p []float64, a []float32) float64 {
	var pa float64
	for j, pj := range p {
		pa += pj * float64(a[j])
	}
	top := 0.0
	for j, pj := range p {
		v[j] = pj * (float64(a[j]) - pa)
		top = math.Max(top, math.Abs(v[j]))
	}
	return top
}

// orOne returns t, or 1 when t is 0: a scale to divide by.
func orOne(t float64) float64 {
	if t == 0 {
		return 1
	}
	return t
}

func (op *fisherOp) DiffWRT(int) []bool { return []bool{false, true} }

func (op *fisherOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&fisherVecOp{opBase: newOpBase("FisherVec"), scaled: op.scaled, batch: op.batch}, inputs[0], inputs[1], grad)
	return G.Nodes{nil, g}, err
}

// NewFisherDirection is NewFisherQuadratic for the power iteration, which
// needs only the direction of F_i a_i: its gradient is F_i a_i scaled per
// row by 1/max_k |(F_i a_i)_k| (computed in float64), so that a confident
// prediction, whose F_i has entries far below float32's range, still
// gives a direction instead of underflowing to zero. Its value is the
// quadratic form with the same scaling.
func NewFisherDirection() G.Op {
	return &fisherOp{opBase: newOpBase("FisherDirection"), scaled: true}
}

// NewFisherDirectionBatch is NewFisherDirection with one scale for the
// whole batch, 1/max over all rows of |(F_i a_i)_k|: for a network whose
// samples interact (batch normalization with the batch's statistics), where
// each sample's direction gathers terms from the others' F_j a_j and a
// scale per row would reweight them.
func NewFisherDirectionBatch() G.Op {
	return &fisherOp{opBase: newOpBase("FisherDirectionBatch"), scaled: true, batch: true}
}

// fisherVecOp computes g·F_i a_i = g·(p_i ⊙ a_i − p_i (p_iᵀ a_i)) per row
// (scaled to a largest magnitude of g when scaled is set).
type fisherVecOp struct {
	opBase
	gradOnly
	scaled, batch bool
	out           buffer
}

func (op *fisherVecOp) Arity() int    { return 3 }
func (op *fisherVecOp) Type() hm.Type { return lossGradType(2) }
func (op *fisherVecOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[1].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("vat: FisherVec: shape unknown")
	}
	return s.Clone(), nil
}

func (op *fisherVecOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := checkArity(op.name, 3, len(inputs)); err != nil {
		return nil, err
	}
	z, zs, err := f32s(op.name, 0, inputs[0])
	if err != nil {
		return nil, err
	}
	a, _, err := f32s(op.name, 1, inputs[1])
	if err != nil {
		return nil, err
	}
	g, err := Scalar32(op.name, 2, inputs[2])
	if err != nil {
		return nil, err
	}
	n, k := zs[0], zs[1]
	out := op.out.get(n, k)
	y := out.Data().([]float32)
	_, v, div := fisherRows(z, a, n, k, op.scaled, op.batch)
	for i := 0; i < n; i++ {
		scale := float64(g) / div[i]
		for j := i * k; j < (i+1)*k; j++ {
			y[j] = float32(scale * v[j])
		}
	}
	return out, nil
}
