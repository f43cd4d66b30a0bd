package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
)

// AlignedKL is VAT's divergence with an aligned target: the mean over the
// batch of KL(p̃_i ‖ q_i), with q_i = softmax(b_i) the perturbed
// prediction and
//
//	p̃_i = softmax(a_i + s),   so   p̃_ij ∝ p_ij·exp(s_j),
//
// the clean prediction p_i = softmax(a_i) reweighted per class by a shift
// s the caller sets between runs (SetShift; zero at first, which makes it
// KL(p ‖ q)). With s = log π − log p̄, π a class prior and p̄ the model's
// running mean prediction, p̃ is ReMixMatch's distribution alignment: a
// class the model has started to under-predict weighs more in the target.
// Its gradients are those of KL with p̃ for p:
//
//	∂KL_i/∂b_ij = q_ij − p̃_ij
//	∂KL_i/∂a_ij = p̃_ij (log p̃_ij − log q_ij − KL_i)
//
// each divided by N. Each forward run also records the batch's mean clean
// prediction 1/N Σ_i p_i (BatchMean), from which the caller updates p̄. It
// has no GPU path: in a cuda build it reads the host copies.
type AlignedKL struct {
	opBase
	shift []float64 // s, one per class
	mean  []float64 // the last forward run's mean of softmax(a)
}

// NewAlignedKL returns the op for k classes, with a zero shift.
func NewAlignedKL(k int) *AlignedKL {
	return &AlignedKL{opBase: newOpBase("AlignedKL"), shift: make([]float64, k), mean: make([]float64, k)}
}

// SetShift sets s for the following runs; it must have one entry per
// class, each finite (the caller validates).
func (op *AlignedKL) SetShift(s []float64) { copy(op.shift, s) }

// BatchMean returns the mean clean prediction of the last forward run (the
// op's own slice: copy it to keep it).
func (op *AlignedKL) BatchMean() []float64 { return op.mean }

func (op *AlignedKL) Arity() int    { return 2 }
func (op *AlignedKL) Type() hm.Type { return lossType(2) }
func (op *AlignedKL) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return lossInferShape(op.name, 2, in)
}

// hostPair reads the two logit matrices (and with withGrad the output
// gradient) and makes their host copies current.
func (op *AlignedKL) hostPair(inputs []G.Value, withGrad bool) (a, b []float32, n, k int, g float32, err error) {
	ms, n, k, g, err := readMatrices(op.name, inputs, 2, withGrad)
	if err != nil {
		return nil, nil, 0, 0, 0, err
	}
	if k != len(op.shift) {
		return nil, nil, 0, 0, 0, fmt.Errorf("vat: %s: %d classes, want %d", op.name, k, len(op.shift))
	}
	if err := backend.SyncToHost(ms...); err != nil {
		return nil, nil, 0, 0, 0, err
	}
	return ms[0], ms[1], n, k, g, nil
}

// row fills lt and lq with log p̃ and log q of one sample, adds p to mean
// when mean is non-nil, and returns KL(p̃ ‖ q).
func (op *AlignedKL) row(lt, lq, mean []float64, a, b []float32) float64 {
	LogSoftmax(lt, a)
	if mean != nil {
		for j, l := range lt {
			mean[j] += math.Exp(l)
		}
	}
	m := math.Inf(-1)
	for j := range lt {
		lt[j] += op.shift[j]
		m = math.Max(m, lt[j])
	}
	var s float64
	for _, l := range lt {
		s += math.Exp(l - m)
	}
	lse := m + math.Log(s)
	LogSoftmax(lq, b)
	var kl float64
	for j := range lt {
		lt[j] -= lse
		kl += math.Exp(lt[j]) * (lt[j] - lq[j])
	}
	return kl
}

func (op *AlignedKL) Do(inputs ...G.Value) (G.Value, error) {
	a, b, n, k, _, err := op.hostPair(inputs, false)
	if err != nil {
		return nil, err
	}
	clear(op.mean)
	lt, lq := make([]float64, k), make([]float64, k)
	var total float64
	for i := 0; i < n; i++ {
		total += op.row(lt, lq, op.mean, a[i*k:(i+1)*k], b[i*k:(i+1)*k])
	}
	for j := range op.mean {
		op.mean[j] /= float64(n)
	}
	return G.NewF32(float32(total / float64(n))), nil
}

func (op *AlignedKL) DiffWRT(int) []bool { return []bool{true, true} }

func (op *AlignedKL) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	grads := make(G.Nodes, 2)
	for wrt := range grads {
		g, err := G.ApplyOp(&alignedKLGrad{opBase: newOpBase("AlignedKLGrad"), of: op, wrt: wrt}, inputs[0], inputs[1], grad)
		if err != nil {
			return nil, err
		}
		grads[wrt] = g
	}
	return grads, nil
}

// alignedKLGrad is AlignedKL's gradient with respect to its argument wrt
// (0: the clean logits, 1: the perturbed ones).
type alignedKLGrad struct {
	opBase
	gradOnly
	of  *AlignedKL
	wrt int
	out buffer
}

func (op *alignedKLGrad) Arity() int    { return 3 }
func (op *alignedKLGrad) Type() hm.Type { return lossGradType(2) }
func (op *alignedKLGrad) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, _ := in[0].(tensor.Shape)
	return s.Clone(), nil
}

func (op *alignedKLGrad) Do(inputs ...G.Value) (G.Value, error) {
	a, b, n, k, g, err := op.of.hostPair(inputs, true)
	if err != nil {
		return nil, err
	}
	out := op.out.get(n, k)
	o := out.Data().([]float32)
	c := float64(g) / float64(n)
	lt, lq := make([]float64, k), make([]float64, k)
	for i := 0; i < n; i++ {
		kl := op.of.row(lt, lq, nil, a[i*k:(i+1)*k], b[i*k:(i+1)*k])
		oi := o[i*k : (i+1)*k]
		for j := range oi {
			pt := math.Exp(lt[j])
			if op.wrt == 0 {
				oi[j] = float32(c * pt * (lt[j] - lq[j] - kl))
			} else {
				oi[j] = float32(c * (math.Exp(lq[j]) - pt))
			}
		}
	}
	return out, nil
}
