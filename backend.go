package vat

import "github.com/org/vat/internal/backend"

// Backend names where training and inference compute: "cpu", or "cuda:"
// and the GPU's name in a build with `-tags cuda` on a machine with a GPU,
// followed by the cuDNN mode (VAT_CUDNN: auto, on or off; README's GPU
// section). A cuda build falls back to the CPU when it finds no usable GPU,
// or when the environment variable VAT_DEVICE is "cpu"; Backend then says
// why.
func Backend() string { return backend.Describe() }
