//go:build cuda

package cuda

import (
	"math"
	"math/rand/v2"
	"testing"
)

// cuDNN's convolutions and pooling against a direct float64 computation
// from the definition, on fresh random inputs: relative 1e-4 of the
// output's scale, as the cuDNN issue asks.

// convRef computes the three directions of a "valid" stride-1 convolution
// from its definition, in float64.
func convRef(sh ConvShape, x, w, gy []float32) (y, gx, gw []float32) {
	oh, ow := sh.H-sh.KH+1, sh.W-sh.KW+1
	ys := make([]float64, sh.N*sh.F*oh*ow)
	gxs := make([]float64, len(x))
	gws := make([]float64, len(w))
	for n := 0; n < sh.N; n++ {
		for f := 0; f < sh.F; f++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					yi := ((n*sh.F+f)*oh+i)*ow + j
					for c := 0; c < sh.C; c++ {
						for p := 0; p < sh.KH; p++ {
							for q := 0; q < sh.KW; q++ {
								xi := ((n*sh.C+c)*sh.H+i+p)*sh.W + j + q
								wi := ((f*sh.C+c)*sh.KH+p)*sh.KW + q
								ys[yi] += float64(x[xi]) * float64(w[wi])
								gxs[xi] += float64(w[wi]) * float64(gy[yi])
								gws[wi] += float64(x[xi]) * float64(gy[yi])
							}
						}
					}
				}
			}
		}
	}
	to32 := func(s []float64) []float32 {
		out := make([]float32, len(s))
		for i, v := range s {
			out[i] = float32(v)
		}
		return out
	}
	return to32(ys), to32(gxs), to32(gws)
}

// scaleOf is the largest magnitude in s (at least 1e-3).
func scaleOf(s []float32) float64 {
	m := 1e-3
	for _, v := range s {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

func TestDNNConvolution(t *testing.T) {
	d := open(t)
	t.Logf("cuDNN %d", DNNVersion())
	rng := rand.New(rand.NewPCG(5, 5))
	for _, sh := range []ConvShape{
		{N: 8, C: 1, H: 28, W: 28, F: 32, KH: 3, KW: 3},  // the network's conv1
		{N: 4, C: 32, H: 26, W: 26, F: 32, KH: 3, KW: 3}, // conv2
		{N: 3, C: 3, H: 9, W: 7, F: 4, KH: 2, KW: 4},     // odd sizes
		{N: 1, C: 2, H: 3, W: 3, F: 1, KH: 3, KW: 3},     // one output pixel
	} {
		oh, ow := sh.H-sh.KH+1, sh.W-sh.KW+1
		x := randSlice(rng, sh.N*sh.C*sh.H*sh.W)
		w := randSlice(rng, sh.F*sh.C*sh.KH*sh.KW)
		gy := randSlice(rng, sh.N*sh.F*oh*ow)
		y, gx, gw := convRef(sh, x, w, gy)
		xm, wm, gym := upload(t, d, x), upload(t, d, w), upload(t, d, gy)
		ym, gxm, gwm := upload(t, d, make([]float32, len(y))), upload(t, d, make([]float32, len(x))), upload(t, d, make([]float32, len(w)))
		if err := d.ConvForward(xm, wm, ym, sh); err != nil {
			t.Fatal(err)
		}
		if err := d.ConvBackwardData(wm, gym, gxm, sh); err != nil {
			t.Fatal(err)
		}
		if err := d.ConvBackwardFilter(xm, gym, gwm, sh); err != nil {
			t.Fatal(err)
		}
		compare(t, "ConvForward "+sh.String(), download(t, d, ym), y, scaleOf(y))
		compare(t, "ConvBackwardData "+sh.String(), download(t, d, gxm), gx, scaleOf(gx))
		compare(t, "ConvBackwardFilter "+sh.String(), download(t, d, gwm), gw, scaleOf(gw))
		algo, ws, err := d.ConvAlgorithms(sh)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v: algorithms forward %d, backward data %d, backward filter %d; workspace %v bytes", sh, algo[0], algo[1], algo[2], ws)

		// Deterministic: a second backward-filter pass gives the same bits.
		again := upload(t, d, make([]float32, len(w)))
		if err := d.ConvBackwardFilter(xm, gym, again, sh); err != nil {
			t.Fatal(err)
		}
		first, second := download(t, d, gwm), download(t, d, again)
		for i := range first {
			if first[i] != second[i] {
				t.Fatalf("ConvBackwardFilter %v is not deterministic: [%d] %v then %v", sh, i, first[i], second[i])
			}
		}
	}
}

func TestDNNConvolutionRejectsBadShapes(t *testing.T) {
	d := open(t)
	m := upload(t, d, make([]float32, 16))
	for _, sh := range []ConvShape{{N: 1, C: 1, H: 2, W: 2, F: 1, KH: 3, KW: 3}, {N: 0, C: 1, H: 4, W: 4, F: 1, KH: 3, KW: 3}} {
		if err := d.ConvForward(m, m, m, sh); err == nil {
			t.Errorf("ConvForward %v: no error", sh)
		}
	}
	if err := d.DNNMaxPool2(m, m, 1, 1, 3, 4); err == nil {
		t.Error("DNNMaxPool2 of odd height: no error")
	}
}

// Pooling: the same windows as the package's own kernels, on inputs without
// ties (random floats), and on ties, where the gradient must go to exactly
// one maximal input of each window, the first in row-major order, as the
// CPU op does.
func TestDNNMaxPool(t *testing.T) {
	d := open(t)
	rng := rand.New(rand.NewPCG(6, 6))
	for _, ties := range []bool{false, true} {
		n, c, h, w := 3, 4, 6, 8
		x, gy := randSlice(rng, n*c*h*w), randSlice(rng, n*c*(h/2)*(w/2))
		if ties {
			for i := range x {
				x[i] = float32(rng.IntN(2))
			}
		}
		xm, gym := upload(t, d, x), upload(t, d, gy)
		ym, gxm := upload(t, d, make([]float32, len(gy))), upload(t, d, make([]float32, len(x)))
		if err := d.DNNMaxPool2(xm, ym, n, c, h, w); err != nil {
			t.Fatal(err)
		}
		if err := d.DNNMaxPool2Grad(xm, ym, gym, gxm, n, c, h, w); err != nil {
			t.Fatal(err)
		}
		y, gx := download(t, d, ym), download(t, d, gxm)
		wantY, wantGX := make([]float32, len(y)), make([]float32, len(x))
		for pl := 0; pl < n*c; pl++ {
			for i := 0; i < h/2; i++ {
				for j := 0; j < w/2; j++ {
					o := (pl*(h/2)+i)*(w/2) + j
					best, at := float32(math.Inf(-1)), 0
					for _, off := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
						k := (pl*h+2*i+off[0])*w + 2*j + off[1]
						if x[k] > best {
							best, at = x[k], k
						}
					}
					wantY[o], wantGX[at] = best, gy[o]
				}
			}
		}
		compare(t, "DNNMaxPool2", y, wantY, 1)
		what := "DNNMaxPool2Grad"
		if ties {
			what += " with ties"
		}
		compare(t, what, gx, wantGX, 1)
	}
}
