package ops

import (
	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// jointLossOp is CE(z, y) + α·KL(softmax(z) ‖ softmax(a)), averaged over the
// batch, with the gradient flowing into both logit matrices z and a: the
// seed's VAT objective (VATConfig.CleanGrad), in which the clean logits feed
// both terms. As one op, z has a single differentiable consumer; as two,
// Gorgonia's Grad would sum the two gradients with a stock op of its own.
// Its gradients are those of crossEntropyOp and klOp, combined:
//
//	∂/∂z = ∂CE/∂z + α·∂KL/∂z,  ∂/∂a = α·∂KL/∂a.
type jointLossOp struct {
	opBase
	alpha float64
}

// NewJointLoss returns the op CE(z, y) + alpha·KL(softmax(z) ‖ softmax(q)),
// one op so that the gradient through the shared logits z is exact.
func NewJointLoss(alpha float64) *jointLossOp {
	return &jointLossOp{opBase: newOpBase("CE+αKL"), alpha: alpha}
}

func (op *jointLossOp) Arity() int    { return 3 }
func (op *jointLossOp) Type() hm.Type { return lossType(3) }
func (op *jointLossOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return lossInferShape(op.name, 3, in)
}

func (op *jointLossOp) Do(inputs ...G.Value) (G.Value, error) {
	ce, err := NewCrossEntropy().Do(inputs[:2]...)
	if err != nil {
		return nil, err
	}
	kl, err := NewKL(Mean).Do(inputs[0], inputs[2])
	if err != nil {
		return nil, err
	}
	c, _ := Scalar32(op.name, 0, ce)
	k, _ := Scalar32(op.name, 0, kl)
	return G.NewF32(float32(float64(c) + op.alpha*float64(k))), nil
}

func (op *jointLossOp) DiffWRT(int) []bool { return []bool{true, false, true} }

func (op *jointLossOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	z, y, a := inputs[0], inputs[1], inputs[2]
	ag, err := G.ApplyOp(NewWeightedSum(op.alpha), grad) // α·g
	if err != nil {
		return nil, err
	}
	kl := NewKL(Mean)
	gce, err := G.ApplyOp(&crossEntropyGradOp{opBase: newOpBase("CrossEntropyGrad")}, z, y, grad)
	if err != nil {
		return nil, err
	}
	gklz, err := G.ApplyOp(&klGradOp{opBase: newOpBase("KLGrad"), fwd: kl, wrt: 0}, z, a, ag)
	if err != nil {
		return nil, err
	}
	gz, err := G.ApplyOp(NewAdd(), gce, gklz)
	if err != nil {
		return nil, err
	}
	ga, err := G.ApplyOp(&klGradOp{opBase: newOpBase("KLGrad"), fwd: kl, wrt: 1}, z, a, ag)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gz, nil, ga}, nil
}
