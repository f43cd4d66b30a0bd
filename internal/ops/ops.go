// Package ops holds the Gorgonia ops of github.com/org/vat, one op family
// per file with its gradient op(s) and, beside it, a finite-difference test:
// convolution, max-pooling, dense, dropout, stop-gradient, per-sample L2
// normalization, addition, weighted sum, and the losses (cross-entropy, KL
// divergence, entropy, and CE + α·KL as one op). Each op's CPU path calls
// internal/kernels; with a GPU in use it runs its path in internal/backend.
// Every op can stand in a graph that Gorgonia differentiates twice, as
// VAT's power iteration does (Gorgonia's own SoftMax and Dropout panic
// there).
package ops

import (
	"fmt"
	"hash"
	"hash/fnv"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
)

// This file holds what every op shares: identity, hashing, buffer reuse.
//
// Design notes, all forced by Gorgonia v0.9.18:
//   - Gorgonia deduplicates nodes by op hash and children. Every op value
//     carries a process-unique id in its hash, so two applications never merge.
//   - A TapeMachine drops every value after each step. Our ops therefore keep
//     their output buffer inside the op value and hand it back on every Do: a
//     step allocates nothing for them. This is safe because an op runs once per
//     step and a node's register is reused only after the node's last reader.
//   - No op returns one of its inputs (ReturnsPtr is false): aliasing would let
//     Gorgonia write into a buffer that is still live.

var opSeq atomic.Uint64

// opBase implements the bookkeeping parts of gorgonia.Op.
type opBase struct {
	name string
	id   uint64
}

func newOpBase(name string) opBase { return opBase{name: name, id: opSeq.Add(1)} }

func (o *opBase) ReturnsPtr() bool      { return false }
func (o *opBase) CallsExtern() bool     { return false }
func (o *opBase) OverwritesInput() int  { return -1 }
func (o *opBase) WriteHash(h hash.Hash) { fmt.Fprintf(h, "vat.%s#%d", o.name, o.id) }
func (o *opBase) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
func (o *opBase) String() string { return o.name }

// tensorType is a Gorgonia tensor type of the given rank over the type variable a.
func tensorType(dims int) hm.Type {
	return &G.TensorType{Dims: dims, Of: hm.TypeVariable('a')}
}

// fnType builds the function type of an op from its argument and result types.
func fnType(ts ...hm.Type) hm.Type { return hm.NewFnType(ts...) }

// scalarType is the type of a scalar result (the dtype itself).
func scalarType() hm.Type { return hm.TypeVariable('a') }

// buffer is an output tensor owned by an op and reused across steps.
type buffer struct{ t *tensor.Dense }

// get returns the buffer with the given shape, reallocating only when the
// shape changes. The contents are whatever the last step left; callers
// overwrite or zero them. With a GPU backend, get assumes that the caller
// writes on the host; a GPU op claims the buffer afterwards.
func (b *buffer) get(shape ...int) *tensor.Dense {
	if b.t == nil || !b.t.Shape().Eq(tensor.Shape(shape)) {
		b.t = tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	if a := backend.Active(); a != nil {
		a.MarkHost(b.t.Data().([]float32))
	}
	return b.t
}

// f32s returns the backing slice of a float32 tensor value, or an error that
// names the op and the argument. With a GPU backend it first makes the host
// copy current: ops that compute on the CPU read their inputs through it.
func f32s(op string, arg int, v G.Value) ([]float32, tensor.Shape, error) {
	d, s, err := f32sNoSync(op, arg, v)
	if err == nil {
		err = backend.SyncToHost(d)
	}
	return d, s, err
}

// f32sNoSync is f32s for ops with a GPU path (internal/backend/ops.go): their CPU
// path runs only when there is no GPU, so the host copy is current.
func f32sNoSync(op string, arg int, v G.Value) ([]float32, tensor.Shape, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, nil, fmt.Errorf("vat: %s: argument %d is %T, want a tensor", op, arg, v)
	}
	d, ok := t.Data().([]float32)
	if !ok {
		return nil, nil, fmt.Errorf("vat: %s: argument %d has dtype %v, want float32", op, arg, t.Dtype())
	}
	return d, t.Shape(), nil
}

// Scalar32 reads a float32 scalar value.
func Scalar32(op string, arg int, v G.Value) (float32, error) {
	switch s := v.(type) {
	case *G.F32:
		return float32(*s), nil
	case tensor.Tensor:
		if d, ok := s.Data().([]float32); ok && len(d) == 1 {
			return d[0], nil
		}
		if d, ok := s.Data().(float32); ok {
			return d, nil
		}
	}
	return 0, fmt.Errorf("vat: %s: argument %d is %T, want a float32 scalar", op, arg, v)
}

// checkArity returns an error when an op gets the wrong number of inputs.
func checkArity(op string, want int, got int) error {
	if want != got {
		return fmt.Errorf("vat: %s takes %d inputs, got %d", op, want, got)
	}
	return nil
}

// gradOnly is embedded by ops that only ever appear on the backward side of
// a graph. It declares them non-differentiable (DiffWRT all false), which
// Gorgonia requires of every op it meets when it analyses a graph for a
// second Grad call.
type gradOnly struct{}

func (gradOnly) DiffWRT(n int) []bool { return make([]bool, n) }
func (gradOnly) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("vat: second-order gradients are not supported")
}

// gpuOut returns out, or the error of the GPU path that computed it.
func gpuOut(out *tensor.Dense, err error) (G.Value, error) {
	if err != nil {
		return nil, err
	}
	return out, nil
}
