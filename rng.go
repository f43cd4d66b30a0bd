package vat

import "math/rand/v2"

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
