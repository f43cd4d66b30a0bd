package vat

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/org/vat/internal/idxtest"
)

// The test files come from internal/idxtest, shared with the example's
// tests.
var (
	idxBytes = idxtest.Encode
	pixels   = idxtest.Pixels
)

func gz(_ testing.TB, raw []byte) []byte { return idxtest.Gzip(raw) }

func mnistFiles(testing.TB) map[string][]byte { return idxtest.MNIST() }

func writeFiles(t testing.TB, files map[string][]byte) string {
	dir := t.TempDir()
	if err := idxtest.Write(dir, files); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadIDX(t *testing.T) {
	dir := writeFiles(t, mnistFiles(t))
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 3 || test.Len() != 2 || train.Rows != 28 || train.Cols != 28 {
		t.Fatalf("got %d train, %d test images of %d×%d", train.Len(), test.Len(), train.Rows, train.Cols)
	}
	if got := train.Labels; !slices.Equal(got, []int{0, 9, 4}) {
		t.Errorf("labels %v", train.Labels)
	}
	for i, v := range train.Images {
		if want := float32(byte(i*7)) / 255; v != want {
			t.Fatalf("pixel %d = %v, want %v", i, v, want)
		}
	}
	// LoadIDX takes any image size.
	small := writeFiles(t, map[string][]byte{
		"i": idxBytes(0x803, []int{2, 3, 1}, []byte{1, 2, 3, 4, 5, 6}),
		"l": idxBytes(0x801, []int{2}, []byte{7, 8}),
	})
	d, err := LoadIDX(filepath.Join(small, "i"), filepath.Join(small, "l"))
	if err != nil || d.Len() != 2 || d.Rows != 3 || d.Cols != 1 || len(d.Images) != 6 {
		t.Fatalf("LoadIDX of 2 3×1 images: %+v, %v", d, err)
	}
}

// Uncompressed files (without .gz) are read too.
func TestLoadIDXUncompressed(t *testing.T) {
	files := map[string][]byte{}
	for name, b := range mnistFiles(t) {
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var raw bytes.Buffer
		raw.ReadFrom(r)
		files[strings.TrimSuffix(name, ".gz")] = raw.Bytes()
	}
	if _, _, err := LoadMNIST(writeFiles(t, files)); err != nil {
		t.Fatal(err)
	}
}

// Broken and hostile files (idxtest.Hostile): each is a one-line error
// that wraps the right sentinel and names the file, and none allocates
// what its header claims.
func TestLoadIDXBrokenFiles(t *testing.T) {
	want := map[string]error{
		"missing": ErrMissingFile, "not gzip": ErrNotGzip, "corrupt gzip": ErrNotGzip,
		"truncated gzip": ErrTruncated, "truncated body": ErrTruncated, "truncated raw body": ErrTruncated,
		"truncated header": ErrTruncated, "zero-length gz": ErrNotGzip, "zero-length raw": ErrTruncated,
		"wrong magic": ErrBadMagic, "wrong type byte": ErrBadMagic, "wrong rank": ErrBadMagic,
		"wrong geometry": ErrBadHeader, "zero images": ErrBadHeader, "huge geometry": ErrBadHeader,
		"huge count": ErrTruncated, "huge labels": ErrTruncated, "overflowing dims": ErrBadHeader,
		"raw count beyond file": ErrTruncated, "trailing raw data": ErrTrailingData,
		"trailing decompressed data": ErrTrailingData, "trailing bytes after gzip": ErrTrailingData,
		"count mismatch": ErrCountMismatch, "label 10": ErrBadLabel,
	}
	cases := idxtest.Hostile()
	if len(cases) != len(want) {
		t.Fatalf("%d hostile cases, %d expectations", len(cases), len(want))
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tc.Folder(dir); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadMNIST(dir)
			if w, ok := want[tc.Name]; !ok || !errors.Is(err, w) {
				t.Fatalf("got %v, want %v", err, w)
			}
			if !strings.Contains(err.Error(), strings.TrimSuffix(tc.File, ".gz")) {
				t.Fatalf("error %q does not name %s", err, tc.File)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not one line", err)
			}
		})
	}
}

// A folder where a file should be is an error that names it.
func TestLoadIDXFolder(t *testing.T) {
	dir := writeFiles(t, mnistFiles(t))
	p := filepath.Join(dir, trainImagesFile)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadMNIST(dir)
	if !errors.Is(err, ErrMissingFile) || !strings.Contains(err.Error(), trainImagesFile) {
		t.Fatalf("got %v, want a missing-file error naming %s", err, trainImagesFile)
	}
}

