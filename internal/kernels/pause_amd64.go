package kernels

// spinPause executes one PAUSE instruction (pause_amd64.s), for the
// polling loops of parallel.go.
func spinPause()
