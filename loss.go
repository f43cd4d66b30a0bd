package vat

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"github.com/org/vat/internal/ops"
)

// Reduction says how a per-sample loss becomes a scalar.
type Reduction int

const (
	// Mean averages over the batch (the zero value).
	Mean Reduction = iota
	// Sum adds over the batch.
	Sum
)

// String names the reduction.
func (r Reduction) String() string { return ops.Reduction(r).String() }

// CrossEntropy returns the softmax cross-entropy of logits (N×K) against
// target distributions labels (N×K; one-hot for hard labels), averaged over
// the batch:
//
//	CE = −1/N Σ_i Σ_k y_ik · log softmax(z_i)_k
//
// computed from the logits with a log-sum-exp, so it stays finite for any
// logits (Keras instead clips probabilities at 1e-7).
func CrossEntropy(logits, labels *G.Node) (*G.Node, error) {
	return G.ApplyOp(ops.NewCrossEntropy(), logits, labels)
}

// KLDivergence returns the Kullback-Leibler divergence between the softmax
// distributions of two logit matrices (N×K), reduced over the batch:
//
//	KL_i = Σ_k p_ik (log p_ik − log q_ik),  p = softmax(p_logits), q = softmax(q_logits)
//
// It is differentiable in both arguments; wrap p_logits in StopGradient to
// treat p as a constant.
func KLDivergence(pLogits, qLogits *G.Node, r Reduction) (*G.Node, error) {
	return G.ApplyOp(ops.NewKL(ops.Reduction(r)), pLogits, qLogits)
}

// Entropy returns the mean entropy of the softmax distributions of logits
// (N×K): H = −1/N Σ_i Σ_k p_ik log p_ik. Minimizing it ("EntMin") pushes the
// model towards confident predictions on unlabeled data.
func Entropy(logits *G.Node) (*G.Node, error) {
	return G.ApplyOp(ops.NewEntropy(), logits)
}

// ClassBalance returns KL(p̄ ‖ π) for a batch of logits (N×K): p̄ =
// 1/N Σ_i softmax(z_i) is the batch's mean prediction and π = prior, a
// distribution over the K classes. Minimizing it keeps the predictions of
// unlabeled data spread over the classes as π is, so that no class is
// absorbed by its neighbours (the "marginal entropy" term of IMSAT, Hu et
// al. 2017, with a prior). prior must hold K numbers > 0 that sum to 1.
func ClassBalance(logits *G.Node, prior []float64) (*G.Node, error) {
	if err := checkPrior(prior); err != nil {
		return nil, fmt.Errorf("vat: ClassBalance: %w", err)
	}
	return G.ApplyOp(ops.NewClassBalance(prior), logits)
}

// checkPrior checks that prior is a distribution with every entry > 0.
func checkPrior(prior []float64) error {
	if len(prior) < 2 {
		return fmt.Errorf("a prior over %d classes: want 2 or more", len(prior))
	}
	var sum float64
	for i, p := range prior {
		if !(p > 0 && p <= 1) {
			return fmt.Errorf("prior[%d] = %v: want a probability in (0, 1]", i, p)
		}
		sum += p
	}
	if math.Abs(sum-1) > 1e-6 {
		return fmt.Errorf("the prior sums to %v: want 1", sum)
	}
	return nil
}

// StopGradient returns a node equal to x through which no gradient flows.
func StopGradient(x *G.Node) (*G.Node, error) {
	return G.ApplyOp(ops.NewStopGradient(), x)
}

// L2Normalize returns scale·x_i/‖x_i‖ for every sample x_i along axis 0.
func L2Normalize(x *G.Node, scale float64) (*G.Node, error) {
	return G.ApplyOp(ops.NewL2Normalize(scale, x.Dims()), x)
}
