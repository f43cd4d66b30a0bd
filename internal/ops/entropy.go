package ops

import (
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/device"
)

// entropyOp is the mean entropy of softmax(z) over the batch (see Entropy).
// With H_i the row's entropy, its gradient is
//
//	∂H/∂z_ij = −p_ij (log p_ij + H_i) / N.
type entropyOp struct{ opBase }

// NewEntropy returns the mean-entropy op (see the root package's Entropy).
func NewEntropy() G.Op { return &entropyOp{opBase: newOpBase("Entropy")} }

func (op *entropyOp) Arity() int    { return 1 }
func (op *entropyOp) Type() hm.Type { return lossType(1) }
func (op *entropyOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return lossInferShape(op.name, 1, in)
}

// entropyRow fills lp with log softmax(z) and returns the entropy.
func entropyRow(lp []float64, z []float32) float64 {
	LogSoftmax(lp, z)
	var h float64
	for _, l := range lp {
		h -= math.Exp(l) * l
	}
	return h
}

func (op *entropyOp) Do(inputs ...G.Value) (G.Value, error) {
	ms, n, k, _, err := readMatrices(op.name, inputs, 1, false)
	if err != nil {
		return nil, err
	}
	if v, ok, err := lossOnGPU(device.LossEntropy, ms[0], ms[0], n, k, 1/float64(n)); ok {
		return v, err
	}
	lp := make([]float64, k)
	var total float64
	for i := 0; i < n; i++ {
		total += entropyRow(lp, ms[0][i*k:(i+1)*k])
	}
	return G.NewF32(float32(total / float64(n))), nil
}

func (op *entropyOp) DiffWRT(int) []bool { return []bool{true} }

func (op *entropyOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&entropyGradOp{opBase: newOpBase("EntropyGrad")}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

type entropyGradOp struct {
	opBase
	gradOnly
	out buffer
}

func (op *entropyGradOp) Arity() int    { return 2 }
func (op *entropyGradOp) Type() hm.Type { return lossGradType(1) }
func (op *entropyGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, _ := in[0].(tensor.Shape)
	return s.Clone(), nil
}

func (op *entropyGradOp) Do(inputs ...G.Value) (G.Value, error) {
	ms, n, k, g, err := readMatrices(op.name, inputs, 1, true)
	if err != nil {
		return nil, err
	}
	out := op.out.get(n, k)
	o := out.Data().([]float32)
	c := float64(g) / float64(n)
	if v, ok, err := lossGradOnGPU(device.LossEntropy, 0, out, ms[0], ms[0], n, k, c); ok {
		return v, err
	}
	lp := make([]float64, k)
	for i := 0; i < n; i++ {
		h := entropyRow(lp, ms[0][i*k:(i+1)*k])
		for j, l := range lp {
			o[i*k+j] = float32(-c * math.Exp(l) * (l + h))
		}
	}
	return out, nil
}
