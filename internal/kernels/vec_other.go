//go:build !amd64

package kernels

var useAVX2 = false

func addToAVX2(dst, src *float32, n int)                                      {}
func addAVX2(dst, a, b *float32, n int)                                       {}
func mulAVX2(dst, a, b *float32, n int)                                       {}
func reluAVX2(x *float32, n int)                                              {}
func reluMaskAVX2(out, y, grad *float32, n int)                               {}
func gather16AVX2(dst, x *float32, off *int, n, c0 int)                       {}
func gather16SplitAVX2(dst, x *float32, off *int, n, c0, c1 int, mask *int32) {}

func gatherIdx16AVX2(dst, x *float32, off *int, n int, idx *int32) {}

func maxPool2PlaneAVX2(y, x *float32, w, ow, rows int) {}

func maxPool2GradPlaneAVX2(gx, x, y, grad *float32, w, ow, rows int) {}

func packA6AVX2(dst, a *float32, lda, n int) {}

func packAT6SSE(dst, a *float32, lda, n int) {}

func fillAVX2(dst *float32, v float32, n int) {}

func gatherT16x8AVX2(dst, x *float32, base *int, n int, col *int) {}

func addRowsAVX2(dst, src *float32, rows, n, ldd, lds int) {}

func copyRows16AVX2(dst, src *float32, n, ld int) {}
