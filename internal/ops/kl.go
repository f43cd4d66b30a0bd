package ops

import (
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/device"
)

// klOp is KL(softmax(a) ‖ softmax(b)) per row, reduced over the batch (see
// KLDivergence). With p = softmax(a), q = softmax(b) and KL_i the row's
// divergence, its gradients are
//
//	∂KL_i/∂b_ij = q_ij − p_ij
//	∂KL_i/∂a_ij = p_ij (log p_ij − log q_ij − KL_i)
//
// each times the reduction's factor (1/N for the mean).
type klOp struct {
	opBase
	reduce Reduction
	root   bool // only a gradient's root: the forward computes nothing (NewKLRoot)
}

// NewKL returns the op KL(softmax(a) ‖ softmax(b)), reduced by r.
func NewKL(r Reduction) *klOp { return &klOp{opBase: newOpBase("KL(" + r.String() + ")"), reduce: r} }

// NewKLRoot returns NewKL(r) for a divergence that is only differentiated,
// never read: VAT's power iteration takes the gradient of
// KL(p(y|x) ‖ p(y|x + ξd)) and discards the value. Its forward checks its
// inputs and returns NaN without computing (on a GPU, a computed value
// would be copied back and wait for the device); its gradients are
// NewKL's.
func NewKLRoot(r Reduction) *klOp {
	op := NewKL(r)
	op.root, op.name = true, "KLRoot("+r.String()+")"
	return op
}

func (op *klOp) Arity() int    { return 2 }
func (op *klOp) Type() hm.Type { return lossType(2) }
func (op *klOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return lossInferShape(op.name, 2, in)
}

func (op *klOp) Do(inputs ...G.Value) (G.Value, error) {
	ms, n, k, _, err := readMatrices(op.name, inputs, 2, false)
	if err != nil {
		return nil, err
	}
	if op.root {
		return G.NewF32(float32(math.NaN())), nil
	}
	if v, ok, err := lossOnGPU(device.LossKL, ms[0], ms[1], n, k, op.reduce.factor(n)); ok {
		return v, err
	}
	lp, lq := make([]float64, k), make([]float64, k)
	var total float64
	for i := 0; i < n; i++ {
		total += klRow(lp, lq, ms[0][i*k:(i+1)*k], ms[1][i*k:(i+1)*k])
	}
	return G.NewF32(float32(total * op.reduce.factor(n))), nil
}

// klRow fills lp and lq with the log-softmax of a and b and returns KL(p ‖ q).
func klRow(lp, lq []float64, a, b []float32) float64 {
	LogSoftmax(lp, a)
	LogSoftmax(lq, b)
	var kl float64
	for j := range lp {
		kl += math.Exp(lp[j]) * (lp[j] - lq[j])
	}
	return kl
}

func (op *klOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *klOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	grads := make(G.Nodes, 2)
	for wrt := range grads {
		gop := &klGradOp{opBase: newOpBase("KLGrad"), fwd: op, wrt: wrt}
		g, err := G.ApplyOp(gop, inputs[0], inputs[1], grad)
		if err != nil {
			return nil, err
		}
		grads[wrt] = g
	}
	return grads, nil
}

// klGradOp is the gradient of klOp with respect to its argument wrt (0: p's
// logits, 1: q's logits).
type klGradOp struct {
	opBase
	gradOnly
	fwd *klOp
	wrt int
	out buffer
}

func (op *klGradOp) Arity() int    { return 3 }
func (op *klGradOp) Type() hm.Type { return lossGradType(2) }
func (op *klGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, _ := in[0].(tensor.Shape)
	return s.Clone(), nil
}

func (op *klGradOp) Do(inputs ...G.Value) (G.Value, error) {
	ms, n, k, g, err := readMatrices(op.name, inputs, 2, true)
	if err != nil {
		return nil, err
	}
	out := op.out.get(n, k)
	o := out.Data().([]float32)
	c := float64(g) * op.fwd.reduce.factor(n)
	if v, ok, err := lossGradOnGPU(device.LossKL, op.wrt, out, ms[0], ms[1], n, k, c); ok {
		return v, err
	}
	lp, lq := make([]float64, k), make([]float64, k)
	for i := 0; i < n; i++ {
		kl := klRow(lp, lq, ms[0][i*k:(i+1)*k], ms[1][i*k:(i+1)*k])
		oi := o[i*k : (i+1)*k]
		for j := range oi {
			p := math.Exp(lp[j])
			if op.wrt == 0 {
				oi[j] = float32(c * p * (lp[j] - lq[j] - kl))
			} else {
				oi[j] = float32(c * (math.Exp(lq[j]) - p))
			}
		}
	}
	return out, nil
}
