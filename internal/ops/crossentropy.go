package ops

import (
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/device"
)

// crossEntropyOp is the softmax cross-entropy of logits z against targets y,
// averaged over the batch (see CrossEntropy). Its gradient with respect to
// the logits is
//
//	∂CE/∂z_ij = (p_ij · Σ_k y_ik − y_ij) / N,  p = softmax(z),
//
// which is the familiar (p − y)/N for targets that sum to one. The targets
// are data: no gradient flows into them.
type crossEntropyOp struct{ opBase }

// NewCrossEntropy returns the softmax cross-entropy op (logits, targets),
// averaged over the batch.
func NewCrossEntropy() *crossEntropyOp { return &crossEntropyOp{opBase: newOpBase("CrossEntropy")} }

func (op *crossEntropyOp) Arity() int    { return 2 }
func (op *crossEntropyOp) Type() hm.Type { return lossType(2) }
func (op *crossEntropyOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return lossInferShape(op.name, 2, in)
}

func (op *crossEntropyOp) Do(inputs ...G.Value) (G.Value, error) {
	ms, n, k, _, err := readMatrices(op.name, inputs, 2, false)
	if err != nil {
		return nil, err
	}
	z, y := ms[0], ms[1]
	if v, ok, err := lossOnGPU(device.LossCrossEntropy, z, y, n, k, 1/float64(n)); ok {
		return v, err
	}
	ls := make([]float64, k)
	var total float64
	for i := 0; i < n; i++ {
		LogSoftmax(ls, z[i*k:(i+1)*k])
		for j, t := range y[i*k : (i+1)*k] {
			if t != 0 {
				total -= float64(t) * ls[j]
			}
		}
	}
	return G.NewF32(float32(total / float64(n))), nil
}

func (op *crossEntropyOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *crossEntropyOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	gz, err := G.ApplyOp(&crossEntropyGradOp{opBase: newOpBase("CrossEntropyGrad")}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gz, nil}, nil
}

type crossEntropyGradOp struct {
	opBase
	gradOnly
	out buffer
}

func (op *crossEntropyGradOp) Arity() int    { return 3 }
func (op *crossEntropyGradOp) Type() hm.Type { return lossGradType(2) }
func (op *crossEntropyGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, _ := in[0].(tensor.Shape)
	return s.Clone(), nil
}

func (op *crossEntropyGradOp) Do(inputs ...G.Value) (G.Value, error) {
	ms, n, k, g, err := readMatrices(op.name, inputs, 2, true)
	if err != nil {
		return nil, err
	}
	z, y := ms[0], ms[1]
	out := op.out.get(n, k)
	o := out.Data().([]float32)
	c := float64(g) / float64(n)
	if v, ok, err := lossGradOnGPU(device.LossCrossEntropy, 0, out, z, y, n, k, c); ok {
		return v, err
	}
	ls := make([]float64, k)
	for i := 0; i < n; i++ {
		LogSoftmax(ls, z[i*k:(i+1)*k])
		yi := y[i*k : (i+1)*k]
		var sy float64
		for _, t := range yi {
			sy += float64(t)
		}
		for j := range ls {
			o[i*k+j] = float32(c * (math.Exp(ls[j])*sy - float64(yi[j])))
		}
	}
	return out, nil
}
