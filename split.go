package vat

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/org/vat/internal/rng"
)

// Split is a semi-supervised split of a training set: a few labeled
// samples, the same number from each class, and the rest as the unlabeled
// pool, without its labels.
type Split struct {
	Labeled, Unlabeled *Dataset
	// Indices are the labeled samples' positions in the original set,
	// ascending.
	Indices []int
	// Seed chose them; Hash is the FNV-64a hash of Indices (as 32-bit
	// little-endian integers) in hex, to tell splits apart in results.
	Seed uint64
	Hash string
}

// SplitLabeled chooses n labeled samples of d, n/classes from each of the
// classes 0 to classes−1, uniformly at random from seed (the official VAT
// code's class-balanced choice). n must be a positive multiple of classes,
// and every class must have n/classes samples. The datasets copy their
// samples; d is not changed.
func SplitLabeled(d *Dataset, n, classes int, seed uint64) (*Split, error) {
	switch {
	case d.Len() == 0:
		return nil, fmt.Errorf("vat: SplitLabeled: the dataset is empty")
	case !d.Labeled() || len(d.Labels) != d.Len():
		return nil, fmt.Errorf("vat: SplitLabeled: the dataset has %d labels for %d samples: want one each", len(d.Labels), d.Len())
	case classes < 1 || classes > 1<<16:
		return nil, fmt.Errorf("vat: SplitLabeled: %d classes: want 1 to 65536", classes)
	case n < classes || n%classes != 0:
		return nil, fmt.Errorf("vat: SplitLabeled: %d labels: want a positive multiple of the %d classes", n, classes)
	case n >= d.Len():
		return nil, fmt.Errorf("vat: SplitLabeled: %d labels of %d samples: want fewer, to leave unlabeled ones", n, d.Len())
	}
	byClass := make([][]int, classes)
	for i, l := range d.Labels {
		if l < 0 || l >= classes {
			return nil, fmt.Errorf("vat: SplitLabeled: label %d of sample %d outside 0-%d", l, i, classes-1)
		}
		byClass[l] = append(byClass[l], i)
	}
	r := rng.New(seed, rng.Split, 0)
	var chosen []int
	for c, idx := range byClass {
		if len(idx) < n/classes {
			return nil, fmt.Errorf("vat: SplitLabeled: class %d has %d samples, %d needed", c, len(idx), n/classes)
		}
		r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		chosen = append(chosen, idx[:n/classes]...)
	}
	slices.Sort(chosen)
	in := make([]bool, d.Len())
	for _, i := range chosen {
		in[i] = true
	}
	var rest []int
	for i := range in {
		if !in[i] {
			rest = append(rest, i)
		}
	}
	h := fnv.New64a()
	for _, i := range chosen {
		binary.Write(h, binary.LittleEndian, uint32(i))
	}
	return &Split{Labeled: d.subset(chosen), Unlabeled: d.subset(rest).Unlabeled(), Indices: chosen, Seed: seed,
		Hash: fmt.Sprintf("%016x", h.Sum64())}, nil
}
