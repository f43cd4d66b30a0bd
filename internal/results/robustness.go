package results

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/org/vat"
)

// Robustness is the content of robustness.json: each run's test accuracy
// under perturbations of growing norm, per direction.
type Robustness struct {
	Runs    []RobustnessRun `json:"runs"`
	Test    int             `json:"test_images"`
	Xi      float64         `json:"xi"`   // the power iteration's ξ (virtual adversarial directions)
	Ip      int             `json:"ip"`   // its iterations
	Seed    uint64          `json:"seed"` // of the random directions and the power iteration's start
	Machine Machine         `json:"machine"`
	Command []string        `json:"command"`
}

// RobustnessRun is one model's measurements.
type RobustnessRun struct {
	Name   string                `json:"name"`
	Points []vat.RobustnessPoint `json:"points"`
}

var directions = []vat.Direction{vat.Random, vat.VirtualAdversarial, vat.Adversarial}

// PrintRobustness writes one table per direction: a row per norm, a column
// per run, test accuracy in %.
func PrintRobustness(w io.Writer, r *Robustness) {
	for _, dir := range directions {
		var eps []float64
		cols := map[string]map[float64]float64{}
		for _, run := range r.Runs {
			cols[run.Name] = map[float64]float64{}
			for _, p := range run.Points {
				if p.Direction != dir {
					continue
				}
				if len(cols) == 1 {
					eps = append(eps, p.Eps)
				}
				cols[run.Name][p.Eps] = p.Accuracy
			}
		}
		if len(eps) == 0 {
			continue
		}
		fmt.Fprintf(w, "\ntest accuracy (%%) under %s perturbations of L2 norm ε\n%6s", dir, "ε")
		for _, run := range r.Runs {
			fmt.Fprintf(w, " %12s", run.Name)
		}
		fmt.Fprintln(w)
		for _, e := range eps {
			fmt.Fprintf(w, "%6.2f", e)
			for _, run := range r.Runs {
				fmt.Fprintf(w, " %11.2f%%", 100*cols[run.Name][e])
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "(%d test images)\n", r.Test)
}

// Write stores robustness.json and robustness.png in dir.
func (r *Robustness) Write(dir string) error {
	r.Machine, r.Command = ThisMachine(), os.Args
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the robustness report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "robustness.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return r.plot(filepath.Join(dir, "robustness.png"))
}

// plot draws one panel per direction: test accuracy against ε, one curve
// per run.
func (r *Robustness) plot(path string) error {
	const w, h = 5 * vg.Inch, 3.6 * vg.Inch
	img := vgimg.New(w*vg.Length(len(directions)), h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(directions)}
	plots := make([][]*plot.Plot, 1)
	for _, dir := range directions {
		p := plot.New()
		p.Title.Text = dir.String() + " direction"
		p.X.Label.Text = "perturbation norm ε (L2)"
		p.Y.Label.Text = "test accuracy (%)"
		p.Y.Min, p.Y.Max = 0, 100
		var lines []interface{}
		for _, run := range r.Runs {
			var pts plotter.XYs
			for _, pt := range run.Points {
				if pt.Direction == dir {
					pts = append(pts, plotter.XY{X: pt.Eps, Y: 100 * pt.Accuracy})
				}
			}
			lines = append(lines, run.Name, pts)
		}
		if err := plotutil.AddLinePoints(p, lines...); err != nil {
			return fmt.Errorf("plotting: %w", err)
		}
		p.Legend.Top = false
		p.Legend.Left = true
		plots[0] = append(plots[0], p)
	}
	canvases := plot.Align(plots, tiles, dc)
	for j, p := range plots[0] {
		p.Draw(canvases[0][j])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
