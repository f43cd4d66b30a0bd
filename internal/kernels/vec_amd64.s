#include "textflag.h"

// Elementwise float32 loops and the im2col row gathers with AVX2, eight
// floats per instruction. Every routine computes exactly what its Go
// counterpart in vec.go computes (the same IEEE operation per element, or a
// copy), so results are bit-identical whichever runs. Lengths are multiples
// of 8; the Go wrappers handle the tails.

// func addToAVX2(dst, src *float32, n int)
// dst[i] += src[i] for i < n.
TEXT ·addToAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   addDone
addLoop:
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0 // dst first, as Go's scalar add: the same NaN wins
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     addLoop
addDone:
	VZEROUPPER
	RET

// func addAVX2(dst, a, b *float32, n int)
// dst[i] = a[i] + b[i] for i < n.
TEXT ·addAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   add3Done
add3Loop:
	VMOVUPS (SI), Y0
	VADDPS  (DX), Y0, Y0 // a first, as in addToAVX2
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     add3Loop
add3Done:
	VZEROUPPER
	RET

// func mulAVX2(dst, a, b *float32, n int)
// dst[i] = a[i] * b[i] for i < n.
TEXT ·mulAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   mulDone
mulLoop:
	VMOVUPS (SI), Y0
	VMULPS  (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     mulLoop
mulDone:
	VZEROUPPER
	RET

// func reluAVX2(x *float32, n int)
// x[i] = +0 where the sign bit of x[i] is set (negatives, -0, negative NaNs):
// x &^ (x >> 31) on the bits, as reluInPlace in Go.
TEXT ·reluAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	JZ   reluDone
reluLoop:
	VMOVDQU (DI), Y0
	VPSRAD  $31, Y0, Y1
	VPANDN  Y0, Y1, Y0
	VMOVDQU Y0, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     reluLoop
reluDone:
	VZEROUPPER
	RET

// func reluMaskAVX2(out, y, grad *float32, n int)
// out[i] = grad[i] where the bits of y[i], read as int32, are > 0 (y > 0,
// or a positive NaN), else +0.
TEXT ·reluMaskAVX2(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ grad+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   maskDone
	VPXOR Y2, Y2, Y2
maskLoop:
	VMOVDQU (SI), Y0
	VPCMPGTD Y2, Y0, Y0 // y > 0 as int32: all ones
	VPAND   (DX), Y0, Y0
	VMOVDQU Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     maskLoop
maskDone:
	VZEROUPPER
	RET

// func gather16AVX2(dst, x *float32, off *int, n, c0 int)
// dst[p*16 : p*16+16] = x[off[p]+c0 : off[p]+c0+16] for p < n.
TEXT ·gather16AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ off+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ c0+32(FP), AX
	LEAQ (SI)(AX*4), SI
	TESTQ CX, CX
	JZ   gatherDone
gatherLoop:
	MOVQ    (BX), AX
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS 32(SI)(AX*4), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $8, BX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     gatherLoop
gatherDone:
	VZEROUPPER
	RET

// func gather16SplitAVX2(dst, x *float32, off *int, n, c0, c1 int, mask *int32)
// Like gather16AVX2 for a row made of two runs: lanes t < len1 come from
// x[off[p]+c0+t], lanes t >= len1 from x[off[p]+c1+t-len1]. The second run
// is loaded from c1-len1 so that its first float lands in lane len1, and
// mask (16 int32, all ones from lane len1 on) selects it lane by lane.
TEXT ·gather16SplitAVX2(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ off+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ c0+32(FP), AX
	MOVQ c1+40(FP), DX
	MOVQ mask+48(FP), R8
	VMOVDQU (R8), Y4
	VMOVDQU 32(R8), Y5
	LEAQ (SI)(AX*4), R9  // run 1
	LEAQ (SI)(DX*4), R10 // run 2, already shifted by the caller
	TESTQ CX, CX
	JZ   splitDone
splitLoop:
	MOVQ      (BX), AX
	VMOVUPS   (R9)(AX*4), Y0
	VMOVUPS   32(R9)(AX*4), Y1
	VMOVUPS   (R10)(AX*4), Y2
	VMOVUPS   32(R10)(AX*4), Y3
	VBLENDVPS Y4, Y2, Y0, Y0
	VBLENDVPS Y5, Y3, Y1, Y1
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	ADDQ      $8, BX
	ADDQ      $64, DI
	DECQ      CX
	JNZ       splitLoop
splitDone:
	VZEROUPPER
	RET

// func gatherIdx16AVX2(dst, x *float32, off *int, n int, idx *int32)
// dst[p*16+t] = x[off[p]+idx[t]] for p < n, t < 16: two VGATHERDPS per
// row (the filter gradient's im2col panels, whose 16 columns are kernel
// taps scattered over the image).
TEXT ·gatherIdx16AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ off+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ idx+32(FP), R8
	VMOVDQU (R8), Y4
	VMOVDQU 32(R8), Y5
	VPCMPEQD Y6, Y6, Y6 // all lanes on; a gather clears its mask
	TESTQ CX, CX
	JZ   idxDone
idxLoop:
	MOVQ       (BX), AX
	LEAQ       (SI)(AX*4), R9
	VMOVDQU    Y6, Y7
	VGATHERDPS Y7, (R9)(Y4*4), Y0
	VMOVDQU    Y6, Y8
	VGATHERDPS Y8, (R9)(Y5*4), Y1
	VMOVUPS    Y0, (DI)
	VMOVUPS    Y1, 32(DI)
	ADDQ       $8, BX
	ADDQ       $64, DI
	DECQ       CX
	JNZ        idxLoop
idxDone:
	VZEROUPPER
	RET

// POOLLOAD loads sixteen inputs of each of the rows at SI and DX and
// splits them into even and odd columns (in the order 0 2 8 10 4 6 12 14):
// Y4, Y5 row 0's even and odd, Y6, Y7 row 1's.
#define POOLLOAD \
	VMOVUPS (SI), Y0 \
	VMOVUPS 32(SI), Y1 \
	VMOVUPS (DX), Y2 \
	VMOVUPS 32(DX), Y3 \
	VSHUFPS $0x88, Y1, Y0, Y4 \
	VSHUFPS $0xDD, Y1, Y0, Y5 \
	VSHUFPS $0x88, Y3, Y2, Y6 \
	VSHUFPS $0xDD, Y3, Y2, Y7

// POOLBLOCK pools eight outputs at DI from sixteen inputs of the rows at SI
// and DX: output j is the maximum of r0[2j], r0[2j+1], r1[2j], r1[2j+1],
// taken in that order as "m = v if v > m" (VMAXPS returns its first source
// when it is greater, else its second, so NaNs and signed zeros resolve as
// in MaxPool2Rows' Go loop); VPERMPD restores the order after the maxima.
#define POOLBLOCK \
	POOLLOAD \
	VMAXPS  Y4, Y5, Y8 \
	VMAXPS  Y8, Y6, Y8 \
	VMAXPS  Y8, Y7, Y8 \
	VPERMPD $0xD8, Y8, Y8 \
	VMOVUPS Y8, (DI)

// POOLGRADBLOCK is the max pool's gradient for eight outputs (y at R9,
// grad at R10) into sixteen inputs of the rows at DI and R8, from the
// inputs at SI and DX: output j's gradient goes to the first of r0[2j],
// r0[2j+1], r1[2j], r1[2j+1] equal to y[j] (the last if none is, as for a
// NaN), and the three others get +0, as in MaxPool2GradRows' Go loop.
// With e0, o0, e1, o1 the even and odd columns of the two rows (Y4-Y7) and
// y, g shuffled to match (Y8, Y9): s0 = e0 == y, s1 = (o0 == y) &^ s0,
// s2 = (e1 == y) &^ (s0 | s1), and the odd column of row 1 takes what is
// left; each selected lane gets g, then VUNPCKLPS/VUNPCKHPS interleave the
// columns back.
#define POOLGRADBLOCK \
	POOLLOAD \
	VMOVUPS (R9), Y8 \
	VPERMPD $0xD8, Y8, Y8 \
	VMOVUPS (R10), Y9 \
	VPERMPD $0xD8, Y9, Y9 \
	VCMPPS  $0, Y8, Y4, Y10 \
	VCMPPS  $0, Y8, Y5, Y11 \
	VANDNPS Y11, Y10, Y11 \
	VORPS   Y10, Y11, Y12 \
	VCMPPS  $0, Y8, Y6, Y13 \
	VANDNPS Y13, Y12, Y13 \
	VORPS   Y12, Y13, Y12 \
	VANDNPS Y9, Y12, Y14 \
	VANDPS  Y9, Y10, Y10 \
	VANDPS  Y9, Y11, Y11 \
	VANDPS  Y9, Y13, Y13 \
	VUNPCKLPS Y11, Y10, Y0 \
	VUNPCKHPS Y11, Y10, Y1 \
	VUNPCKLPS Y14, Y13, Y2 \
	VUNPCKHPS Y14, Y13, Y3 \
	VMOVUPS Y0, (DI) \
	VMOVUPS Y1, 32(DI) \
	VMOVUPS Y2, (R8) \
	VMOVUPS Y3, 32(R8)

// func maxPool2PlaneAVX2(y, x *float32, w, ow, rows int)
// POOLBLOCK over a whole plane: output row i (ow >= 8 floats at
// y + i*ow) pools input rows 2i and 2i+1 (w floats apart, from x). Rows
// whose width is not a multiple of 8 end with the last eight outputs
// again, overlapping the blocks (the same inputs give the same values).
TEXT ·maxPool2PlaneAVX2(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), R8
	MOVQ x+8(FP), R9
	MOVQ w+16(FP), R10
	SHLQ $2, R10 // input row stride in bytes
	MOVQ ow+24(FP), R11
	MOVQ rows+32(FP), R12
	TESTQ R12, R12
	JZ   ppDone
	MOVQ R11, R13
	SHRQ $3, R13 // whole blocks per row
	MOVQ R11, R14
	SHLQ $2, R14 // output row stride in bytes
	LEAQ -32(R14), R15 // offset of the overlapping last block's outputs
ppRow:
	MOVQ R8, DI
	MOVQ R9, SI
	LEAQ (R9)(R10*1), DX
	MOVQ R13, CX
ppBlock:
	POOLBLOCK
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $32, DI
	DECQ CX
	JNZ  ppBlock
	TESTQ $7, R11
	JZ   ppNext
	LEAQ (R8)(R15*1), DI
	LEAQ (R9)(R15*2), SI
	LEAQ (SI)(R10*1), DX
	POOLBLOCK
ppNext:
	ADDQ R14, R8
	LEAQ (R9)(R10*2), R9
	DECQ R12
	JNZ  ppRow
ppDone:
	VZEROUPPER
	RET

// func maxPool2GradPlaneAVX2(gx, x, y, grad *float32, w, ow, rows int)
// POOLGRADBLOCK over a whole plane: the gradients of output row i
// (ow >= 8 floats of y and grad at i*ow) into input rows 2i and 2i+1 of gx
// (w floats apart), choosing by the same rows of x; the overlapping last
// block as in maxPool2PlaneAVX2.
TEXT ·maxPool2GradPlaneAVX2(SB), NOSPLIT, $0-56
	MOVQ w+32(FP), R11
	SHLQ $2, R11 // input row stride in bytes
	MOVQ ow+40(FP), R12
	MOVQ rows+48(FP), R13
	TESTQ R13, R13
	JZ   pgpDone
	MOVQ R12, R14
	SHLQ $2, R14 // output row stride in bytes
	LEAQ -32(R14), R15 // offset of the overlapping last block's outputs
	XORQ AX, AX // the row's offset into gx and x, in bytes
	XORQ BX, BX // its offset into y and grad
pgpRow:
	MOVQ gx+0(FP), DI
	ADDQ AX, DI
	MOVQ x+8(FP), SI
	ADDQ AX, SI
	MOVQ y+16(FP), R9
	ADDQ BX, R9
	MOVQ grad+24(FP), R10
	ADDQ BX, R10
	LEAQ (DI)(R11*1), R8
	LEAQ (SI)(R11*1), DX
	MOVQ R12, CX
	SHRQ $3, CX
pgpBlock:
	POOLGRADBLOCK
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	ADDQ $64, R8
	ADDQ $32, R9
	ADDQ $32, R10
	DECQ CX
	JNZ  pgpBlock
	TESTQ $7, R12
	JZ   pgpNext
	MOVQ gx+0(FP), DI
	ADDQ AX, DI
	LEAQ (DI)(R15*2), DI
	MOVQ x+8(FP), SI
	ADDQ AX, SI
	LEAQ (SI)(R15*2), SI
	MOVQ y+16(FP), R9
	ADDQ BX, R9
	ADDQ R15, R9
	MOVQ grad+24(FP), R10
	ADDQ BX, R10
	ADDQ R15, R10
	LEAQ (DI)(R11*1), R8
	LEAQ (SI)(R11*1), DX
	POOLGRADBLOCK
pgpNext:
	LEAQ (AX)(R11*2), AX // two input rows
	ADDQ R14, BX         // one output row
	DECQ R13
	JNZ  pgpRow
pgpDone:
	VZEROUPPER
	RET

// func packA6AVX2(dst, a *float32, lda, n int)
// dst[p*6+i] = a[i*lda+p] for i < 6 and p < 8n: six rows of A interleaved
// into a micro-kernel panel, eight columns per block by an 8×8 transpose
// (rows 6 and 7 unused). Each column's six floats are stored with an
// eight-float store whose last two floats the next column's store
// overwrites; the last block's overrun lands on the two floats after it,
// which the caller must own and overwrite afterwards.
TEXT ·packA6AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), BX
	SHLQ $2, BX
	MOVQ n+24(FP), CX
	TESTQ CX, CX
	JZ   packDone
	LEAQ (SI)(BX*2), R8 // row 2
	LEAQ (R8)(BX*2), R9 // row 4
packLoop:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(BX*1), Y1
	VMOVUPS (R8), Y2
	VMOVUPS (R8)(BX*1), Y3
	VMOVUPS (R9), Y4
	VMOVUPS (R9)(BX*1), Y5
	VUNPCKLPS Y1, Y0, Y6 // r0_0 r1_0 r0_1 r1_1 | r0_4 r1_4 r0_5 r1_5
	VUNPCKHPS Y1, Y0, Y7 // r0_2 r1_2 r0_3 r1_3 | r0_6 r1_6 r0_7 r1_7
	VUNPCKLPS Y3, Y2, Y8
	VUNPCKHPS Y3, Y2, Y9
	VUNPCKLPS Y5, Y4, Y10 // r4_0 r5_0 r4_1 r5_1 | r4_4 r5_4 r4_5 r5_5
	VUNPCKHPS Y5, Y4, Y11
	VSHUFPS $0x44, Y8, Y6, Y0 // rows 0-3 of columns 0 | 4
	VSHUFPS $0xEE, Y8, Y6, Y1 // columns 1 | 5
	VSHUFPS $0x44, Y9, Y7, Y2 // columns 2 | 6
	VSHUFPS $0xEE, Y9, Y7, Y3 // columns 3 | 7
	VSHUFPS $0xEE, Y10, Y10, Y12 // rows 4-5 of columns 1 | 5 first
	VSHUFPS $0xEE, Y11, Y11, Y13 // columns 3 | 7
	VPERM2F128 $0x20, Y10, Y0, Y4
	VMOVUPS Y4, (DI)
	VPERM2F128 $0x20, Y12, Y1, Y4
	VMOVUPS Y4, 24(DI)
	VPERM2F128 $0x20, Y11, Y2, Y4
	VMOVUPS Y4, 48(DI)
	VPERM2F128 $0x20, Y13, Y3, Y4
	VMOVUPS Y4, 72(DI)
	VPERM2F128 $0x31, Y10, Y0, Y4
	VMOVUPS Y4, 96(DI)
	VPERM2F128 $0x31, Y12, Y1, Y4
	VMOVUPS Y4, 120(DI)
	VPERM2F128 $0x31, Y11, Y2, Y4
	VMOVUPS Y4, 144(DI)
	VPERM2F128 $0x31, Y13, Y3, Y4
	VMOVUPS Y4, 168(DI)
	ADDQ $32, SI
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $192, DI
	DECQ CX
	JNZ  packLoop
packDone:
	VZEROUPPER
	RET

// func packAT6SSE(dst, a *float32, lda, n int)
// dst[6p : 6p+6] = a[p*lda : p*lda+6] for p < n: packA's transposed case,
// six consecutive floats of each row of A into one column of a panel.
TEXT ·packAT6SSE(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), BX
	SHLQ $2, BX
	MOVQ n+24(FP), CX
	TESTQ CX, CX
	JZ   packTDone
packTLoop:
	MOVUPS (SI), X0
	MOVQ   16(SI), X1
	MOVUPS X0, (DI)
	MOVQ   X1, 16(DI)
	ADDQ   BX, SI
	ADDQ   $24, DI
	DECQ   CX
	JNZ    packTLoop
packTDone:
	RET

// func fillAVX2(dst *float32, v float32, n int)
// dst[i] = v for i < n.
TEXT ·fillAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	VBROADCASTSS v+8(FP), Y0
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   fillDone
fillLoop:
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     fillLoop
fillDone:
	VZEROUPPER
	RET

// TRANSPOSE8 transposes the 8×8 block in Y0-Y7 (row i in Yi) into
// Y8-Y15 (column j of the block in Y(8+j)), using Y8-Y15 as scratch.
#define TRANSPOSE8 \
	VUNPCKLPS Y1, Y0, Y8; \
	VUNPCKHPS Y1, Y0, Y9; \
	VUNPCKLPS Y3, Y2, Y10; \
	VUNPCKHPS Y3, Y2, Y11; \
	VUNPCKLPS Y5, Y4, Y12; \
	VUNPCKHPS Y5, Y4, Y13; \
	VUNPCKLPS Y7, Y6, Y14; \
	VUNPCKHPS Y7, Y6, Y15; \
	VSHUFPS $0x44, Y10, Y8, Y0; \
	VSHUFPS $0xEE, Y10, Y8, Y1; \
	VSHUFPS $0x44, Y11, Y9, Y2; \
	VSHUFPS $0xEE, Y11, Y9, Y3; \
	VSHUFPS $0x44, Y14, Y12, Y4; \
	VSHUFPS $0xEE, Y14, Y12, Y5; \
	VSHUFPS $0x44, Y15, Y13, Y6; \
	VSHUFPS $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; \
	VPERM2F128 $0x20, Y5, Y1, Y9; \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

// LOAD8 loads eight floats at SI + 4·(AX + col[o]) into Yr for the eight
// offsets col[o..o+7] read from BX.
#define LOAD8(o) \
	MOVQ (o+0)*8(BX), R8; \
	VMOVUPS (R9)(R8*4), Y0; \
	MOVQ (o+1)*8(BX), R8; \
	VMOVUPS (R9)(R8*4), Y1; \
	MOVQ (o+2)*8(BX), R8; \
	VMOVUPS (R9)(R8*4), Y2; \
	MOVQ (o+3)*8(BX), R8; \
	VMOVUPS (R9)(R8*4), Y3; \
	MOVQ (o+4)*8(BX), R8; \
	VMOVUPS (R9)(R8*4), Y4; \
	MOVQ (o+5)*8(BX), R8; \
	VMOVUPS (R9)(R8*4), Y5; \
	MOVQ (o+6)*8(BX), R8; \
	VMOVUPS (R9)(R8*4), Y6; \
	MOVQ (o+7)*8(BX), R8; \
	VMOVUPS (R9)(R8*4), Y7

// STORE8 stores Y8-Y15 into the rows of eight floats at DI + o bytes,
// rows 64 bytes apart.
#define STORE8(o) \
	VMOVUPS Y8, (o+0*64)(DI); \
	VMOVUPS Y9, (o+1*64)(DI); \
	VMOVUPS Y10, (o+2*64)(DI); \
	VMOVUPS Y11, (o+3*64)(DI); \
	VMOVUPS Y12, (o+4*64)(DI); \
	VMOVUPS Y13, (o+5*64)(DI); \
	VMOVUPS Y14, (o+6*64)(DI); \
	VMOVUPS Y15, (o+7*64)(DI)

// func gatherT16x8AVX2(dst, x *float32, base *int, n int, col *int)
// For each block b < n, the eight rows p = 8b..8b+7 of a panel whose
// entry (p, t) is x[base[8b] + (p − 8b) + col[t]], t < 16: each column t
// is eight consecutive floats of x, so the block is two 8×8 transposes of
// sixteen plain loads (the filter gradient's im2col panels, whose rows are
// consecutive output pixels of one row).
TEXT ·gatherT16x8AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ base+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ col+32(FP), BX
	TESTQ CX, CX
	JZ   gtDone
gtLoop:
	MOVQ (DX), AX
	LEAQ (SI)(AX*4), R9
	LOAD8(0)
	TRANSPOSE8
	STORE8(0)
	LOAD8(8)
	TRANSPOSE8
	STORE8(32)
	ADDQ $64, DX // base[b+1] is eight ints on
	ADDQ $512, DI
	DECQ CX
	JNZ  gtLoop
gtDone:
	VZEROUPPER
	RET

// func addRowsAVX2(dst, src *float32, rows, n, ldd, lds int)
// dst[i*ldd+j] += src[i*lds+j] for i < rows, j < n (n a multiple of 8):
// AddTo over the rows of two matrices in one call.
TEXT ·addRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rows+16(FP), DX
	MOVQ n+24(FP), R8
	SHRQ $3, R8
	MOVQ ldd+32(FP), R9
	SHLQ $2, R9
	MOVQ lds+40(FP), R10
	SHLQ $2, R10
	TESTQ DX, DX
	JZ   arDone
	TESTQ R8, R8
	JZ   arDone
arRow:
	MOVQ DI, R11
	MOVQ SI, R12
	MOVQ R8, CX
arCol:
	VMOVUPS (R11), Y0
	VADDPS  (R12), Y0, Y0 // dst first, as AddTo
	VMOVUPS Y0, (R11)
	ADDQ    $32, R11
	ADDQ    $32, R12
	DECQ    CX
	JNZ     arCol
	ADDQ R9, DI
	ADDQ R10, SI
	DECQ DX
	JNZ  arRow
arDone:
	VZEROUPPER
	RET

// func copyRows16AVX2(dst, src *float32, n, ld int)
// dst[p*16 : p*16+16] = src[p*ld : p*ld+16] for p < n: a 16-column panel of a
// row-major matrix with row stride ld.
TEXT ·copyRows16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ ld+24(FP), BX
	SHLQ $2, BX
	TESTQ CX, CX
	JZ   crDone
crLoop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    BX, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     crLoop
crDone:
	VZEROUPPER
	RET
