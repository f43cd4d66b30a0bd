package vat

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"

	"github.com/org/vat/internal/kernels"
)

// dataKey identifies a training set well enough to refuse continuing an
// epoch on another one: its size and a hash of its labels.
type dataKey struct {
	N      int    `json:"images"`
	Labels uint64 `json:"labels_fnv64a"`
}

func keyOf(d *Dataset) dataKey {
	h := fnv.New64a()
	b := make([]byte, len(d.Labels))
	for i, l := range d.Labels {
		b[i] = byte(l) // as when labels were bytes: checkpoints keep their keys
	}
	h.Write(b)
	return dataKey{N: d.Len(), Labels: h.Sum64()}
}

// fill copies the samples idx of d into x and their one-hot labels (of
// classes) into y: a batch for a training graph.
func (d *Dataset) fill(x, y []float32, idx []int, classes int) {
	px := size(d.shape())
	kernels.Zero(y)
	for i, j := range idx {
		copy(x[i*px:(i+1)*px], d.Images[j*px:(j+1)*px])
		y[i*classes+d.Labels[j]] = 1
	}
}

func cursorN(c *cursor) int {
	if c == nil {
		return 0
	}
	return c.data.N
}

// cycler hands out indices 0..n−1 in random order, batch after batch,
// reshuffling whenever all have been handed out; a batch that straddles
// the end continues in the next order.
type cycler struct {
	perm  []int
	pos   int
	src   *rand.PCG
	r     *rand.Rand
	batch []int
}

func newCycler(n int, src *rand.PCG) *cycler {
	c := &cycler{perm: make([]int, n), src: src, r: rand.New(src), pos: n}
	for i := range c.perm {
		c.perm[i] = i
	}
	return c
}

func (c *cycler) next(k int) []int {
	c.batch = c.batch[:0]
	for len(c.batch) < k {
		if c.pos == len(c.perm) {
			c.r.Shuffle(len(c.perm), func(i, j int) { c.perm[i], c.perm[j] = c.perm[j], c.perm[i] })
			c.pos = 0
		}
		take := min(k-len(c.batch), len(c.perm)-c.pos)
		c.batch = append(c.batch, c.perm[c.pos:c.pos+take]...)
		c.pos += take
	}
	return c.batch
}

// cursor is a cycler's place, as a checkpoint records it.
type cursor struct {
	order  []int64 // the current order
	pos    int
	source []byte // the shuffling source
	data   dataKey
}

func (c *cycler) save(data dataKey) (*cursor, error) {
	src, err := c.src.MarshalBinary()
	if err != nil {
		return nil, err
	}
	order := make([]int64, len(c.perm))
	for i, p := range c.perm {
		order[i] = int64(p)
	}
	return &cursor{order: order, pos: c.pos, source: src, data: data}, nil
}

// check reports whether cur is a place in a permutation, with a valid
// shuffling source.
func (cur *cursor) check() error {
	if cur.pos < 0 || cur.pos > len(cur.order) {
		return fmt.Errorf("the batch order is at %d of %d", cur.pos, len(cur.order))
	}
	seen := make([]bool, len(cur.order))
	for _, p := range cur.order {
		if p < 0 || p >= int64(len(seen)) || seen[p] {
			return fmt.Errorf("the batch order is not a permutation of 0-%d", len(seen)-1)
		}
		seen[p] = true
	}
	var src rand.PCG
	if err := src.UnmarshalBinary(cur.source); err != nil {
		return fmt.Errorf("the shuffling state: %v", err)
	}
	return nil
}

// restore sets c to cur, checked, of c's length.
func (c *cycler) restore(cur *cursor) error {
	for i, p := range cur.order {
		c.perm[i] = int(p)
	}
	c.pos = cur.pos
	if err := c.src.UnmarshalBinary(cur.source); err != nil {
		return fmt.Errorf("vat: the checkpoint's shuffling state: %w", err)
	}
	return nil
}
