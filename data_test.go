package vat

import (
	"bytes"
	"compress/gzip"
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

func gz(t *testing.T, raw []byte) []byte {
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
// dataset of 2×2 images, gzipped.
func mnistFiles(t *testing.T) map[string][]byte {
	imgs := func(n int) []byte {
		b := make([]byte, n*4)
		for i := range b {
			b[i] = byte(i * 20)
		}
		return b
	}
	return map[string][]byte{
		trainImagesFile: gz(t, idxBytes(0x803, []int{3, 2, 2}, imgs(3))),
		trainLabelsFile: gz(t, idxBytes(0x801, []int{3}, []byte{0, 9, 4})),
		testImagesFile:  gz(t, idxBytes(0x803, []int{2, 2, 2}, imgs(2))),
		testLabelsFile:  gz(t, idxBytes(0x801, []int{2}, []byte{1, 2})),
	}
}

func writeFiles(t *testing.T, files map[string][]byte) string {
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
	if train.Len() != 3 || test.Len() != 2 || train.Rows != 2 || train.Cols != 2 {
		t.Fatalf("got %d train, %d test images of %d×%d", train.Len(), test.Len(), train.Rows, train.Cols)
	}
	if got := string(train.Labels); got != "\x00\x09\x04" {
		t.Errorf("labels %v", train.Labels)
	}
	for i, v := range train.Images {
		if want := float32(byte(i*20)) / 255; v != want {
			t.Fatalf("pixel %d = %v, want %v", i, v, want)
		}
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

func TestLoadIDXBrokenFiles(t *testing.T) {
	good := mnistFiles(t)
	img := idxBytes(0x803, []int{3, 2, 2}, make([]byte, 12))
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
		{"truncated header", testLabelsFile, gz(t, []byte{0, 0, 8}), ErrTruncated},
		{"wrong magic", testImagesFile, gz(t, idxBytes(0x801, []int{2, 2, 2}, make([]byte, 8))), ErrBadMagic},
		{"count mismatch", trainLabelsFile, gz(t, idxBytes(0x801, []int{2}, []byte{1, 2})), ErrCountMismatch},
		{"label 10", testLabelsFile, gz(t, idxBytes(0x801, []int{2}, []byte{3, 10})), ErrBadLabel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range good {
				files[k] = v
			}
			files[tc.file] = tc.data
			_, _, err := LoadMNIST(writeFiles(t, files))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.file) {
				t.Fatalf("error %q does not name %s", err, tc.file)
			}
		})
	}
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
	m, _ := NewModel(ModelConfig{})
	if _, err := m.Evaluate(ok); err != nil {
		t.Errorf("valid dataset rejected: %v", err)
	}
	if _, err := m.Predict(make([]float32, 100)); err == nil {
		t.Error("Predict accepted 100 pixels")
	}
}
