// Package toydata makes the small synthetic datasets the defaults are
// measured on (tests and scripts/defaults): two moons and Gaussian blobs.
package toydata

import (
	"math"
	"math/rand/v2"
)

// Moons returns n points of the two-moons set: two interleaved half
// circles of radius 1, the second shifted by (1, 0.5) and flipped, with
// Gaussian noise of standard deviation noise on each coordinate;
// alternate points belong to class 0 and 1. x holds the points as
// 2-vectors one after the other.
func Moons(n int, noise float64, seed uint64) (x []float32, labels []int) {
	r := rand.New(rand.NewPCG(seed, 7))
	x = make([]float32, 0, 2*n)
	labels = make([]int, n)
	for i := range n {
		a := math.Pi * r.Float64()
		px, py := math.Cos(a), math.Sin(a)
		if i%2 == 1 {
			px, py = 1-px, 0.5-py
			labels[i] = 1
		}
		x = append(x, float32(px+noise*r.NormFloat64()), float32(py+noise*r.NormFloat64()))
	}
	return x, labels
}

// Blobs returns n points of k Gaussian classes in dim dimensions
// (dim >= k): class c is N(sep·e_c, I), e_c the c-th unit vector, and
// points cycle through the classes. With k = 3 and sep = 3 the centers
// are 4.24 apart and the best possible accuracy is about 96.6 %.
func Blobs(n, dim, k int, sep float64, seed uint64) (x []float32, labels []int) {
	r := rand.New(rand.NewPCG(seed, 11))
	x = make([]float32, n*dim)
	labels = make([]int, n)
	for i := range n {
		c := i % k
		labels[i] = c
		for j := 0; j < dim; j++ {
			v := r.NormFloat64()
			if j == c {
				v += sep
			}
			x[i*dim+j] = float32(v)
		}
	}
	return x, labels
}
