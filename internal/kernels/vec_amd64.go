package kernels

import "golang.org/x/sys/cpu"

// useAVX2 selects the AVX2 elementwise loops and gathers of vec_amd64.s.
var useAVX2 = cpu.X86.HasAVX2

//go:noescape
func addToAVX2(dst, src *float32, n int)

//go:noescape
func addAVX2(dst, a, b *float32, n int)

//go:noescape
func mulAVX2(dst, a, b *float32, n int)

//go:noescape
func reluAVX2(x *float32, n int)

//go:noescape
func reluMaskAVX2(out, y, grad *float32, n int)

//go:noescape
func gather16AVX2(dst, x *float32, off *int, n, c0 int)

//go:noescape
func gather16SplitAVX2(dst, x *float32, off *int, n, c0, c1 int, mask *int32)

//go:noescape
func gatherIdx16AVX2(dst, x *float32, off *int, n int, idx *int32)

//go:noescape
func maxPool2PlaneAVX2(y, x *float32, w, ow, rows int)

//go:noescape
func maxPool2GradPlaneAVX2(gx, x, y, grad *float32, w, ow, rows int)

//go:noescape
func packA6AVX2(dst, a *float32, lda, n int)

//go:noescape
func packAT6SSE(dst, a *float32, lda, n int)

//go:noescape
func fillAVX2(dst *float32, v float32, n int)

//go:noescape
func gatherT16x8AVX2(dst, x *float32, base *int, n int, col *int)

//go:noescape
func addRowsAVX2(dst, src *float32, rows, n, ldd, lds int)

//go:noescape
func copyRows16AVX2(dst, src *float32, n, ld int)
