package vat

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/org/vat/internal/backend"
)

// PopulationStats replaces every BatchNorm layer's running averages by
// population statistics over d: the mean, over batches of batch samples
// (0 means 250; the last, shorter batch is left out unless it is the
// only one), of each batch's mean and unbiased variance, each layer's
// input computed as training computes it (every batch normalization with
// its batch's statistics, no dropout or noise). The official VAT code does
// this after training ("finetune batch stat"); inference then uses
// statistics of the whole pool instead of a running average of the last
// few hundred batches. d's labels are not read. A model without BatchNorm
// is left as it is. The weights do not change.
func (m *Model) PopulationStats(d *Dataset, batch int) error {
	if !m.hasBatchNorm() {
		return nil
	}
	if batch == 0 {
		batch = 250
	}
	if batch < 1 || batch > 65536 {
		return fmt.Errorf("vat: PopulationStats: batch %d: want 1 to 65536", batch)
	}
	if err := d.validateSamples("population statistics", m); err != nil {
		return err
	}
	n := d.Len()
	batch = min(batch, n)
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := backend.Active(); a != nil {
		m.syncParams(a)
	}
	g, err := newStatsGraph(m, batch)
	if err != nil {
		return err
	}
	sums := make([]*[2][]float64, len(m.stats))
	for i, st := range m.stats {
		if st != nil {
			sums[i] = &[2][]float64{make([]float64, len(st[0])), make([]float64, len(st[1]))}
		}
	}
	px := size(m.inShape)
	batches := 0
	for first := 0; first+batch <= n; first += batch {
		x := g.x.Data().([]float32)
		copy(x, d.Images[first*px:(first+batch)*px])
		backend.MarkHostWritten(x)
		g.vm.Reset()
		if err := g.vm.RunAll(); err != nil {
			return fmt.Errorf("vat: PopulationStats: %w", err)
		}
		for i, st := range g.stats {
			if st == nil {
				continue
			}
			if err := backend.SyncToHost(st[0], st[1]); err != nil {
				return err
			}
			for k := range st[0] {
				sums[i][0][k] += float64(st[0][k])
				sums[i][1][k] += float64(st[1][k])
			}
		}
		batches++
	}
	var written [][]float32
	for i, st := range m.stats {
		if st == nil {
			continue
		}
		for k := range st[0] {
			st[0][k] = float32(sums[i][0][k] / float64(batches))
			st[1][k] = float32(sums[i][1][k] / float64(batches))
		}
		written = append(written, st[0], st[1])
	}
	backend.MarkHostWritten(written...)
	return nil
}

// statsGraph is a forward pass in training mode whose batch norm ops write
// each batch's statistics into buffers of their own (momentum 0).
type statsGraph struct {
	vm    G.VM
	x     *tensor.Dense
	stats []*[2][]float32 // per layer: the batch's mean and unbiased variance, else nil
}

func newStatsGraph(m *Model, n int) (*statsGraph, error) {
	s := newScope(false, 0) // no dropout or noise
	zero := 0.0
	sg := &statsGraph{x: tensor.New(tensor.WithShape(append([]int{n}, m.inShape...)...), tensor.Of(tensor.Float32)),
		stats: make([]*[2][]float32, len(m.stats))}
	for i, st := range m.stats {
		if st != nil {
			sg.stats[i] = &[2][]float32{make([]float32, len(st[0])), make([]float32, len(st[1]))}
		}
	}
	s.batchStats, s.updateStats, s.statsOf, s.statsMomentum = true, true, sg.stats, &zero
	w := m.weightNodes(s, "")
	x := G.NewTensor(s.g, G.Float32, sg.x.Dims(), G.WithShape(sg.x.Shape()...), G.WithValue(sg.x), G.WithName("x"))
	logits := m.forward(s, w, x)
	if s.err != nil {
		return nil, s.err
	}
	prog, locMap, err := G.CompileFunction(s.g, append(G.Nodes{x}, w.nodes...), G.Nodes{logits})
	if err != nil {
		return nil, fmt.Errorf("vat: compiling the statistics graph: %w", err)
	}
	sg.vm = G.NewTapeMachine(s.g, G.WithPrecompiled(prog, locMap))
	return sg, nil
}
