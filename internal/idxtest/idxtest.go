// Package idxtest builds IDX files for tests: a tiny valid MNIST-shaped
// data folder, and broken or hostile variants of it. The loader's tests
// check each variant's error; the example's tests check that each ends the
// program with one error line.
package idxtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
)

// The MNIST file names.
const (
	TrainImages = "train-images-idx3-ubyte.gz"
	TrainLabels = "train-labels-idx1-ubyte.gz"
	TestImages  = "t10k-images-idx3-ubyte.gz"
	TestLabels  = "t10k-labels-idx1-ubyte.gz"
)

// Encode returns an IDX file: the 4-byte magic, each dimension as a
// big-endian uint32, then body.
func Encode(magic uint32, dims []int, body []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(body)
	return b.Bytes()
}

// Gzip compresses raw.
func Gzip(raw []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(raw) // a bytes.Buffer does not fail
	w.Close()
	return b.Bytes()
}

// BadCRC returns a copy of a gzip file with its CRC-32 flipped.
func BadCRC(b []byte) []byte {
	b = append([]byte(nil), b...)
	b[len(b)-8] ^= 0xff
	return b
}

// Pixels returns n 28×28 images whose bytes count up by 7 (mod 256).
func Pixels(n int) []byte {
	b := make([]byte, n*784)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// MNIST returns the four files of a 3-train/2-test MNIST-shaped dataset,
// gzipped; the training labels are 0, 9, 4.
func MNIST() map[string][]byte {
	return map[string][]byte{
		TrainImages: Gzip(Encode(0x803, []int{3, 28, 28}, Pixels(3))),
		TrainLabels: Gzip(Encode(0x801, []int{3}, []byte{0, 9, 4})),
		TestImages:  Gzip(Encode(0x803, []int{2, 28, 28}, Pixels(2))),
		TestLabels:  Gzip(Encode(0x801, []int{2}, []byte{1, 2})),
	}
}

// Case is one broken variant of the MNIST folder: File (one of the four
// names, or the name without .gz for an uncompressed stand-in that
// replaces the .gz file) holds Data, or is missing when Data is nil.
type Case struct {
	Name, File string
	Data       []byte
}

// Raw reports whether the case's file is an uncompressed stand-in.
func (c Case) Raw() bool { return !strings.HasSuffix(c.File, ".gz") }

// Hostile returns the broken and hostile variants. None may make a loader
// allocate what its header claims: the "huge" ones claim gigabytes to
// terabytes from a few kilobytes.
func Hostile() []Case {
	img := Encode(0x803, []int{3, 28, 28}, Pixels(3))
	raw := func(name string) string { return strings.TrimSuffix(name, ".gz") }
	cat := func(a []byte, b ...byte) []byte { return append(append([]byte(nil), a...), b...) }
	return []Case{
		{"missing", TrainLabels, nil},
		{"not gzip", TrainImages, []byte("this is not gzip data at all")},
		{"corrupt gzip", TrainImages, BadCRC(Gzip(img))},
		{"truncated gzip", TrainImages, Gzip(img)[:20]},
		{"truncated body", TrainImages, Gzip(img[:len(img)-3])},
		{"truncated raw body", raw(TrainImages), img[:len(img)-3]},
		{"truncated header", TestLabels, Gzip([]byte{0, 0, 8})},
		{"zero-length gz", TrainImages, []byte{}},
		{"zero-length raw", raw(TrainImages), []byte{}},
		{"wrong magic", TestImages, Gzip(Encode(0x801, []int{2, 28, 28}, make([]byte, 2*784)))},
		{"wrong type byte", TestImages, Gzip(Encode(0x0D03, []int{2, 28, 28}, make([]byte, 2*784)))},
		{"wrong rank", TestImages, Gzip(Encode(0x804, []int{2, 28, 28, 1}, make([]byte, 2*784)))},
		{"wrong geometry", TestImages, Gzip(Encode(0x803, []int{2, 2, 2}, make([]byte, 8)))},
		{"zero images", TestImages, Gzip(Encode(0x803, []int{0, 28, 28}, nil))},
		{"huge geometry", TestImages, Gzip(Encode(0x803, []int{2, 100000, 100000}, make([]byte, 20000)))},
		{"huge count", TestImages, Gzip(Encode(0x803, []int{100000, 28, 28}, make([]byte, 20000)))},
		{"huge labels", TestLabels, Gzip(Encode(0x801, []int{1 << 31}, make([]byte, 100)))},
		{"overflowing dims", TestImages, Gzip(Encode(0x803, []int{1<<32 - 1, 1<<32 - 1, 1<<32 - 1}, nil))},
		{"raw count beyond file", raw(TestImages), Encode(0x803, []int{3, 28, 28}, Pixels(2))},
		{"trailing raw data", raw(TrainImages), cat(img, 1, 2, 3)},
		{"trailing decompressed data", TrainImages, Gzip(cat(img, 9))},
		{"trailing bytes after gzip", TrainImages, cat(Gzip(img), []byte("garbage")...)},
		{"count mismatch", TrainLabels, Gzip(Encode(0x801, []int{2}, []byte{1, 2}))},
		{"label 10", TestLabels, Gzip(Encode(0x801, []int{2}, []byte{3, 10}))},
	}
}

// Folder writes the MNIST files with c applied into dir (which must exist).
func (c Case) Folder(dir string) error {
	files := MNIST()
	if c.Raw() {
		delete(files, c.File+".gz")
	}
	files[c.File] = c.Data
	return Write(dir, files)
}

// Write writes files into dir, skipping nil contents.
func Write(dir string, files map[string][]byte) error {
	for name, b := range files {
		if b == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
