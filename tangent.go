package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/org/vat/internal/ops"
)

// tangent builds J·d, the network's linear map at the pass recorded in
// trace applied to d (shaped like that pass's input), for the Exact probe
// (see exactPerturbation and internal/ops/tangent.go): each layer without
// its bias, each ReLU as the recorded pass's mask, each max-pool as the
// recorded pass's choice, each batch normalization at the recorded pass,
// with the derivative of the batch's statistics when that pass normalized
// with them (training) and with the statistics as constants otherwise
// (inference). Dropout has no tangent here: a network that
// drops while training cannot use the exact probe.
func (m *Model) tangent(s *scope, w weights, trace []layerTrace, d *G.Node) *G.Node {
	if s.err != nil {
		return nil
	}
	if len(trace) != len(m.layers) {
		s.err = fmt.Errorf("vat: internal error: a trace of %d layers for a network of %d", len(trace), len(m.layers))
		return nil
	}
	h := d
	for i, l := range m.layers {
		if i > 0 && m.fused[i-1] {
			continue // this ReLU was fused into the layer before: masked below
		}
		ws := make([]*G.Node, len(m.weights[i]))
		for j, k := range m.weights[i] {
			ws[j] = w.nodes[k]
		}
		h = l.tangent(s, h, ws, trace[i])
		if m.fused[i] {
			h = s.apply(ops.NewMask(), h, trace[i].out)
		}
		if s.err != nil {
			return nil
		}
	}
	return h
}
