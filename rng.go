package vat

import (
	"math"
	"math/rand/v2"
)

// Every random number of a run comes from one seed, split into independent
// streams so that, for example, turning dropout on does not change the
// shuffling order or the initial weights.
const (
	streamInit uint64 = iota + 1
	streamShuffle
	streamDropout
	streamNoise
)

// splitmix64 is a bijective mixer (Steele et al., "Fast splittable
// pseudorandom number generators", 2014) used to derive stream seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// newRNG returns the generator of stream s (and sub-stream sub) of seed.
func newRNG(seed, s, sub uint64) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix64(seed^splitmix64(s)), splitmix64(sub+s<<32)))
}

// chunkedRNG fills large buffers (dropout masks, VAT noise) with random
// numbers on all cores, and still deterministically: the buffer is cut into
// chunks of rngChunk values, and chunk c of the k-th fill draws from its own
// PCG stream, seeded by (seed, k, c). Which goroutine fills which chunk does
// not matter.
type chunkedRNG struct {
	seed  uint64
	fills uint64
}

const rngChunk = 4096

// fill calls gen(src, chunk) for every chunk of a buffer of n values, with
// src positioned at the start of that chunk's stream.
func (r *chunkedRNG) fill(n int, gen func(src *rand.PCG, lo, hi int)) {
	r.fills++
	k := splitmix64(r.seed ^ splitmix64(r.fills))
	parallelFor((n+rngChunk-1)/rngChunk, func(_, c int) {
		var src rand.PCG
		src.Seed(k, splitmix64(uint64(c)))
		gen(&src, c*rngChunk, min((c+1)*rngChunk, n))
	})
}

// normals fills x with independent N(0, 1) draws.
func (r *chunkedRNG) normals(x []float32) {
	r.fill(len(x), func(src *rand.PCG, lo, hi int) {
		g := rand.New(src)
		for i := lo; i < hi; i++ {
			x[i] = float32(g.NormFloat64())
		}
	})
}

// bernoulli sets each m[i] to v with probability keep, else to 0. Each
// 64-bit draw decides two entries, comparing its 32-bit halves with keep·2³²
// (branch-free: random branches would be mispredicted half the time).
func (r *chunkedRNG) bernoulli(m []float32, keep float64, v float32) {
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
