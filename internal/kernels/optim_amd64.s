#include "textflag.h"

// The optimizers' updates of optim.go, eight floats per step, with the
// operations of the portable loops in their order (no fused multiply-add).

// func adamAVX2(w, grad, m, v *float32, blocks int, beta1, ob1, beta2, ob2, step, eps float32)
TEXT ·adamAVX2(SB), NOSPLIT, $0-64
	MOVQ         w+0(FP), DI
	MOVQ         grad+8(FP), SI
	MOVQ         m+16(FP), R8
	MOVQ         v+24(FP), R9
	MOVQ         blocks+32(FP), CX
	VBROADCASTSS beta1+40(FP), Y8
	VBROADCASTSS ob1+44(FP), Y12
	VBROADCASTSS beta2+48(FP), Y9
	VBROADCASTSS ob2+52(FP), Y13
	VBROADCASTSS step+56(FP), Y10
	VBROADCASTSS eps+60(FP), Y11
	TESTQ        CX, CX
	JZ           adamDone

adamLoop:
	VMOVUPS (SI), Y0
	VMULPS  (R8), Y8, Y1  // β₁·m
	VMULPS  Y0, Y12, Y2   // (1−β₁)·g
	VADDPS  Y2, Y1, Y1    // m
	VMOVUPS Y1, (R8)
	VMULPS  (R9), Y9, Y3  // β₂·v
	VMULPS  Y0, Y13, Y4   // (1−β₂)·g
	VMULPS  Y0, Y4, Y4    // ·g
	VADDPS  Y4, Y3, Y3    // v
	VMOVUPS Y3, (R9)
	VSQRTPS Y3, Y5
	VADDPS  Y11, Y5, Y5   // √v + eps
	VMULPS  Y1, Y10, Y6   // step·m
	VDIVPS  Y5, Y6, Y6    // step·m / (√v + eps)
	VMOVUPS (DI), Y7
	VSUBPS  Y6, Y7, Y7
	VMOVUPS Y7, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, R8
	ADDQ    $32, R9
	DECQ    CX
	JNZ     adamLoop

adamDone:
	VZEROUPPER
	RET

// func adadeltaAVX2(w, grad, a, u *float32, blocks int, rho, orho, eps, lr float32)
TEXT ·adadeltaAVX2(SB), NOSPLIT, $0-56
	MOVQ         w+0(FP), DI
	MOVQ         grad+8(FP), SI
	MOVQ         a+16(FP), R8
	MOVQ         u+24(FP), R9
	MOVQ         blocks+32(FP), CX
	VBROADCASTSS rho+40(FP), Y8
	VBROADCASTSS orho+44(FP), Y9
	VBROADCASTSS eps+48(FP), Y10
	VBROADCASTSS lr+52(FP), Y11
	TESTQ        CX, CX
	JZ           adaDone

adaLoop:
	VMOVUPS (SI), Y0
	VMULPS  (R8), Y8, Y1  // ρ·a
	VMULPS  Y0, Y9, Y2    // (1−ρ)·g
	VMULPS  Y0, Y2, Y2    // ·g
	VADDPS  Y2, Y1, Y1    // a
	VMOVUPS Y1, (R8)
	VADDPS  Y10, Y1, Y1   // a + eps
	VMOVUPS (R9), Y7      // u
	VADDPS  Y10, Y7, Y2   // u + eps

	// The ratio √(u+eps)/√(a+eps) in float64, four lanes at a time.
	VCVTPS2PD    X2, Y3
	VCVTPS2PD    X1, Y4
	VSQRTPD      Y3, Y3
	VSQRTPD      Y4, Y4
	VDIVPD       Y4, Y3, Y3
	VCVTPD2PSY   Y3, X3
	VEXTRACTF128 $1, Y2, X2
	VEXTRACTF128 $1, Y1, X1
	VCVTPS2PD    X2, Y5
	VCVTPS2PD    X1, Y6
	VSQRTPD      Y5, Y5
	VSQRTPD      Y6, Y6
	VDIVPD       Y6, Y5, Y5
	VCVTPD2PSY   Y5, X5
	VINSERTF128  $1, X5, Y3, Y3

	VMULPS  Y3, Y0, Y0    // d = g·ratio
	VMULPS  Y0, Y11, Y1   // lr·d
	VMOVUPS (DI), Y2
	VSUBPS  Y1, Y2, Y2
	VMOVUPS Y2, (DI)
	VMULPS  Y7, Y8, Y7    // ρ·u
	VMULPS  Y0, Y9, Y1    // (1−ρ)·d
	VMULPS  Y0, Y1, Y1    // ·d
	VADDPS  Y1, Y7, Y7    // u
	VMOVUPS Y7, (R9)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, R8
	ADDQ    $32, R9
	DECQ    CX
	JNZ     adaLoop

adaDone:
	VZEROUPPER
	RET
