package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/org/vat"
)

// heldOut is one SelectEps candidate's result on the held-out labeled
// samples, per sample: whether it was right and its cross-entropy
// −log p(label).
type heldOut struct {
	Task     string    `json:"task"`
	Split    uint64    `json:"split"`
	EpsScale float64   `json:"eps_scale"`
	Right    []bool    `json:"right"`
	Loss     []float64 `json:"loss"`
}

// study repeats vat.SelectEps' search for split seed (the same held-out
// split, models and configurations as choose) and writes each candidate's
// per-sample held-out results to w as one JSON object per line, so that
// selection rules can be compared on the same candidates.
func study(w *json.Encoder, t *task, grid []float64, iterations int, seed uint64) error {
	split, err := vat.SplitLabeled(t.train, t.labels, t.classes, seed)
	if err != nil {
		return err
	}
	train, val, err := split.Labeled.SplitByClass(0.3, seed)
	if err != nil {
		return err
	}
	for _, s := range grid {
		m, err := t.net(seed)
		if err != nil {
			return err
		}
		cfg := searchConfig(t, iterations, seed)
		cfg.VAT = &vat.VATConfig{EpsScale: s}
		tr, err := vat.NewSemiTrainer(m, cfg)
		if err != nil {
			return err
		}
		if _, err := tr.Fit(context.Background(), train, split.Unlabeled, nil); err != nil {
			return fmt.Errorf("EpsScale %g: %w", s, err)
		}
		p, err := m.Probabilities(val.Images)
		if err != nil {
			return err
		}
		h := heldOut{Task: t.name, Split: seed, EpsScale: s}
		k := m.Classes()
		n := 0
		for i, y := range val.Labels {
			row := p[i*k : (i+1)*k]
			best := 0
			for j := range row {
				if row[j] > row[best] {
					best = j
				}
			}
			h.Right = append(h.Right, best == y)
			h.Loss = append(h.Loss, -math.Log(math.Max(float64(row[y]), 1e-30)))
			if best == y {
				n++
			}
		}
		fmt.Fprintf(os.Stderr, "%s split %d EpsScale %g: %d/%d held-out right\n", t.name, seed, s, n, len(val.Labels))
		if err := w.Encode(h); err != nil {
			return err
		}
	}
	return nil
}
