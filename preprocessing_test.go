package vat

import (
	"image"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/org/vat/internal/safetensors"
)

// TestClassifyImages: a model given a folder's preprocessing classifies
// image.Image values as it classifies the folder's samples, and after Save
// and LoadModel still does (the preprocessing travels in the file).
func TestClassifyImages(t *testing.T) {
	_, test := loadMNIST(t)
	root := t.TempDir()
	writeDigitFolder(t, root, test, 2, 0)
	d, _, err := LoadImageFolder(root, ImageFolderOptions{Width: 20, Height: 20})
	if err != nil {
		t.Fatal(err)
	}
	if d.Preprocessing == nil || d.Preprocessing.Width != 20 || len(d.Preprocessing.ClassNames) != 10 {
		t.Fatalf("the folder's preprocessing: %+v", d.Preprocessing)
	}
	m, err := Sequential([]int{1, 20, 20}, 3, Flatten(), Dense(16), ReLU(), Dense(10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ClassifyImages([]image.Image{image.NewGray(image.Rect(0, 0, 28, 28))}); err == nil || !strings.Contains(err.Error(), "no image preprocessing") {
		t.Fatalf("without preprocessing: %v", err)
	}
	if err := m.SetPreprocessing(*d.Preprocessing); err != nil {
		t.Fatal(err)
	}
	// The folder's files, decoded by the standard library, in the
	// loader's order (classes sorted, files sorted within).
	var imgs []image.Image
	for _, c := range d.ClassNames {
		files, _ := filepath.Glob(filepath.Join(root, c, "*.png"))
		slices.Sort(files)
		for _, f := range files {
			r, _ := os.Open(f)
			img, err := png.Decode(r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, img)
		}
	}
	want, err := m.Predict(d.Images)
	if err != nil {
		t.Fatal(err)
	}
	check := func(m *Model, what string) {
		got, err := m.ClassifyImages(imgs)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range got {
			if p.Class != want[i] || p.Name != d.ClassNames[p.Class] || len(p.Probabilities) != 10 {
				t.Fatalf("%s: image %d: %+v, want class %d", what, i, p, want[i])
			}
		}
	}
	check(m, "set")
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	if p := back.Preprocessing(); p == nil || p.Width != 20 || !slices.Equal(p.ClassNames, d.ClassNames) {
		t.Fatalf("loaded preprocessing %+v", p)
	}
	check(back, "loaded")

	// Preprocessing that does not fit, in the API or in a file.
	for _, p := range []Preprocessing{{Width: 28, Height: 28, Scale: 1}, {Width: 20, Height: 20, RGB: true, Scale: 1}, {Width: 20, Height: 20}, {Width: 20, Height: 20, Scale: 1, ClassNames: []string{"a"}}} {
		if err := m.SetPreprocessing(p); err == nil {
			t.Errorf("SetPreprocessing(%+v) accepted", p)
		}
	}
	f, _ := safetensors.ReadFile(path)
	for _, js := range []string{`{"rgb":false,"width":28,"height":28,"scale":1}`, `{"width":20,"height":20,"scale":1,"extra":1}`, `not json`} {
		meta := maps.Clone(f.Metadata)
		meta[metaPrep] = js
		bad := filepath.Join(t.TempDir(), "bad.safetensors")
		safetensors.WriteFile(bad, &safetensors.File{Metadata: meta, Tensors: f.Tensors})
		if _, err := LoadModel(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "preprocessing") {
			t.Errorf("preprocessing %s: %v", js, err)
		}
	}
	if _, err := m.Classify([][]float32{make([]float32, 3)}); err == nil || !strings.Contains(err.Error(), "sample 0") {
		t.Errorf("Classify of a short sample: %v", err)
	}
}
