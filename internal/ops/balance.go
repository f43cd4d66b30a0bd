package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
)

// balanceOp is the class-balance loss KL(p̄ ‖ π) of a batch of logits z
// (N×K): p̄ = 1/N Σ_i softmax(z_i) is the batch's mean prediction and π a
// fixed prior over the K classes (see the root package's ClassBalance).
// With r_k = log(p̄_k/π_k), its gradient is
//
//	∂KL/∂z_ij = p_ij (r_j − Σ_k p_ik r_k) / N.
//
// It has no GPU path: in a cuda build it reads the host copy of z.
type balanceOp struct {
	opBase
	logPrior []float64
}

// NewClassBalance returns the class-balance op for prior, a distribution
// over the classes with every entry > 0 (the caller validates it).
func NewClassBalance(prior []float64) G.Op {
	lp := make([]float64, len(prior))
	for i, p := range prior {
		lp[i] = math.Log(p)
	}
	return &balanceOp{opBase: newOpBase("ClassBalance"), logPrior: lp}
}

func (op *balanceOp) Arity() int    { return 1 }
func (op *balanceOp) Type() hm.Type { return lossType(1) }
func (op *balanceOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return lossInferShape(op.name, 1, in)
}

// balanceStats checks the logits z (N×K, on the host) against the prior
// and returns each row's log softmax, the mean prediction p̄ and the log
// ratios r.
func (op *balanceOp) balanceStats(z []float32, n, k int) (lp, mean, r []float64, err error) {
	if k != len(op.logPrior) {
		return nil, nil, nil, fmt.Errorf("vat: %s: %d classes, but the prior has %d", op.name, k, len(op.logPrior))
	}
	lp, mean, r = make([]float64, n*k), make([]float64, k), make([]float64, k)
	for i := 0; i < n; i++ {
		LogSoftmax(lp[i*k:(i+1)*k], z[i*k:(i+1)*k])
		for j, l := range lp[i*k : (i+1)*k] {
			mean[j] += math.Exp(l)
		}
	}
	for j := range r {
		mean[j] /= float64(n)
		r[j] = math.Log(mean[j]) - op.logPrior[j]
	}
	return lp, mean, r, nil
}

// hostLogits reads the logits and, with a grad, the output gradient, like
// the other losses (readMatrices), then makes the logits' host copy current:
// this op has no GPU path.
func hostLogits(op string, inputs []G.Value, withGrad bool) (z []float32, n, k int, g float32, err error) {
	ms, n, k, g, err := readMatrices(op, inputs, 1, withGrad)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	if err := backend.SyncToHost(ms[0]); err != nil {
		return nil, 0, 0, 0, err
	}
	return ms[0], n, k, g, nil
}

func (op *balanceOp) Do(inputs ...G.Value) (G.Value, error) {
	z, n, k, _, err := hostLogits(op.name, inputs, false)
	if err != nil {
		return nil, err
	}
	_, mean, r, err := op.balanceStats(z, n, k)
	if err != nil {
		return nil, err
	}
	var kl float64
	for j, m := range mean {
		if m > 0 { // 0·log 0 = 0
			kl += m * r[j]
		}
	}
	return G.NewF32(float32(kl)), nil
}

func (op *balanceOp) DiffWRT(int) []bool { return []bool{true} }

func (op *balanceOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&balanceGradOp{opBase: newOpBase("ClassBalanceGrad"), of: op}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

type balanceGradOp struct {
	opBase
	gradOnly
	of  *balanceOp
	out buffer
}

func (op *balanceGradOp) Arity() int    { return 2 }
func (op *balanceGradOp) Type() hm.Type { return lossGradType(1) }
func (op *balanceGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, _ := in[0].(tensor.Shape)
	return s.Clone(), nil
}

func (op *balanceGradOp) Do(inputs ...G.Value) (G.Value, error) {
	z, n, k, g, err := hostLogits(op.name, inputs, true)
	if err != nil {
		return nil, err
	}
	lp, _, r, err := op.of.balanceStats(z, n, k)
	if err != nil {
		return nil, err
	}
	out := op.out.get(n, k)
	o := out.Data().([]float32)
	c := float64(g) / float64(n)
	for i := 0; i < n; i++ {
		row := lp[i*k : (i+1)*k]
		var pr float64 // Σ_k p_ik r_k
		for j, l := range row {
			pr += math.Exp(l) * r[j]
		}
		for j, l := range row {
			o[i*k+j] = float32(c * math.Exp(l) * (r[j] - pr))
		}
	}
	return out, nil
}
