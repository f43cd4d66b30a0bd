#include "textflag.h"

// The AVX-512 micro-kernels of the matrix product. They read the same
// packed panels as the AVX2 kernels (A in panels of 6 rows, 6·kc floats
// apart; B in panels of 16 columns), four or two A panels at once, with one
// ZMM accumulator per row of C: a 24×16 or 12×16 tile. Each step of p loads
// one vector of B and multiplies it into every row by an FMA whose A operand
// is broadcast from memory. Each element of C is still
// A[i][0]·B[0][j] + A[i][1]·B[1][j] + … accumulated by FMA in order of p from
// zero and then added to C (or to +0, or to the row's bias), exactly as in
// sgemmKernel6x16, so the two kernels give bit-identical results.
//
// Arguments of both kernels:
//	k       depth (steps of p), at least 1
//	a       the first of the A panels (6 floats per step each)
//	b       one B panel (16 floats per step)
//	c       the tile's top-left element; ldc is C's row stride in floats
//	pstride the distance between consecutive A panels in floats (6·k)
//	mode    0: C += tile; 1: C = tile + 0; 2: C = tile + bias[i]
//	bias    one float per row of the tile (mode 2 only)
//
// Registers: SI the A panels (R9 one panel stride in bytes, R10 three),
// DI the B panel, DX the row of C, R8 ldc in bytes, CX k, R11 the two-step
// loop count, Z30/Z31 the two vectors of B of a loop, Z0-Z23 the tile.

// PANEL6 is one step of p for the six rows of one A panel at A (an address
// such as (SI)(R9*1)) with the vector of B in BR: aoff is the step's
// offset in bytes into the panel.
#define PANEL6(aoff, A, BR, z0, z1, z2, z3, z4, z5) \
	VFMADD231PS.BCST (aoff+0)A, BR, z0; \
	VFMADD231PS.BCST (aoff+4)A, BR, z1; \
	VFMADD231PS.BCST (aoff+8)A, BR, z2; \
	VFMADD231PS.BCST (aoff+12)A, BR, z3; \
	VFMADD231PS.BCST (aoff+16)A, BR, z4; \
	VFMADD231PS.BCST (aoff+20)A, BR, z5

#define STEP12(boff, aoff, BR) \
	VMOVUPS boff(DI), BR; \
	PANEL6(aoff, (SI), BR, Z0, Z1, Z2, Z3, Z4, Z5); \
	PANEL6(aoff, (SI)(R9*1), BR, Z6, Z7, Z8, Z9, Z10, Z11)

#define STEP24(boff, aoff, BR) \
	STEP12(boff, aoff, BR); \
	PANEL6(aoff, (SI)(R9*2), BR, Z12, Z13, Z14, Z15, Z16, Z17); \
	PANEL6(aoff, (SI)(R10*1), BR, Z18, Z19, Z20, Z21, Z22, Z23)

#define ZERO6(z0, z1, z2, z3, z4, z5) \
	VPXORD z0, z0, z0; \
	VPXORD z1, z1, z1; \
	VPXORD z2, z2, z2; \
	VPXORD z3, z3, z3; \
	VPXORD z4, z4, z4; \
	VPXORD z5, z5, z5

// ADD6, SET6 and BIAS6 store six rows of the tile at DX, one row per ldc,
// in the three modes; BIAS6's boff is the first row's offset into bias (BX).
#define ADD1(z) VADDPS (DX), z, z; VMOVUPS z, (DX); ADDQ R8, DX
#define ADD6(z0, z1, z2, z3, z4, z5) ADD1(z0); ADD1(z1); ADD1(z2); ADD1(z3); ADD1(z4); ADD1(z5)
#define SET1(z) VADDPS Z30, z, z; VMOVUPS z, (DX); ADDQ R8, DX
#define SET6(z0, z1, z2, z3, z4, z5) SET1(z0); SET1(z1); SET1(z2); SET1(z3); SET1(z4); SET1(z5)
#define BIAS1(off, z) VADDPS.BCST off(BX), z, z; VMOVUPS z, (DX); ADDQ R8, DX
#define BIAS6(boff, z0, z1, z2, z3, z4, z5) \
	BIAS1(boff+0, z0); BIAS1(boff+4, z1); BIAS1(boff+8, z2); \
	BIAS1(boff+12, z3); BIAS1(boff+16, z4); BIAS1(boff+20, z5)

