package rng

import "math"

// The GPU's normal draws. Chunked.Normals uses Go's ziggurat, which takes a
// variable number of draws per value, so a chunk's values depend on each
// other and a GPU would fill a chunk with one thread. The device generator
// is counter-based instead: value i is a pure function of (key, i), every
// thread draws its own, and this file is its definition, against which the
// CUDA kernel normals_philox (cuda/kernels.cu) is tested. A GPU run
// therefore draws other normals than a CPU run of the same seed, with the
// same distribution, and the same ones on every GPU run of that seed.

// Philox4x32-10's constants (Salmon et al., "Parallel random numbers: as
// easy as 1, 2, 3", SC 2011; Random123): the round multipliers and the
// Weyl increments of the key schedule.
const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9
	philoxW1 = 0xBB67AE85
)

// Philox4x32 returns Philox4x32-10 of counter ctr under key: ten rounds of
//
//	(c0, c1, c2, c3) ← (hi(M1·c2) ⊕ c1 ⊕ k0, lo(M1·c2), hi(M0·c0) ⊕ c3 ⊕ k1, lo(M0·c0))
//
// with the key bumped by (W0, W1) between rounds.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	c, k := ctr, key
	for r := 0; r < 10; r++ {
		if r > 0 {
			k[0] += philoxW0
			k[1] += philoxW1
		}
		p0 := uint64(philoxM0) * uint64(c[0])
		p1 := uint64(philoxM1) * uint64(c[2])
		c = [4]uint32{uint32(p1>>32) ^ c[1] ^ k[0], uint32(p1), uint32(p0>>32) ^ c[3] ^ k[1], uint32(p0)}
	}
	return c
}

// PhiloxNormals fills x with the N(0, 1) draws of the device generator for
// key k. Values 4b…4b+3 come from block b = Philox4x32((b mod 2³², b / 2³²,
// 0, 0), (k mod 2³², k / 2³²)) = (w0, w1, w2, w3) by two Box–Muller
// transforms in float64:
//
//	u(w) = (w + ½)·2⁻³² ∈ (0, 1)
//	x[4b]   = r₀·cos θ₀,  x[4b+1] = r₀·sin θ₀,  r₀ = √(−2 ln u(w0)),  θ₀ = 2π·u(w1)
//	x[4b+2] = r₁·cos θ₁,  x[4b+3] = r₁·sin θ₁,  r₁ = √(−2 ln u(w2)),  θ₁ = 2π·u(w3)
//
// rounded to float32. A GPU's log, sin and cos may differ from Go's in the
// last bit of a float64, which almost never survives the rounding to
// float32; the tests allow 1e-6.
func PhiloxNormals(x []float32, k uint64) {
	key := [2]uint32{uint32(k), uint32(k >> 32)}
	for b := 0; 4*b < len(x); b++ {
		w := Philox4x32([4]uint32{uint32(b), uint32(uint64(b) >> 32), 0, 0}, key)
		z := boxMuller(w)
		copy(x[4*b:], z[:])
	}
}

// boxMuller turns a block's four words into four normals (see PhiloxNormals).
func boxMuller(w [4]uint32) [4]float32 {
	u := func(v uint32) float64 { return (float64(v) + 0.5) * (1.0 / (1 << 32)) }
	var z [4]float32
	for p := 0; p < 2; p++ {
		r := math.Sqrt(-2 * math.Log(u(w[2*p])))
		s, c := math.Sincos(2 * math.Pi * u(w[2*p+1]))
		z[2*p], z[2*p+1] = float32(r*c), float32(r*s)
	}
	return z
}
