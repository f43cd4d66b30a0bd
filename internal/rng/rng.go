// Package rng holds the random streams of github.com/org/vat: one seed,
// split into independent streams (initial weights, shuffling, dropout
// masks, VAT noise), and a generator that fills large buffers on all cores
// and still deterministically.
package rng

import (
	"math"
	"math/rand/v2"

	"github.com/org/vat/internal/kernels"
)

// Every random number of a run comes from one seed, split into independent
// streams so that, for example, turning dropout on does not change the
// shuffling order or the initial weights.
const (
	Init      uint64 = iota + 1 // initial weights
	Shuffle                     // the order of the training images
	Dropout                     // dropout masks
	Noise                       // VAT's random directions
	Robust                      // random directions of robustness reports
	Split                       // the choice of labeled images
	Unlabeled                   // the order of the unlabeled images
)

// SplitMix64 is a bijective mixer (Steele et al., "Fast splittable
// pseudorandom number generators", 2014) used to derive stream seeds.
func SplitMix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// New returns the generator of stream s (and sub-stream sub) of seed.
func New(seed, s, sub uint64) *rand.Rand { return rand.New(NewPCG(seed, s, sub)) }

// NewPCG returns the source of New(seed, s, sub), whose state can be saved
// (MarshalBinary) and restored.
func NewPCG(seed, s, sub uint64) *rand.PCG {
	return rand.NewPCG(SplitMix64(seed^SplitMix64(s)), SplitMix64(sub+s<<32))
}

// Chunked fills large buffers (dropout masks, VAT noise) with random
// numbers on all cores, and still deterministically: the buffer is cut into
// chunks of rngChunk values, and chunk c of the k-th fill draws from its own
// PCG stream, seeded by (seed, k, c). Which goroutine fills which chunk does
// not matter.
type Chunked struct {
	seed  uint64
	fills uint64
}

// NewChunked returns the chunked generator of seed.
func NewChunked(seed uint64) Chunked { return Chunked{seed: seed} }

// Fills returns how many buffers r has filled: with the seed, its whole
// state.
func (r *Chunked) Fills() uint64 { return r.fills }

// SetFills restores a state Fills returned: the next fill is the one that
// followed it.
func (r *Chunked) SetFills(n uint64) { r.fills = n }

const rngChunk = 4096

// fill calls gen(src, chunk) for every chunk of a buffer of n values, with
// src positioned at the start of that chunk's stream.
func (r *Chunked) fill(n int, gen func(src *rand.PCG, lo, hi int)) {
	r.fills++
	k := SplitMix64(r.seed ^ SplitMix64(r.fills))
	kernels.ParallelFor((n+rngChunk-1)/rngChunk, func(_, c int) {
		var src rand.PCG
		src.Seed(k, SplitMix64(uint64(c)))
		gen(&src, c*rngChunk, min((c+1)*rngChunk, n))
	})
}

// Normals fills x with independent N(0, 1) draws.
func (r *Chunked) Normals(x []float32) {
	r.fill(len(x), func(src *rand.PCG, lo, hi int) {
		g := rand.New(src)
		for i := lo; i < hi; i++ {
			x[i] = float32(g.NormFloat64())
		}
	})
}

// Bernoulli sets each m[i] to v with probability keep, else to 0. Each
// 64-bit draw decides two entries, comparing its 32-bit halves with keep·2³²
// (branch-free: random branches would be mispredicted half the time).
func (r *Chunked) Bernoulli(m []float32, keep float64, v float32) {
	t := uint64(keep * (1 << 32))
	vb := math.Float32bits(v)
	r.fill(len(m), func(src *rand.PCG, lo, hi int) {
		for i := lo; i < hi; i += 2 {
			u := src.Uint64()
			m[i] = math.Float32frombits(vb & below(u&0xffffffff, t))
			if i+1 < hi {
				m[i+1] = math.Float32frombits(vb & below(u>>32, t))
			}
		}
	})
}

// below returns all ones when x < t, else 0 (x, t <= 2³²).
func below(x, t uint64) uint32 { return uint32(0) - uint32((x-t)>>63) }
