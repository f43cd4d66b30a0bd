package vat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/org/vat/internal/toydata"
)

// writeBlobsCSV writes n blobs samples as a CSV with a header f1..f20 and,
// when labeled, a "class" column of names in the middle.
func writeBlobsCSV(t testing.TB, path string, n int, seed uint64, labeled bool) {
	x, l := toydata.Blobs(n, 20, 3, 3, seed)
	var b strings.Builder
	for j := 0; j < 20; j++ {
		if j == 10 && labeled {
			b.WriteString("class,")
		}
		fmt.Fprintf(&b, "f%d", j+1)
		if j < 19 {
			b.WriteString(",")
		}
	}
	b.WriteString("\n")
	for i := 0; i < n; i++ {
		for j := 0; j < 20; j++ {
			if j == 10 && labeled {
				b.WriteString([]string{"alpha", "beta", "gamma"}[l[i]] + ",")
			}
			fmt.Fprintf(&b, "%g", x[i*20+j])
			if j < 19 {
				b.WriteString(",")
			}
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCSVTrainsSemiSupervised: the 20-D blobs as CSV files (30 labeled
// rows with class names, 2,970 unlabeled rows, a test file) train
// semi-supervised VAT through LoadCSV and a standardization fitted on the
// training rows, and beat training on the 30 labels alone.
func TestCSVTrainsSemiSupervised(t *testing.T) {
	dir := t.TempDir()
	all := filepath.Join(dir, "train.csv")
	writeBlobsCSV(t, all, 3000, 1, true)
	writeBlobsCSV(t, filepath.Join(dir, "pool.csv"), 2970, 3, false)
	writeBlobsCSV(t, filepath.Join(dir, "test.csv"), 1500, 2, true)
	train, err := LoadCSV(all, CSVOptions{Label: "class"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(train.ClassNames, []string{"alpha", "beta", "gamma"}) || train.Len() != 3000 || len(train.FeatureNames) != 20 || train.FeatureNames[10] != "f11" {
		t.Fatalf("classes %v, %d samples, features %v", train.ClassNames, train.Len(), train.FeatureNames)
	}
	split, err := SplitLabeled(train, 30, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := LoadCSV(filepath.Join(dir, "pool.csv"), CSVOptions{Unlabeled: true})
	if err != nil {
		t.Fatal(err)
	}
	test, err := LoadCSV(filepath.Join(dir, "test.csv"), CSVOptions{Label: "class", Classes: train.ClassNames})
	if err != nil {
		t.Fatal(err)
	}
	unlabeled, err := Concat(split.Unlabeled, pool)
	if err != nil {
		t.Fatal(err)
	}
	std, err := FitStandardization(unlabeled)
	if err != nil {
		t.Fatal(err)
	}
	lab, _ := std.Apply(split.Labeled)
	unl, _ := std.Apply(unlabeled)
	tst, _ := std.Apply(test)
	acc := func(v *VATConfig) float64 {
		m, _ := Sequential([]int{20}, 1, Dense(64), ReLU(), Dense(64), ReLU(), Dense(3))
		tr, err := NewSemiTrainer(m, SemiSupervisedConfig{Iterations: 500, LabeledBatch: 30, UnlabeledBatch: 128, VAT: v, EvalEvery: 500, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		evals, err := tr.Fit(context.Background(), lab, unl, tst)
		if err != nil {
			t.Fatal(err)
		}
		return evals[0].TestAccuracy
	}
	sup, withVAT := acc(nil), acc(&VATConfig{})
	t.Logf("supervised %.1f %%, default VAT %.1f %%", 100*sup, 100*withVAT)
	if withVAT < sup+0.03 {
		t.Errorf("default VAT %.1f %%, supervised %.1f %%", 100*withVAT, 100*sup)
	}
	// The standardization is the training rows': each feature of the
	// unlabeled pool has mean 0 and standard deviation 1 after it.
	s2, _ := FitStandardization(unl)
	for j := range s2.Mean {
		if abs(s2.Mean[j]) > 1e-5 || abs(s2.Std[j]-1) > 1e-5 {
			t.Fatalf("feature %d after standardization: mean %v, std %v", j, s2.Mean[j], s2.Std[j])
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestLoadCSVRejects: every broken table is one error line naming the
// file, and the row and column where there is one.
func TestLoadCSVRejects(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text string
		opts       CSVOptions
		want       string
	}{
		{"empty file", "", CSVOptions{Label: "y"}, "no rows"},
		{"header only", "a,b,y\n", CSVOptions{Label: "y"}, "no data rows"},
		{"missing cell", "a,b,y\n1,2,0\n3,,1\n", CSVOptions{Label: "y"}, `row 3, column 2 ("b"): missing value`},
		{"not a number", "a,b,y\n1,2,0\n3,x4,1\n", CSVOptions{Label: "y"}, `row 3, column 2 ("b"): "x4" is not a finite number`},
		{"NaN", "a,b,y\n1,NaN,0\n", CSVOptions{Label: "y"}, "not a finite number"},
		{"infinity", "a,b,y\n1,-Inf,0\n", CSVOptions{Label: "y"}, "not a finite number"},
		{"short row", "a,b,y\n1,2,0\n3,1\n", CSVOptions{Label: "y"}, "row 3"},
		{"missing label", "a,b,y\n1,2,\n", CSVOptions{Label: "y"}, "label is missing"},
		{"unknown class", "a,b,y\n1,2,cat\n", CSVOptions{Label: "y", Classes: []string{"dog"}}, `label "cat" is not one of the classes dog`},
		{"no such column", "a,b\n1,2\n", CSVOptions{Label: "y"}, `no column "y"`},
		{"column out of range", "1,2\n", CSVOptions{LabelColumn: 3, NoHeader: true}, "LabelColumn = 3"},
		{"too many rows", "a,y\n1,0\n2,1\n3,0\n", CSVOptions{Label: "y", MaxRows: 2}, "more than 2 data rows"},
		{"too large", "a,y\n1,0\n2,1\n", CSVOptions{Label: "y", MaxBytes: 5}, "over the 5-byte limit"},
		{"bad quotes", "a,y\n\"1,0\n", CSVOptions{Label: "y"}, "row"},
		{"label only", "y\n1\n", CSVOptions{Label: "y"}, "no feature columns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".csv")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCSV(path, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("LoadCSV: %v, want one line naming the file and containing %q", err, tc.want)
			}
		})
	}
	for _, opts := range []CSVOptions{{}, {Label: "y", Unlabeled: true}, {LabelColumn: -1}, {Label: "y", NoHeader: true}, {Label: "y", Comma: '"'}} {
		if _, err := LoadCSV(filepath.Join(dir, "x.csv"), opts); err == nil || !strings.Contains(err.Error(), "CSVOptions") {
			t.Errorf("LoadCSV with %+v: %v, want an error naming the option", opts, err)
		}
	}
	// Integer labels are their own classes, sorted numerically; no header,
	// a semicolon, and the label in the first column.
	path := filepath.Join(dir, "ints.csv")
	os.WriteFile(path, []byte("10;0.5;1\n2;1.5;2\n10;2.5;3\n"), 0o644)
	d, err := LoadCSV(path, CSVOptions{LabelColumn: 1, NoHeader: true, Comma: ';'})
	if err != nil || !slices.Equal(d.ClassNames, []string{"2", "10"}) || !slices.Equal(d.Labels, []int{1, 0, 1}) || !slices.Equal(d.Images, []float32{0.5, 1, 1.5, 2, 2.5, 3}) {
		t.Fatalf("integer labels: %+v, %v", d, err)
	}
}

// FuzzLoadCSV: whatever the bytes, LoadCSV returns a dataset whose labels
// and values fit, or an error naming the file; it never panics. The seed
// corpus runs in every go test.
func FuzzLoadCSV(f *testing.F) {
	for _, s := range []string{"a,b,y\n1,2,0\n3,4,1\n", "a,y\n1,x\n", "y\n\n", "a,b,y\n1,\"2\n", "1,2,3\n4,5,6\n", "a,b,y\n1e39,2,0\n", ",,,\n,,,\n"} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(2))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		path := filepath.Join(dir, "fuzz.csv")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := []CSVOptions{{Label: "y"}, {LabelColumn: 2, NoHeader: true}, {Unlabeled: true}}[mode%3]
		opts.MaxRows = 1000
		d, err := LoadCSV(path, opts)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error without the file's name: %v", err)
			}
			return
		}
		px := size(d.shape())
		if d.Len() == 0 || len(d.Images) != d.Len()*px || nonFinite(d.Images) >= 0 {
			t.Fatalf("dataset of %d samples of %d with %d values", d.Len(), px, len(d.Images))
		}
		if d.Labeled() {
			for _, l := range d.Labels {
				if l < 0 || l >= len(d.ClassNames) {
					t.Fatalf("label %d of %d classes", l, len(d.ClassNames))
				}
			}
		}
	})
}
