// Command probecheck measures how well VAT's power iteration finds its
// direction in float32, on a trained (confident) preset model: for a few
// test images it compares r_adv from the exact probe and from the
// finite-difference probe at several ξ with the same power iteration
// computed in float64, whose Jacobian comes from central differences of a
// float64 copy of the network. One iteration, the same random start.
//
//	go run ./scripts/probecheck -weights out/plain.safetensors [-images 8]
package main

import (
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/org/vat"
	"github.com/org/vat/internal/ref64"
	"github.com/org/vat/internal/rng"
	"github.com/org/vat/mnist"
)

func main() {
	weights := flag.String("weights", "", "weights of the preset (examples/mnist -save)")
	images := flag.Int("images", 8, "test images")
	seed := flag.Uint64("seed", 1, "seed of the random start")
	flag.Parse()
	if err := run(*weights, *images, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "probecheck:", err)
		os.Exit(1)
	}
}

func run(path string, n int, seed uint64) error {
	m, err := vat.LoadModel(path)
	if err != nil {
		return err
	}
	_, test, err := mnist.Load("")
	if err != nil {
		return err
	}
	x := test.Head(n).Images
	const px = 784
	// The start Directions draws (one batch of n <= 500 images).
	noise := make([]float32, len(x))
	g := rng.NewChunked(rng.SplitMix64(seed ^ rng.SplitMix64(rng.Noise)))
	g.Normals(noise)

	probes := []struct {
		name string
		cfg  vat.VATConfig
	}{
		{"exact", vat.VATConfig{Probe: vat.Exact}},
		{"finite-difference ξ=1e-6", vat.VATConfig{Xi: 1e-6}},
		{"finite-difference ξ=1e-3", vat.VATConfig{Xi: 1e-3}},
		{"finite-difference ξ=10", vat.VATConfig{Xi: 10}},
	}
	dirs := make([][]float32, len(probes))
	for i, p := range probes {
		if dirs[i], err = m.Directions(x, nil, vat.VirtualAdversarial, vat.RobustnessConfig{VAT: p.cfg, Seed: seed}); err != nil {
			return err
		}
	}
	net := newNet(m)
	sum := make([]float64, len(probes))
	fmt.Printf("%-6s %8s", "image", "max p")
	for _, p := range probes {
		fmt.Printf(" %26s", p.name)
	}
	fmt.Println()
	for i := 0; i < n; i++ {
		xi := make([]float64, px)
		d := make([]float64, px)
		for j := range xi {
			xi[j], d[j] = float64(x[i*px+j]), float64(noise[i*px+j])
		}
		ref64.Normalize(d)
		jac := net.jacobian(xi)
		p := ref64.Softmax(net.logits(xi))
		hd := ref64.HessVec(jac, p, d)
		// The finite-difference probe differentiates through d's
		// normalization, which removes the component along d.
		proj := append([]float64(nil), hd...)
		var dot float64
		for j := range proj {
			dot += proj[j] * d[j]
		}
		for j := range proj {
			proj[j] -= dot * d[j]
		}
		fmt.Printf("%-6d %8.5f", i, maxOf(p))
		for k := range probes {
			ref := proj
			if k == 0 {
				ref = hd
			}
			c := ref64.Cosine(ref, dirs[k][i*px:(i+1)*px])
			sum[k] += c
			fmt.Printf(" %26.4f", c)
		}
		fmt.Println()
	}
	fmt.Printf("%-15s", "mean cosine")
	for k := range probes {
		fmt.Printf(" %26.4f", sum[k]/float64(n))
	}
	fmt.Println()
	return nil
}

// net is the preset (conv 32 3×3, ReLU, conv 32 3×3, ReLU, max-pool 2×2,
// dense 128, ReLU, dense 10) in float64.
type net struct{ c1, b1, c2, b2, d1, e1, d2, e2 []float64 }

func newNet(m *vat.Model) *net {
	ps := m.Params()
	f := func(i int) []float64 { return ref64.Of(ps[i].Value.Data().([]float32)) }
	return &net{f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7)}
}

func conv(in []float64, c, side int, k, b []float64, f int) []float64 {
	o := side - 2
	out := make([]float64, f*o*o)
	for g := 0; g < f; g++ {
		for i := 0; i < o; i++ {
			for j := 0; j < o; j++ {
				v := b[g]
				for ch := 0; ch < c; ch++ {
					kk, src := k[(g*c+ch)*9:], in[ch*side*side:]
					for a := 0; a < 3; a++ {
						row := src[(i+a)*side+j:]
						v += kk[a*3]*row[0] + kk[a*3+1]*row[1] + kk[a*3+2]*row[2]
					}
				}
				out[(g*o+i)*o+j] = math.Max(v, 0)
			}
		}
	}
	return out
}

func (n *net) logits(x []float64) []float64 {
	h1 := conv(x, 1, 28, n.c1, n.b1, 32)
	h2 := conv(h1, 32, 26, n.c2, n.b2, 32)
	pool := make([]float64, 32*12*12)
	for g := 0; g < 32; g++ {
		for i := 0; i < 12; i++ {
			for j := 0; j < 12; j++ {
				at := func(a, b int) float64 { return h2[(g*24+2*i+a)*24+2*j+b] }
				pool[(g*12+i)*12+j] = math.Max(math.Max(at(0, 0), at(0, 1)), math.Max(at(1, 0), at(1, 1)))
			}
		}
	}
	h := make([]float64, 128)
	for k := range h {
		h[k] = n.e1[k]
	}
	for i, v := range pool {
		if v != 0 {
			row := n.d1[i*128 : (i+1)*128]
			for k := range h {
				h[k] += v * row[k]
			}
		}
	}
	z := make([]float64, 10)
	for c := range z {
		z[c] = n.e2[c]
		for k, v := range h {
			z[c] += math.Max(v, 0) * n.d2[k*10+c]
		}
	}
	return z
}

// jacobian returns ∂logits/∂x (784 rows of 10) by central differences.
func (n *net) jacobian(x []float64) [][]float64 {
	const h = 1e-6
	jac := make([][]float64, len(x))
	y := append([]float64(nil), x...)
	for j := range x {
		y[j] = x[j] + h
		zp := n.logits(y)
		y[j] = x[j] - h
		zm := n.logits(y)
		y[j] = x[j]
		jac[j] = make([]float64, 10)
		for c := range zp {
			jac[j][c] = (zp[c] - zm[c]) / (2 * h)
		}
	}
	return jac
}

func maxOf(p []float64) float64 {
	m := 0.0
	for _, v := range p {
		m = math.Max(m, v)
	}
	return m
}
