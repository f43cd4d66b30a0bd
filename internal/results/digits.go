package results

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// DigitRow is one model's virtual adversarial perturbation of a few test
// digits: r_adv at the shown norm, and the predicted classes before and
// after adding it.
type DigitRow struct {
	Name         string
	RAdv         []float32 // per digit, 28×28
	Clean, Moved []int     // predicted classes of x and of x + r_adv
}

// The picture's geometry: each 28×28 digit drawn at 3×, with a caption
// line under it.
const (
	cell    = 28
	zoom    = 3
	pad     = 6
	caption = 16
	label   = 110 // the left column with the row names
)

// WriteDigits draws a PNG: the first row holds the digits (images, 28×28
// each) with their labels; then, per model, a row of r_adv in a diverging
// colour map (blue negative, white zero, red positive, scaled per digit to
// its largest magnitude) and a row of x + r_adv, captioned with the
// predicted class before → after.
func WriteDigits(path string, images []float32, labels []int, eps float64, rows []DigitRow) error {
	n := len(labels)
	if n == 0 || len(images) != n*cell*cell {
		return fmt.Errorf("digits picture: %d images of %d values", n, len(images))
	}
	cw, ch := cell*zoom+pad, cell*zoom+caption+pad
	img := image.NewRGBA(image.Rect(0, 0, label+n*cw, 2*caption+(1+2*len(rows))*ch))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	text(img, 4, caption-4, fmt.Sprintf("Virtual adversarial perturbations r_adv of L2 norm %g (red +, blue -, per digit at full scale),", eps))
	text(img, 4, 2*caption-4, "and x + r_adv captioned with the predicted class before -> after (! where it changed).")
	y := 2 * caption
	text(img, 4, y+cell*zoom/2, "test digits")
	for i := 0; i < n; i++ {
		gray(img, label+i*cw, y, images[i*cell*cell:(i+1)*cell*cell])
		text(img, label+i*cw, y+cell*zoom+caption-4, fmt.Sprintf("label %d", labels[i]))
	}
	for _, r := range rows {
		y += ch
		text(img, 4, y+cell*zoom/2, r.Name)
		text(img, 4, y+cell*zoom/2+14, "r_adv")
		for i := 0; i < n; i++ {
			diverging(img, label+i*cw, y, r.RAdv[i*cell*cell:(i+1)*cell*cell])
		}
		y += ch
		text(img, 4, y+cell*zoom/2, r.Name)
		text(img, 4, y+cell*zoom/2+14, "x + r_adv")
		for i := 0; i < n; i++ {
			moved := make([]float32, cell*cell)
			for j := range moved {
				moved[j] = images[i*cell*cell+j] + r.RAdv[i*cell*cell+j]
			}
			gray(img, label+i*cw, y, moved)
			mark := ""
			if r.Moved[i] != r.Clean[i] {
				mark = " !"
			}
			text(img, label+i*cw, y+cell*zoom+caption-4, fmt.Sprintf("%d -> %d%s", r.Clean[i], r.Moved[i], mark))
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// gray draws a digit with pixels clipped to [0, 1] (black background).
func gray(img *image.RGBA, x0, y0 int, px []float32) {
	for j, v := range px {
		c := uint8(255 * math.Max(0, math.Min(1, float64(v))))
		block(img, x0+(j%cell)*zoom, y0+(j/cell)*zoom, color.RGBA{c, c, c, 255})
	}
}

// diverging draws a perturbation: blue for negative, white for zero, red
// for positive, at full colour for the largest magnitude.
func diverging(img *image.RGBA, x0, y0 int, px []float32) {
	var top float64
	for _, v := range px {
		top = math.Max(top, math.Abs(float64(v)))
	}
	if top == 0 {
		top = 1
	}
	for j, v := range px {
		t := float64(v) / top
		c := color.RGBA{255, uint8(255 * (1 - math.Abs(t))), uint8(255 * (1 - math.Abs(t))), 255}
		if t < 0 {
			c = color.RGBA{uint8(255 * (1 + t)), uint8(255 * (1 + t)), 255, 255}
		}
		block(img, x0+(j%cell)*zoom, y0+(j/cell)*zoom, c)
	}
}

func block(img *image.RGBA, x, y int, c color.RGBA) {
	for dy := 0; dy < zoom; dy++ {
		for dx := 0; dx < zoom; dx++ {
			img.SetRGBA(x+dx, y+dy, c)
		}
	}
}

func text(img *image.RGBA, x, y int, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