// When the data cannot be found, the error names each folder it looked in
// once and says what to run.
func TestDefaultMNISTDirNotFound(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("VAT_MNIST_DIR", "")
	t.Setenv("GOMODCACHE", empty)
	t.Setenv("GOPATH", empty)
	t.Setenv("HOME", empty)
	t.Setenv("PATH", "") // no go command to ask
	_, err := DefaultMNISTDir()
	if !errors.Is(err, ErrMissingFile) {
		t.Fatalf("got %v, want ErrMissingFile", err)
	}
	msg := err.Error()
	for _, want := range []string{"import github.com/org/vat/mnist", gomnistModule, "VAT_MNIST_DIR", "-data"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	for _, dir := range []string{filepath.Join(empty, "pkg", "mod"), filepath.Join(empty, "go", "pkg", "mod")} {
		if n := strings.Count(msg, dir+string(filepath.Separator)); n > 1 {
			t.Errorf("error names %s %d times: %q", dir, n, msg)
		}
	}
	if n := strings.Count(msg, empty+string(filepath.Separator)+escapeModulePath(gomnistModule)); n != 1 {
		t.Errorf("error names the GOMODCACHE folder %d times, want once: %q", n, msg)
	}
}

// FuzzLoadIDX feeds arbitrary image and label files to LoadIDX: it must
// return an error or a dataset consistent with itself, never panic, and
// never allocate beyond what the files can hold (a header that asks for
// more fails the size checks before any allocation). The seed corpus (the
// valid files and every broken file of TestLoadIDXBrokenFiles' kinds) runs
// in every go test; fuzz with
//
//	go test -run '^$' -fuzz FuzzLoadIDX -fuzztime 10m .
func FuzzLoadIDX(f *testing.F) {
	good := mnistFiles(f)
	img := idxBytes(0x803, []int{3, 28, 28}, pixels(3))
	f.Add(good[trainImagesFile], good[trainLabelsFile])
	f.Add(img, idxBytes(0x801, []int{3}, []byte{1, 2, 3}))
	f.Add(idxBytes(0x803, []int{2, 3, 1}, []byte{1, 2, 3, 4, 5, 6}), idxBytes(0x801, []int{2}, []byte{7, 8}))
	f.Add([]byte{0, 0, 8, 3, 0, 0, 0, 1}, []byte{0, 0, 8, 1, 0, 0, 0, 1, 3})
	for _, c := range idxtest.Hostile() { // each broken file, beside a good partner
		images, labels := good[trainImagesFile], good[trainLabelsFile]
		if strings.Contains(c.File, "labels") {
			labels = c.Data
		} else {
			images = c.Data
		}
		f.Add(images, labels)
	}
	dir := f.TempDir()
	ip, lp := filepath.Join(dir, "images"), filepath.Join(dir, "labels")
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		if err := os.WriteFile(ip, images, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(lp, labels, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := LoadIDX(ip, lp)
		if err != nil {
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %q: want one line naming the file", err)
			}
			return
		}
		if d.Len() == 0 || len(d.Images) != d.Len()*d.Rows*d.Cols || d.Rows > maxIDXSide || d.Cols > maxIDXSide {
			t.Fatalf("inconsistent dataset: %d labels, %d pixels of %d×%d", d.Len(), len(d.Images), d.Rows, d.Cols)
		}
		for _, l := range d.Labels {
			if l >= Classes {
				t.Fatalf("label %d accepted", l)
			}
		}
		// Memory follows the data: the pixels were all in the files.
		if len(d.Images) > len(images)*maxDeflateRatio {
			t.Fatalf("%d pixels from a %d-byte file", len(d.Images), len(images))
		}
	})
}

func TestDefaultMNIST(t *testing.T) {
	train, test := loadMNIST(t)
	if train.Len() != 60000 || test.Len() != 10000 || train.Rows != 28 || train.Cols != 28 {
		t.Fatalf("got %d/%d images of %d×%d", train.Len(), test.Len(), train.Rows, train.Cols)
	}
	m, _ := NewModel(ModelConfig{})
	for _, d := range []*Dataset{train, test} {
		if err := d.validate("MNIST", m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDatasetValidation(t *testing.T) {
	ok := &Dataset{Images: make([]float32, 784), Labels: []int{3}, Rows: 28, Cols: 28}
	for _, tc := range []struct {
		name string
		d    *Dataset
	}{
		{"nil", nil},
		{"empty", &Dataset{Rows: 28, Cols: 28}},
		{"wrong size", &Dataset{Images: make([]float32, 4), Labels: []int{1}, Rows: 2, Cols: 2}},
		{"pixel count", &Dataset{Images: make([]float32, 700), Labels: []int{1}, Rows: 28, Cols: 28}},
		{"label", &Dataset{Images: make([]float32, 784), Labels: []int{12}, Rows: 28, Cols: 28}},
	} {
		m, _ := NewModel(ModelConfig{})
		if _, err := m.Evaluate(tc.d); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	for _, d := range []*Dataset{nil, {Rows: 28, Cols: 28}} {
		m, _ := NewModel(ModelConfig{})
		tr, _ := NewTrainer(m, TrainConfig{Epochs: 1})
		if d.Len() != 0 || d.Head(5) != d {
			t.Errorf("%v: Len %d, Head(5) %v", d, d.Len(), d.Head(5))
		}
		if _, err := tr.TrainEpoch(context.Background(), d); err == nil {
			t.Errorf("TrainEpoch accepted %v", d)
		}
		if _, err := tr.Fit(context.Background(), d, ok); err == nil {
			t.Errorf("Fit accepted training set %v", d)
		}
		if _, err := tr.Fit(context.Background(), ok, d); (err == nil) != (d == nil) { // nil: no evaluation
			t.Errorf("Fit with test set %v: error %v", d, err)
		}
	}
	m, _ := NewModel(ModelConfig{})
	if _, err := m.Evaluate(ok); err != nil {
		t.Errorf("valid dataset rejected: %v", err)
	}
	if _, err := m.Predict(make([]float32, 100)); err == nil {
		t.Error("Predict accepted 100 pixels")
	}
}
