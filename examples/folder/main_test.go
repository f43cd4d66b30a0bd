package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/org/vat"
)

// writePNG writes MNIST image i of d as a grayscale PNG.
func writePNG(t *testing.T, path string, d *vat.Dataset, i int) {
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for p := 0; p < 784; p++ {
		img.Pix[p] = uint8(d.Images[i*784+p]*255 + 0.5)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFolderEndToEnd: a folder of MNIST digits as PNGs (three classes, 10
// labeled images each, 300 unlabeled), trained, saved, loaded again in a
// second run that predicts 60 new digits into a CSV, better than chance;
// with the default ε and with -select-eps.
func TestFolderEndToEnd(t *testing.T) {
	train, test, err := vat.LoadMNIST("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	names := map[int]string{0: "zero", 1: "one", 7: "seven"}
	count := map[int]int{}
	unl := 0
	for i := 0; i < train.Len() && (len(count) < 3 || count[0] < 10 || count[1] < 10 || count[7] < 10 || unl < 300); i++ {
		l := train.Labels[i]
		name, ok := names[l]
		if !ok {
			continue
		}
		if count[l] < 10 {
			writePNG(t, filepath.Join(dir, "photos", name, "img"+strconv.Itoa(i)+".png"), train, i)
			count[l]++
		} else if unl < 300 {
			writePNG(t, filepath.Join(dir, "photos", "unlabeled", "u"+strconv.Itoa(i)+".png"), train, i)
			unl++
		}
	}
	want := map[string]string{}
	n := 0
	for i := 0; i < test.Len() && n < 60; i++ {
		if name, ok := names[test.Labels[i]]; ok {
			f := "new" + strconv.Itoa(i) + ".png"
			writePNG(t, filepath.Join(dir, "new", f), test, i)
			want[f] = name
			n++
		}
	}
	for _, extra := range [][]string{nil, {"-eps-search=false"}} {
		t.Run(strings.Join(append([]string{"flags"}, extra...), " "), func(t *testing.T) {
			model := filepath.Join(dir, "digits.safetensors")
			var stdout, stderr bytes.Buffer
			args := append([]string{"-train", filepath.Join(dir, "photos"), "-unlabeled", "unlabeled", "-iterations", "150",
				"-batch", "15", "-model", model}, extra...)
			if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
				t.Fatalf("training: exit %d: %s", code, stderr.String())
			}
			t.Logf("training's output:\n%s", stdout.String())
			if !strings.Contains(stdout.String(), "30 labeled images in 3 classes (one, seven, zero), 300 unlabeled") {
				t.Errorf("training output: %s", stdout.String())
			}
			search := len(extra) == 0
			if n := strings.Count(stdout.String(), "held-out accuracy"); n != map[bool]int{true: 3, false: 0}[search] || strings.Contains(stdout.String(), "(chosen)") != search {
				t.Errorf("ε search %v: %d candidates in the training output: %s", search, n, stdout.String())
			}
			predictions := filepath.Join(dir, "predictions.csv")
			stdout.Reset()
			if code := run(context.Background(), []string{"-model", model, "-predict", filepath.Join(dir, "new"), "-csv", predictions}, &stdout, &stderr); code != 0 {
				t.Fatalf("prediction: exit %d: %s", code, stderr.String())
			}
			t.Logf("prediction's output:\n%s", stdout.String())
			f, err := os.Open(predictions)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rows, err := csv.NewReader(f).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 61 || strings.Join(rows[0], ",") != "file,class,probability" {
				t.Fatalf("%d rows, header %v", len(rows), rows[0])
			}
			right := 0
			for _, r := range rows[1:] {
				if want[r[0]] == r[1] {
					right++
				}
			}
			t.Logf("%d of 60 new digits right", right)
			if right < 40 {
				t.Errorf("%d of 60 new digits right: want at least 40 (chance is 20)", right)
			}

		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give -train"},
		{[]string{"-train", "x", "-size", "32"}, "-size"},
		{[]string{"-train", "x", "-iterations", "0"}, "-iterations"},
		{[]string{"-train", "/nonexistent"}, "nonexistent"},
		{[]string{"-predict", "x", "-model", "/nonexistent.safetensors"}, "nonexistent"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want one line mentioning %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
