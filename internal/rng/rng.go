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
// chunks of ChunkLen values, and chunk c of the k-th fill draws from its own
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

// ChunkLen is the number of values a chunk's stream fills.
const ChunkLen = 4096

// Next advances r by one fill and returns that fill's key: every chunk's
// stream of the fill is seeded from it (see BernoulliKey). A GPU draws the
// fill on the device from the key alone.
func (r *Chunked) Next() uint64 {
	r.fills++
	return SplitMix64(r.seed ^ SplitMix64(r.fills))
}

// fillKey calls gen(src, lo, hi) for every chunk [lo, hi) of a buffer of n
// values, with src positioned at the start of that chunk's stream for the
// fill of key k: chunk c draws from the PCG seeded (k, SplitMix64(c)).
func fillKey(k uint64, n int, gen func(src *rand.PCG, lo, hi int)) {
	kernels.ParallelFor((n+ChunkLen-1)/ChunkLen, func(_, c int) {
		var src rand.PCG
		src.Seed(k, SplitMix64(uint64(c)))
		gen(&src, c*ChunkLen, min((c+1)*ChunkLen, n))
	})
}

// Normals fills x with independent N(0, 1) draws.
func (r *Chunked) Normals(x []float32) {
	fillKey(r.Next(), len(x), func(src *rand.PCG, lo, hi int) {
		g := rand.New(src)
		for i := lo; i < hi; i++ {
			x[i] = float32(g.NormFloat64())
		}
	})
}

// Bernoulli sets each m[i] to v with probability keep, else to 0.
func (r *Chunked) Bernoulli(m []float32, keep float64, v float32) {
	BernoulliKey(m, r.Next(), Threshold(keep), v)
}

// Threshold is the integer form of a probability keep in [0, 1] that
// BernoulliKey compares 32-bit draws with: keep·2³², at most 2³².
func Threshold(keep float64) uint64 { return uint64(keep * (1 << 32)) }

// BernoulliKey is the fill of Chunked.Bernoulli with key k: m[i] = v where
// a 32-bit draw is below t (Threshold), else +0. Each 64-bit draw of a
// chunk's PCG decides two entries, its low half the first (branch-free:
// random branches would be mispredicted half the time). The GPU kernel
// bernoulli_pcg (cuda/kernels.cu) computes the same bits.
func BernoulliKey(m []float32, k, t uint64, v float32) {
	vb := math.Float32bits(v)
	fillKey(k, len(m), func(src *rand.PCG, lo, hi int) {
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
