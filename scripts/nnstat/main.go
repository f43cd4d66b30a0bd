// Command nnstat prints, for the datasets the defaults are measured on, the
// data's scale (vat.DataScale) and the distance from a sample to its
// nearest neighbour in the training set (median, 10th and 90th percentile;
// over every sample of the moons and the blobs, over the first 300 of
// MNIST's 60,000): the statistics the README compares with the ε that
// work on each.
//
//	go run ./scripts/nnstat
package main

import (
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/org/vat"
	"github.com/org/vat/internal/toydata"
	"github.com/org/vat/mnist"
)

func main() {
	mx, _ := toydata.Moons(1000, 0.1, 1)
	bx, _ := toydata.Blobs(3000, 20, 3, 3, 1)
	train, _, err := mnist.Load("")
	if err != nil {
		fmt.Fprintln(os.Stderr, "nnstat:", err)
		os.Exit(1)
	}
	for _, d := range []struct {
		name    string
		x       []float32
		dim, of int
	}{{"two moons", mx, 2, 1000}, {"20-D blobs", bx, 20, 3000}, {"MNIST", train.Images, 784, 300}} {
		u, err := vat.NewUnlabeled(d.x, []int{d.dim})
		if err != nil {
			fmt.Fprintln(os.Stderr, "nnstat:", err)
			os.Exit(1)
		}
		nn := nearest(d.x, d.dim, d.of)
		fmt.Printf("%-10s scale %.3f  nearest neighbour: median %.3f (10th-90th percentile %.3f-%.3f)\n",
			d.name, vat.DataScale(u), nn[len(nn)/2], nn[len(nn)/10], nn[9*len(nn)/10])
	}
}

// nearest returns, sorted, the distance of each of the first n samples of
// x (rows of dim) to its nearest other sample, in float64.
func nearest(x []float32, dim, n int) []float64 {
	all := len(x) / dim
	n = min(n, all)
	out := make([]float64, n)
	for i := range out {
		xi, best := x[i*dim:(i+1)*dim], math.Inf(1)
		for j := 0; j < all; j++ {
			if j == i {
				continue
			}
			s := 0.0
			for k, v := range x[j*dim : (j+1)*dim] {
				t := float64(xi[k] - v)
				s += t * t
			}
			best = min(best, s)
		}
		out[i] = math.Sqrt(best)
	}
	sort.Float64s(out)
	return out
}