// ARGS loads the arguments and zeroes the first twelve rows.
#define ARGS \
	MOVQ    k+0(FP), CX; \
	MOVQ    a+8(FP), SI; \
	MOVQ    b+16(FP), DI; \
	MOVQ    c+24(FP), DX; \
	MOVQ    ldc+32(FP), R8; \
	SHLQ    $2, R8; \
	MOVQ    pstride+40(FP), R9; \
	SHLQ    $2, R9; \
	LEAQ    (R9)(R9*2), R10; \
	MOVQ    mode+48(FP), AX; \
	MOVQ    bias+56(FP), BX; \
	MOVQ    CX, R11; \
	SHRQ    $1, R11; \
	ZERO6(Z0, Z1, Z2, Z3, Z4, Z5); \
	ZERO6(Z6, Z7, Z8, Z9, Z10, Z11)

// func sgemmKernel24x16AVX512(k int, a, b, c *float32, ldc, pstride, mode int, bias *float32)
TEXT ·sgemmKernel24x16AVX512(SB), NOSPLIT, $0-64
	ARGS
	ZERO6(Z12, Z13, Z14, Z15, Z16, Z17)
	ZERO6(Z18, Z19, Z20, Z21, Z22, Z23)
	TESTQ R11, R11
	JEQ   tail24

loop24:
	STEP24(0, 0, Z30)
	STEP24(64, 24, Z31)
	ADDQ $48, SI
	ADDQ $128, DI
	DECQ R11
	JNZ  loop24

tail24:
	TESTQ $1, CX
	JEQ   store24
	STEP24(0, 0, Z30)

store24:
	CMPQ AX, $1
	JEQ  set24
	JGT  bias24
	ADD6(Z0, Z1, Z2, Z3, Z4, Z5)
	ADD6(Z6, Z7, Z8, Z9, Z10, Z11)
	ADD6(Z12, Z13, Z14, Z15, Z16, Z17)
	ADD6(Z18, Z19, Z20, Z21, Z22, Z23)
	VZEROUPPER
	RET

set24:
	VPXORD Z30, Z30, Z30
	SET6(Z0, Z1, Z2, Z3, Z4, Z5)
	SET6(Z6, Z7, Z8, Z9, Z10, Z11)
	SET6(Z12, Z13, Z14, Z15, Z16, Z17)
	SET6(Z18, Z19, Z20, Z21, Z22, Z23)
	VZEROUPPER
	RET

bias24:
	BIAS6(0, Z0, Z1, Z2, Z3, Z4, Z5)
	BIAS6(24, Z6, Z7, Z8, Z9, Z10, Z11)
	BIAS6(48, Z12, Z13, Z14, Z15, Z16, Z17)
	BIAS6(72, Z18, Z19, Z20, Z21, Z22, Z23)
	VZEROUPPER
	RET

// func sgemmKernel12x16AVX512(k int, a, b, c *float32, ldc, pstride, mode int, bias *float32)
TEXT ·sgemmKernel12x16AVX512(SB), NOSPLIT, $0-64
	ARGS
	TESTQ R11, R11
	JEQ   tail12

loop12:
	STEP12(0, 0, Z30)
	STEP12(64, 24, Z31)
	ADDQ $48, SI
	ADDQ $128, DI
	DECQ R11
	JNZ  loop12

tail12:
	TESTQ $1, CX
	JEQ   store12
	STEP12(0, 0, Z30)

store12:
	CMPQ AX, $1
	JEQ  set12
	JGT  bias12
	ADD6(Z0, Z1, Z2, Z3, Z4, Z5)
	ADD6(Z6, Z7, Z8, Z9, Z10, Z11)
	VZEROUPPER
	RET

set12:
	VPXORD Z30, Z30, Z30
	SET6(Z0, Z1, Z2, Z3, Z4, Z5)
	SET6(Z6, Z7, Z8, Z9, Z10, Z11)
	VZEROUPPER
	RET

bias12:
	BIAS6(0, Z0, Z1, Z2, Z3, Z4, Z5)
	BIAS6(24, Z6, Z7, Z8, Z9, Z10, Z11)
	VZEROUPPER
	RET
