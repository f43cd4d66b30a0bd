#include "textflag.h"

// ZERO12 clears the twelve accumulators Y0-Y11.
#define ZERO12 \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y7, Y7, Y7; \
	VXORPS Y8, Y8, Y8; \
	VXORPS Y9, Y9, Y9; \
	VXORPS Y10, Y10, Y10; \
	VXORPS Y11, Y11, Y11

// ADDROW adds a row of the tile (two accumulators) to C at DX and stores
// it, the tile first.
#define ADDROW(lo, hi) \
	VADDPS  (DX), lo, lo; \
	VMOVUPS lo, (DX); \
	VADDPS  32(DX), hi, hi; \
	VMOVUPS hi, 32(DX)

// FMA6x16STEP is one step of p of the 6×16 kernels: two vectors of B (DI),
// six broadcasts of A (SI), twelve FMAs into Y0-Y11.
#define FMA6x16STEP \
	VMOVUPS      (DI), Y12; \
	VMOVUPS      32(DI), Y13; \
	VBROADCASTSS (SI), Y14; \
	VFMADD231PS  Y12, Y14, Y0; \
	VFMADD231PS  Y13, Y14, Y1; \
	VBROADCASTSS 4(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y2; \
	VFMADD231PS  Y13, Y15, Y3; \
	VBROADCASTSS 8(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y4; \
	VFMADD231PS  Y13, Y14, Y5; \
	VBROADCASTSS 12(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y6; \
	VFMADD231PS  Y13, Y15, Y7; \
	VBROADCASTSS 16(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y8; \
	VFMADD231PS  Y13, Y14, Y9; \
	VBROADCASTSS 20(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y10; \
	VFMADD231PS  Y13, Y15, Y11

// func sgemmKernel6x16(k int, a, b, c *float32, ldc int)
//
// C[0:6][0:16] += A·B for a packed 6×k panel of A (a[p*6+i]) and a packed
// k×16 panel of B (b[p*16+j]); C is row-major with a stride of ldc floats.
// Twelve YMM accumulators hold the 6×16 tile; each step of p broadcasts one
// element of A per row and multiplies it into two vectors of B with FMA.
TEXT ·sgemmKernel6x16(SB), NOSPLIT, $0-40
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	ZERO12

	TESTQ CX, CX
	JEQ   store

loop:
	FMA6x16STEP
	ADDQ         $24, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loop

store:
	ADDROW(Y0, Y1)
	ADDQ    R8, DX
	ADDROW(Y2, Y3)
	ADDQ    R8, DX
	ADDROW(Y4, Y5)
	ADDQ    R8, DX
	ADDROW(Y6, Y7)
	ADDQ    R8, DX
	ADDROW(Y8, Y9)
	ADDQ    R8, DX
	ADDROW(Y10, Y11)
	VZEROUPPER
	RET

// func sgemmKernel4x16(k int, a, b, c *float32, ldc int)
//
// sgemmKernel6x16 for the first four rows of a packed A panel (still six
// floats per step of p): the edge tiles of products whose row count leaves
// four or fewer rows, such as the 32 filters of a convolution (five whole
// tiles and two rows), at two thirds of the whole kernel's cost. Eight
// accumulators keep both FMA pipes busy. Each element sees the same FMAs in
// the same order as in sgemmKernel6x16, so results are bit-identical.
TEXT ·sgemmKernel4x16(SB), NOSPLIT, $0-40
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

	TESTQ CX, CX
	JEQ   store4

loop4:
	VMOVUPS      (DI), Y12
	VMOVUPS      32(DI), Y13
	VBROADCASTSS (SI), Y14
	VFMADD231PS  Y12, Y14, Y0
	VFMADD231PS  Y13, Y14, Y1
	VBROADCASTSS 4(SI), Y15
	VFMADD231PS  Y12, Y15, Y2
	VFMADD231PS  Y13, Y15, Y3
	VBROADCASTSS 8(SI), Y14
	VFMADD231PS  Y12, Y14, Y4
	VFMADD231PS  Y13, Y14, Y5
	VBROADCASTSS 12(SI), Y15
	VFMADD231PS  Y12, Y15, Y6
	VFMADD231PS  Y13, Y15, Y7
	ADDQ         $24, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loop4

store4:
	ADDROW(Y0, Y1)
	ADDQ    R8, DX
	ADDROW(Y2, Y3)
	ADDQ    R8, DX
	ADDROW(Y4, Y5)
	ADDQ    R8, DX
	ADDROW(Y6, Y7)
	VZEROUPPER
	RET

// func sgemmKernel6x16Set(k int, a, b, c *float32, ldc int)
//
// sgemmKernel6x16 for a product that overwrites C: the tile is set to
// A·B + 0 instead of added to C, so C needs no zeroing first. Adding +0
// keeps the result bit-identical to zeroing C and adding (−0 becomes +0
// either way).
TEXT ·sgemmKernel6x16Set(SB), NOSPLIT, $0-40
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	ZERO12

	TESTQ CX, CX
	JEQ   storeSet

loopSet:
	FMA6x16STEP
	ADDQ         $24, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loopSet

storeSet:
	VXORPS  Y12, Y12, Y12
	VADDPS  Y12, Y0, Y0
	VMOVUPS Y0, (DX)
	VADDPS  Y12, Y1, Y1
	VMOVUPS Y1, 32(DX)
	ADDQ    R8, DX
	VADDPS  Y12, Y2, Y2
	VMOVUPS Y2, (DX)
	VADDPS  Y12, Y3, Y3
	VMOVUPS Y3, 32(DX)
	ADDQ    R8, DX
	VADDPS  Y12, Y4, Y4
	VMOVUPS Y4, (DX)
	VADDPS  Y12, Y5, Y5
	VMOVUPS Y5, 32(DX)
	ADDQ    R8, DX
	VADDPS  Y12, Y6, Y6
	VMOVUPS Y6, (DX)
	VADDPS  Y12, Y7, Y7
	VMOVUPS Y7, 32(DX)
	ADDQ    R8, DX
	VADDPS  Y12, Y8, Y8
	VMOVUPS Y8, (DX)
	VADDPS  Y12, Y9, Y9
	VMOVUPS Y9, 32(DX)
	ADDQ    R8, DX
	VADDPS  Y12, Y10, Y10
	VMOVUPS Y10, (DX)
	VADDPS  Y12, Y11, Y11
	VMOVUPS Y11, 32(DX)
	VZEROUPPER
	RET

// func sgemmKernel6x16Bias(k int, a, b, c *float32, ldc int, bias *float32)
//
// sgemmKernel6x16Set with a bias per row: c[i][j] = (A·B)[i][j] + bias[i],
// bit-identical to filling row i of c with bias[i] and calling
// sgemmKernel6x16 (which adds the tile to c, the tile first).
TEXT ·sgemmKernel6x16Bias(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	MOVQ bias+40(FP), R9
	SHLQ $2, R8

	ZERO12

	TESTQ CX, CX
	JEQ   storeBias

loopBias:
	FMA6x16STEP
	ADDQ         $24, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loopBias

storeBias:
	VBROADCASTSS 0(R9), Y12
	VADDPS  Y12, Y0, Y0
	VMOVUPS Y0, (DX)
	VADDPS  Y12, Y1, Y1
	VMOVUPS Y1, 32(DX)
	ADDQ    R8, DX
	VBROADCASTSS 4(R9), Y12
	VADDPS  Y12, Y2, Y2
	VMOVUPS Y2, (DX)
	VADDPS  Y12, Y3, Y3
	VMOVUPS Y3, 32(DX)
	ADDQ    R8, DX
	VBROADCASTSS 8(R9), Y12
	VADDPS  Y12, Y4, Y4
	VMOVUPS Y4, (DX)
	VADDPS  Y12, Y5, Y5
	VMOVUPS Y5, 32(DX)
	ADDQ    R8, DX
	VBROADCASTSS 12(R9), Y12
	VADDPS  Y12, Y6, Y6
	VMOVUPS Y6, (DX)
	VADDPS  Y12, Y7, Y7
	VMOVUPS Y7, 32(DX)
	ADDQ    R8, DX
	VBROADCASTSS 16(R9), Y12
	VADDPS  Y12, Y8, Y8
	VMOVUPS Y8, (DX)
	VADDPS  Y12, Y9, Y9
	VMOVUPS Y9, 32(DX)
	ADDQ    R8, DX
	VBROADCASTSS 20(R9), Y12
	VADDPS  Y12, Y10, Y10
	VMOVUPS Y10, (DX)
	VADDPS  Y12, Y11, Y11
	VMOVUPS Y11, 32(DX)
	VZEROUPPER
	RET
