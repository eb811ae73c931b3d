// Parts of this file (the AES-256 key expansion, the GHASH key
// preparation and the GHASH reduction) are adapted from the Go standard
// library, crypto/internal/fips140/aes/aes_amd64.s and
// crypto/internal/fips140/aes/gcm/gcm_amd64.s (generated from sources
// marked "Copyright 2024 The Go Authors. All rights reserved."), under
// the Go license:
//
// Copyright 2009 The Go Authors.
//
// Redistribution and use in source and binary forms, with or without
// modification, are permitted provided that the following conditions are
// met:
//
//    * Redistributions of source code must retain the above copyright
// notice, this list of conditions and the following disclaimer.
//    * Redistributions in binary form must reproduce the above
// copyright notice, this list of conditions and the following disclaimer
// in the documentation and/or other materials provided with the
// distribution.
//    * Neither the name of Google LLC nor the names of its
// contributors may be used to endorse or promote products derived from
// this software without specific prior written permission.
//
// THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS
// "AS IS" AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT
// LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR
// A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT
// OWNER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL,
// SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT
// LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE,
// DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY
// THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
// (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
// OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
//
// The keystream and GHASH loops were written for this package.

//go:build amd64 && !purego

#include "textflag.h"

DATA bswapMask<>+0(SB)/8, $0x08090a0b0c0d0e0f
DATA bswapMask<>+8(SB)/8, $0x0001020304050607
GLOBL bswapMask<>(SB), RODATA|NOPTR, $16

DATA gcmPoly<>+0(SB)/8, $0x0000000000000001
DATA gcmPoly<>+8(SB)/8, $0xc200000000000000
GLOBL gcmPoly<>(SB), RODATA|NOPTR, $16

// laneInc holds 0, 1, 2, 3 in the low dword of each 128-bit lane.
DATA laneInc<>+0(SB)/8, $0
DATA laneInc<>+8(SB)/8, $0
DATA laneInc<>+16(SB)/8, $1
DATA laneInc<>+24(SB)/8, $0
DATA laneInc<>+32(SB)/8, $2
DATA laneInc<>+40(SB)/8, $0
DATA laneInc<>+48(SB)/8, $3
DATA laneInc<>+56(SB)/8, $0
GLOBL laneInc<>(SB), RODATA|NOPTR, $64

// four holds 4 in its low dword.
DATA four<>+0(SB)/8, $4
DATA four<>+8(SB)/8, $0
GLOBL four<>(SB), RODATA|NOPTR, $16

// One step of the AES-256 key expansion (even and odd round keys); X1
// holds AESKEYGENASSIST's output, X4 is zero on entry, BX the destination.
#define EXPAND_A \
	PSHUFD $0xff, X1, X1; \
	SHUFPS $0x10, X0, X4; \
	PXOR   X4, X0; \
	SHUFPS $0x8c, X0, X4; \
	PXOR   X4, X0; \
	PXOR   X1, X0; \
	MOVUPS X0, (BX); \
	ADDQ   $0x10, BX

#define EXPAND_B \
	PSHUFD $0xaa, X1, X1; \
	SHUFPS $0x10, X2, X4; \
	PXOR   X4, X2; \
	SHUFPS $0x8c, X2, X4; \
	PXOR   X4, X2; \
	PXOR   X1, X2; \
	MOVUPS X2, (BX); \
	ADDQ   $0x10, BX

// func expandKey256(key *[32]byte, rk *[240]byte)
TEXT ·expandKey256(SB), NOSPLIT, $0-16
	MOVQ   key+0(FP), AX
	MOVQ   rk+8(FP), BX
	MOVUPS (AX), X0
	MOVUPS 16(AX), X2
	MOVUPS X0, (BX)
	MOVUPS X2, 16(BX)
	ADDQ   $0x20, BX
	PXOR   X4, X4
	AESKEYGENASSIST $0x01, X2, X1
	EXPAND_A
	AESKEYGENASSIST $0x01, X0, X1
	EXPAND_B
	AESKEYGENASSIST $0x02, X2, X1
	EXPAND_A
	AESKEYGENASSIST $0x02, X0, X1
	EXPAND_B
	AESKEYGENASSIST $0x04, X2, X1
	EXPAND_A
	AESKEYGENASSIST $0x04, X0, X1
	EXPAND_B
	AESKEYGENASSIST $0x08, X2, X1
	EXPAND_A
	AESKEYGENASSIST $0x08, X0, X1
	EXPAND_B
	AESKEYGENASSIST $0x10, X2, X1
	EXPAND_A
	AESKEYGENASSIST $0x10, X0, X1
	EXPAND_B
	AESKEYGENASSIST $0x20, X2, X1
	EXPAND_A
	AESKEYGENASSIST $0x20, X0, X1
	EXPAND_B
	AESKEYGENASSIST $0x40, X2, X1
	EXPAND_A
	RET

// CTR_ROUNDS encrypts Z0-Z3 with the round keys in Z16-Z30.
#define CTR_ROUND(k) \
	VAESENC k, Z0, Z0; \
	VAESENC k, Z1, Z1; \
	VAESENC k, Z2, Z2; \
	VAESENC k, Z3, Z3

#define CTR_ROUNDS \
	VPXORQ      Z16, Z0, Z0; \
	VPXORQ      Z16, Z1, Z1; \
	VPXORQ      Z16, Z2, Z2; \
	VPXORQ      Z16, Z3, Z3; \
	CTR_ROUND(Z17); \
	CTR_ROUND(Z18); \
	CTR_ROUND(Z19); \
	CTR_ROUND(Z20); \
	CTR_ROUND(Z21); \
	CTR_ROUND(Z22); \
	CTR_ROUND(Z23); \
	CTR_ROUND(Z24); \
	CTR_ROUND(Z25); \
	CTR_ROUND(Z26); \
	CTR_ROUND(Z27); \
	CTR_ROUND(Z28); \
	CTR_ROUND(Z29); \
	VAESENCLAST Z30, Z0, Z0; \
	VAESENCLAST Z30, Z1, Z1; \
	VAESENCLAST Z30, Z2, Z2; \
	VAESENCLAST Z30, Z3, Z3

// CTR_BLOCKS sets Z0-Z3 to the next 16 counter blocks (Z15 holds the
// byte-reversed counters, Z14 the step).
#define CTR_BLOCKS \
	VPSHUFB Z31, Z15, Z0; \
	VPADDD  Z14, Z15, Z15; \
	VPSHUFB Z31, Z15, Z1; \
	VPADDD  Z14, Z15, Z15; \
	VPSHUFB Z31, Z15, Z2; \
	VPADDD  Z14, Z15, Z15; \
	VPSHUFB Z31, Z15, Z3; \
	VPADDD  Z14, Z15, Z15

// func ctrAVX512(rk *[240]byte, iv *[16]byte, dst *byte, src *byte, n int)
//
// XORs n > 0 bytes of src with the AES-256 keystream of counter blocks
// iv, iv+1, ... (the last 32 bits big-endian, incremented modulo 2^32)
// into dst. Requires AVX512F, AVX512BW, VAES and BMI2.
TEXT ·ctrAVX512(SB), NOSPLIT, $0-40
	MOVQ rk+0(FP), AX
	MOVQ iv+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX

	VBROADCASTI32X4 (AX), Z16
	VBROADCASTI32X4 16(AX), Z17
	VBROADCASTI32X4 32(AX), Z18
	VBROADCASTI32X4 48(AX), Z19
	VBROADCASTI32X4 64(AX), Z20
	VBROADCASTI32X4 80(AX), Z21
	VBROADCASTI32X4 96(AX), Z22
	VBROADCASTI32X4 112(AX), Z23
	VBROADCASTI32X4 128(AX), Z24
	VBROADCASTI32X4 144(AX), Z25
	VBROADCASTI32X4 160(AX), Z26
	VBROADCASTI32X4 176(AX), Z27
	VBROADCASTI32X4 192(AX), Z28
	VBROADCASTI32X4 208(AX), Z29
	VBROADCASTI32X4 224(AX), Z30
	VBROADCASTI32X4 bswapMask<>(SB), Z31
	VBROADCASTI32X4 four<>(SB), Z14
	VBROADCASTI32X4 (BX), Z15
	VPSHUFB         Z31, Z15, Z15
	VPADDD          laneInc<>(SB), Z15, Z15

ctrLoop:
	CMPQ DX, $0x100
	JB   ctrTail
	CTR_BLOCKS
	CTR_ROUNDS
	VPXORQ    (SI), Z0, Z0
	VPXORQ    64(SI), Z1, Z1
	VPXORQ    128(SI), Z2, Z2
	VPXORQ    192(SI), Z3, Z3
	VMOVDQU64 Z0, (DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VMOVDQU64 Z3, 192(DI)
	ADDQ      $0x100, SI
	ADDQ      $0x100, DI
	SUBQ      $0x100, DX
	JMP       ctrLoop

ctrTail:
	TESTQ DX, DX
	JZ    ctrDone
	CTR_BLOCKS
	CTR_ROUNDS
	// byte masks of the remaining 0 < DX < 256 bytes, 64 per register
	MOVQ  $-1, R8
	XORQ  R9, R9
	BZHIQ DX, R8, R10
	KMOVQ R10, K1
	VMOVDQU8.Z (SI), K1, Z4
	VPXORQ     Z4, Z0, Z0
	VMOVDQU8   Z0, K1, (DI)
	SUBQ       $0x40, DX
	CMOVQLT    R9, DX
	BZHIQ      DX, R8, R10
	KMOVQ      R10, K1
	VMOVDQU8.Z 64(SI), K1, Z4
	VPXORQ     Z4, Z1, Z1
	VMOVDQU8   Z1, K1, 64(DI)
	SUBQ       $0x40, DX
	CMOVQLT    R9, DX
	BZHIQ      DX, R8, R10
	KMOVQ      R10, K1
	VMOVDQU8.Z 128(SI), K1, Z4
	VPXORQ     Z4, Z2, Z2
	VMOVDQU8   Z2, K1, 128(DI)
	SUBQ       $0x40, DX
	CMOVQLT    R9, DX
	BZHIQ      DX, R8, R10
	KMOVQ      R10, K1
	VMOVDQU8.Z 192(SI), K1, Z4
	VPXORQ     Z4, Z3, Z3
	VMOVDQU8   Z3, K1, 192(DI)

ctrDone:
	VZEROUPPER
	RET

// func ghashInit(h *[16]byte, tab *[17][16]byte)
//
// Sets tab[0..16] to H^17 ... H^1 in the representation of the standard
// library's gcmAesInit (byte-reversed, times x). Requires PCLMULQDQ.
TEXT ·ghashInit(SB), NOSPLIT, $0-16
	MOVQ  h+0(FP), SI
	MOVQ  tab+8(FP), DI
	MOVOU bswapMask<>(SB), X15
	MOVOU gcmPoly<>(SB), X14
	MOVOU (SI), X0
	PSHUFB X15, X0

	// H * 2
	PSHUFD $0xff, X0, X11
	MOVOU  X0, X12
	PSRAL  $0x1f, X11
	PAND   X14, X11
	PSRLL  $0x1f, X12
	PSLLDQ $0x04, X12
	PSLLL  $0x01, X0
	PXOR   X11, X0
	PXOR   X12, X0

	LEAQ   256(DI), DI
	MOVOU  X0, (DI)
	PSHUFD $0x4e, X0, X1
	PXOR   X0, X1
	MOVOU  X0, X2
	MOVOU  X1, X3
	MOVQ   $16, AX

initLoop:
	MOVOU     X2, X11
	MOVOU     X2, X12
	MOVOU     X3, X13
	PCLMULQDQ $0x00, X0, X11
	PCLMULQDQ $0x11, X0, X12
	PCLMULQDQ $0x00, X1, X13
	PXOR      X11, X13
	PXOR      X12, X13
	MOVOU     X13, X4
	PSLLDQ    $0x08, X4
	PSRLDQ    $0x08, X13
	PXOR      X4, X11
	PXOR      X13, X12
	MOVOU     X14, X2
	PCLMULQDQ $0x01, X11, X2
	PSHUFD    $0x4e, X11, X11
	PXOR      X2, X11
	MOVOU     X14, X2
	PCLMULQDQ $0x01, X11, X2
	PSHUFD    $0x4e, X11, X11
	PXOR      X11, X2
	PXOR      X12, X2
	LEAQ      -16(DI), DI
	MOVOU     X2, (DI)
	PSHUFD    $0x4e, X2, X3
	PXOR      X2, X3
	DECQ      AX
	JNE       initLoop
	RET

// GHASH_MUL4 multiplies Z0-Z3 by the powers in Z20-Z23 and sets the
// unreduced lanes: low products in Z9, high in Z10, middle in Z11.
#define GHASH_MUL4 \
	VPCLMULQDQ $0x00, Z20, Z0, Z9; \
	VPCLMULQDQ $0x11, Z20, Z0, Z10; \
	VPCLMULQDQ $0x01, Z20, Z0, Z11; \
	VPCLMULQDQ $0x10, Z20, Z0, Z12; \
	VPXORQ     Z12, Z11, Z11; \
	VPCLMULQDQ $0x00, Z21, Z1, Z12; \
	VPCLMULQDQ $0x11, Z21, Z1, Z13; \
	VPXORQ     Z12, Z9, Z9; \
	VPXORQ     Z13, Z10, Z10; \
	VPCLMULQDQ $0x01, Z21, Z1, Z12; \
	VPCLMULQDQ $0x10, Z21, Z1, Z13; \
	VPTERNLOGQ $0x96, Z13, Z12, Z11; \
	VPCLMULQDQ $0x00, Z22, Z2, Z12; \
	VPCLMULQDQ $0x11, Z22, Z2, Z13; \
	VPXORQ     Z12, Z9, Z9; \
	VPXORQ     Z13, Z10, Z10; \
	VPCLMULQDQ $0x01, Z22, Z2, Z12; \
	VPCLMULQDQ $0x10, Z22, Z2, Z13; \
	VPTERNLOGQ $0x96, Z13, Z12, Z11; \
	VPCLMULQDQ $0x00, Z23, Z3, Z12; \
	VPCLMULQDQ $0x11, Z23, Z3, Z13; \
	VPXORQ     Z12, Z9, Z9; \
	VPXORQ     Z13, Z10, Z10; \
	VPCLMULQDQ $0x01, Z23, Z3, Z12; \
	VPCLMULQDQ $0x10, Z23, Z3, Z13; \
	VPTERNLOGQ $0x96, Z13, Z12, Z11

// GHASH_FOLD XORs the four lanes of Z9, Z10 and Z11 into X9, X10, X11.
#define GHASH_FOLD \
	VEXTRACTI64X4 $1, Z9, Y12; \
	VEXTRACTI64X4 $1, Z10, Y13; \
	VPXOR         Y12, Y9, Y9; \
	VPXOR         Y13, Y10, Y10; \
	VEXTRACTI64X4 $1, Z11, Y12; \
	VPXOR         Y12, Y11, Y11; \
	VEXTRACTI128  $1, Y9, X12; \
	VEXTRACTI128  $1, Y10, X13; \
	VPXOR         X12, X9, X9; \
	VPXOR         X13, X10, X10; \
	VEXTRACTI128  $1, Y11, X12; \
	VPXOR         X12, X11, X11

// GHASH_REDUCE sets X8 to the reduction of the product whose low, high
// and middle parts are X9, X10, X11 (X14 holds the polynomial).
#define GHASH_REDUCE \
	VPSLLDQ    $8, X11, X12; \
	VPSRLDQ    $8, X11, X11; \
	VPXOR      X12, X9, X9; \
	VPXOR      X11, X10, X10; \
	VPCLMULQDQ $0x01, X9, X14, X12; \
	VPSHUFD    $0x4e, X9, X9; \
	VPXOR      X12, X9, X9; \
	VPCLMULQDQ $0x01, X9, X14, X12; \
	VPSHUFD    $0x4e, X9, X9; \
	VPXOR      X12, X9, X9; \
	VPXOR      X10, X9, X8

// GHASH_REDUCE_M is GHASH_REDUCE with the polynomial read from memory,
// leaving X14 free.
#define GHASH_REDUCE_M \
	VPSLLDQ    $8, X11, X12; \
	VPSRLDQ    $8, X11, X11; \
	VPXOR      X12, X9, X9; \
	VPXOR      X11, X10, X10; \
	VPCLMULQDQ $0x10, gcmPoly<>(SB), X9, X12; \
	VPSHUFD    $0x4e, X9, X9; \
	VPXOR      X12, X9, X9; \
	VPCLMULQDQ $0x10, gcmPoly<>(SB), X9, X12; \
	VPSHUFD    $0x4e, X9, X9; \
	VPXOR      X12, X9, X9; \
	VPXOR      X10, X9, X8

// func gmacAVX512(tab *[17][16]byte, mask *[16]byte, data *byte, n int, out *[16]byte)
//
// Sets out to GHASH(data zero-padded to whole blocks || 0^64 || be64(8n))
// XOR mask: AES-GCM's tag over additional data only. Requires AVX512F,
// AVX512BW, VPCLMULQDQ and BMI2.
TEXT ·gmacAVX512(SB), NOSPLIT, $0-40
	MOVQ tab+0(FP), DI
	MOVQ mask+8(FP), BX
	MOVQ data+16(FP), SI
	MOVQ n+24(FP), DX
	MOVQ DX, CX
	SHLQ $3, CX

	VBROADCASTI32X4 bswapMask<>(SB), Z31
	VMOVDQU         gcmPoly<>(SB), X14
	VPXOR           X8, X8, X8
	VMOVDQU64       16(DI), Z20
	VMOVDQU64       80(DI), Z21
	VMOVDQU64       144(DI), Z22
	VMOVDQU64       208(DI), Z23

gmacLoop:
	CMPQ      DX, $0x100
	JB        gmacTail
	VMOVDQU64 (SI), Z0
	VMOVDQU64 64(SI), Z1
	VMOVDQU64 128(SI), Z2
	VMOVDQU64 192(SI), Z3
	VPSHUFB   Z31, Z0, Z0
	VPSHUFB   Z31, Z1, Z1
	VPSHUFB   Z31, Z2, Z2
	VPSHUFB   Z31, Z3, Z3
	VPXORQ    Z8, Z0, Z0
	GHASH_MUL4
	GHASH_FOLD
	GHASH_REDUCE
	ADDQ      $0x100, SI
	SUBQ      $0x100, DX
	JMP       gmacLoop

gmacTail:
	TESTQ DX, DX
	JZ    gmacLen

	// r = ceil(DX/16) blocks; block i takes H^(r+1-i), tab[16-r+i],
	// loaded under a mask of 2r quadwords so that nothing past tab[15]
	// is read
	LEAQ       15(DX), R8
	SHRQ       $4, R8
	LEAQ       (R8)(R8*1), R12
	SHLQ       $4, R8
	LEAQ       256(DI), R11
	SUBQ       R8, R11
	MOVQ       $0xff, R8
	XORQ       R9, R9
	BZHIQ      R12, R8, R10
	KMOVQ      R10, K2
	VMOVDQU64.Z (R11), K2, Z20
	SUBQ       $8, R12
	CMOVQLT    R9, R12
	BZHIQ      R12, R8, R10
	KMOVQ      R10, K2
	VMOVDQU64.Z 64(R11), K2, Z21
	SUBQ       $8, R12
	CMOVQLT    R9, R12
	BZHIQ      R12, R8, R10
	KMOVQ      R10, K2
	VMOVDQU64.Z 128(R11), K2, Z22
	SUBQ       $8, R12
	CMOVQLT    R9, R12
	BZHIQ      R12, R8, R10
	KMOVQ      R10, K2
	VMOVDQU64.Z 192(R11), K2, Z23

	MOVQ       $-1, R8
	XORQ       R9, R9
	BZHIQ      DX, R8, R10
	KMOVQ      R10, K1
	VMOVDQU8.Z (SI), K1, Z0
	SUBQ       $0x40, DX
	CMOVQLT    R9, DX
	BZHIQ      DX, R8, R10
	KMOVQ      R10, K1
	VMOVDQU8.Z 64(SI), K1, Z1
	SUBQ       $0x40, DX
	CMOVQLT    R9, DX
	BZHIQ      DX, R8, R10
	KMOVQ      R10, K1
	VMOVDQU8.Z 128(SI), K1, Z2
	SUBQ       $0x40, DX
	CMOVQLT    R9, DX
	BZHIQ      DX, R8, R10
	KMOVQ      R10, K1
	VMOVDQU8.Z 192(SI), K1, Z3
	VPSHUFB    Z31, Z0, Z0
	VPSHUFB    Z31, Z1, Z1
	VPSHUFB    Z31, Z2, Z2
	VPSHUFB    Z31, Z3, Z3
	VPXORQ     Z8, Z0, Z0
	GHASH_MUL4
	GHASH_FOLD

	// the length block times H^1, added before the one reduction
	VMOVQ      CX, X0
	VPSLLDQ    $8, X0, X0
	VMOVDQU    256(DI), X1
	VPCLMULQDQ $0x00, X1, X0, X12
	VPCLMULQDQ $0x11, X1, X0, X13
	VPXOR      X12, X9, X9
	VPXOR      X13, X10, X10
	VPCLMULQDQ $0x01, X1, X0, X12
	VPCLMULQDQ $0x10, X1, X0, X13
	VPXOR      X12, X11, X11
	VPXOR      X13, X11, X11
	GHASH_REDUCE
	JMP        gmacDone

gmacLen:
	// no partial chunk: (acc XOR the length block) times H^1
	VMOVQ      CX, X0
	VPSLLDQ    $8, X0, X0
	VPXOR      X8, X0, X0
	VMOVDQU    256(DI), X1
	VPCLMULQDQ $0x00, X1, X0, X9
	VPCLMULQDQ $0x11, X1, X0, X10
	VPCLMULQDQ $0x01, X1, X0, X11
	VPCLMULQDQ $0x10, X1, X0, X12
	VPXOR      X12, X11, X11
	GHASH_REDUCE

gmacDone:
	MOVQ    out+32(FP), AX
	VMOVDQU bswapMask<>(SB), X1
	VPSHUFB X1, X8, X8
	VPXOR   (BX), X8, X8
	VMOVDQU X8, (AX)
	VZEROUPPER
	RET

// AESNI_ROUND applies round key k (loaded into X11) to X0-X7.
#define AESNI_ROUND(k) \
	MOVOU  k(AX), X11; \
	AESENC X11, X0; \
	AESENC X11, X1; \
	AESENC X11, X2; \
	AESENC X11, X3; \
	AESENC X11, X4; \
	AESENC X11, X5; \
	AESENC X11, X6; \
	AESENC X11, X7

#define AESNI_NEXT(x) \
	MOVOU  X8, x; \
	PADDD  X10, X8; \
	PSHUFB X9, x

#define AESNI_XOR(x, off) \
	MOVOU off(SI), X12; \
	PXOR  X12, x; \
	MOVOU x, off(DI)

// AESNI_BLOCKS8 sets X0-X7 to the encryptions of the next eight counter
// blocks.
#define AESNI_BLOCKS8 \
	AESNI_NEXT(X0); \
	AESNI_NEXT(X1); \
	AESNI_NEXT(X2); \
	AESNI_NEXT(X3); \
	AESNI_NEXT(X4); \
	AESNI_NEXT(X5); \
	AESNI_NEXT(X6); \
	AESNI_NEXT(X7); \
	MOVOU (AX), X11; \
	PXOR  X11, X0; \
	PXOR  X11, X1; \
	PXOR  X11, X2; \
	PXOR  X11, X3; \
	PXOR  X11, X4; \
	PXOR  X11, X5; \
	PXOR  X11, X6; \
	PXOR  X11, X7; \
	AESNI_ROUND(16); \
	AESNI_ROUND(32); \
	AESNI_ROUND(48); \
	AESNI_ROUND(64); \
	AESNI_ROUND(80); \
	AESNI_ROUND(96); \
	AESNI_ROUND(112); \
	AESNI_ROUND(128); \
	AESNI_ROUND(144); \
	AESNI_ROUND(160); \
	AESNI_ROUND(176); \
	AESNI_ROUND(192); \
	AESNI_ROUND(208); \
	MOVOU      224(AX), X11; \
	AESENCLAST X11, X0; \
	AESENCLAST X11, X1; \
	AESENCLAST X11, X2; \
	AESENCLAST X11, X3; \
	AESENCLAST X11, X4; \
	AESENCLAST X11, X5; \
	AESENCLAST X11, X6; \
	AESENCLAST X11, X7

// func ctrAESNI8(rk *[240]byte, iv *[16]byte, dst *byte, src *byte, n int)
//
// As ctrAVX512, with AES-NI eight blocks at a time.
// Requires AES, SSSE3 and SSE4.1.
TEXT ·ctrAESNI8(SB), NOSPLIT, $16-40
	MOVQ  rk+0(FP), AX
	MOVQ  iv+8(FP), BX
	MOVQ  dst+16(FP), DI
	MOVQ  src+24(FP), SI
	MOVQ  n+32(FP), DX
	MOVOU bswapMask<>(SB), X9
	MOVOU four<>(SB), X10
	PSRLL $2, X10 // one
	MOVOU (BX), X8
	PSHUFB X9, X8

aesni8Loop:
	CMPQ DX, $0x80
	JB   aesniTail
	AESNI_BLOCKS8
	AESNI_XOR(X0, 0)
	AESNI_XOR(X1, 16)
	AESNI_XOR(X2, 32)
	AESNI_XOR(X3, 48)
	AESNI_XOR(X4, 64)
	AESNI_XOR(X5, 80)
	AESNI_XOR(X6, 96)
	AESNI_XOR(X7, 112)
	ADDQ $0x80, SI
	ADDQ $0x80, DI
	SUBQ $0x80, DX
	JMP  aesni8Loop

aesniTail:
	TESTQ DX, DX
	JZ    aesniDone
	AESNI_BLOCKS8
	// 0 < DX < 128: whole blocks, then the rest
	CMPQ DX, $0x10
	JB   aesniPart0
	AESNI_XOR(X0, 0)
	SUBQ $0x10, DX
	JZ   aesniDone
	CMPQ DX, $0x10
	JB   aesniPart1
	AESNI_XOR(X1, 16)
	SUBQ $0x10, DX
	JZ   aesniDone
	CMPQ DX, $0x10
	JB   aesniPart2
	AESNI_XOR(X2, 32)
	SUBQ $0x10, DX
	JZ   aesniDone
	CMPQ DX, $0x10
	JB   aesniPart3
	AESNI_XOR(X3, 48)
	SUBQ $0x10, DX
	JZ   aesniDone
	CMPQ DX, $0x10
	JB   aesniPart4
	AESNI_XOR(X4, 64)
	SUBQ $0x10, DX
	JZ   aesniDone
	CMPQ DX, $0x10
	JB   aesniPart5
	AESNI_XOR(X5, 80)
	SUBQ $0x10, DX
	JZ   aesniDone
	CMPQ DX, $0x10
	JB   aesniPart6
	AESNI_XOR(X6, 96)
	SUBQ $0x10, DX
	JZ   aesniDone
	CMPQ DX, $0x10
	JB   aesniPart7
	AESNI_XOR(X7, 112)
	SUBQ $0x10, DX
	JZ   aesniDone
	JMP  aesniDone

aesniPart0:
	MOVOU X0, X12
	LEAQ  0(SI), SI
	LEAQ  0(DI), DI
	JMP   aesniPartial

aesniPart1:
	MOVOU X1, X12
	LEAQ  16(SI), SI
	LEAQ  16(DI), DI
	JMP   aesniPartial

aesniPart2:
	MOVOU X2, X12
	LEAQ  32(SI), SI
	LEAQ  32(DI), DI
	JMP   aesniPartial

aesniPart3:
	MOVOU X3, X12
	LEAQ  48(SI), SI
	LEAQ  48(DI), DI
	JMP   aesniPartial

aesniPart4:
	MOVOU X4, X12
	LEAQ  64(SI), SI
	LEAQ  64(DI), DI
	JMP   aesniPartial

aesniPart5:
	MOVOU X5, X12
	LEAQ  80(SI), SI
	LEAQ  80(DI), DI
	JMP   aesniPartial

aesniPart6:
	MOVOU X6, X12
	LEAQ  96(SI), SI
	LEAQ  96(DI), DI
	JMP   aesniPartial

aesniPart7:
	MOVOU X7, X12
	LEAQ  112(SI), SI
	LEAQ  112(DI), DI
	JMP   aesniPartial

aesniPartial:
	// the last 0 < DX < 16 bytes, with the keystream block in X12
	MOVOU X12, (SP)
	XORQ  CX, CX

aesniPartLoop:
	MOVB (SI)(CX*1), AX
	XORB (SP)(CX*1), AX
	MOVB AX, (DI)(CX*1)
	INCQ CX
	CMPQ CX, DX
	JB   aesniPartLoop

aesniDone:
	RET

// func cpuid7() (ebx uint32, ecx uint32)
TEXT ·cpuid7(SB), NOSPLIT, $0-8
	MOVL  $7, AX
	XORL  CX, CX
	CPUID
	MOVL  BX, ebx+0(FP)
	MOVL  CX, ecx+4(FP)
	RET

#define Y_NEXT(y) \
	VPSHUFB Y10, Y8, y; \
	VPADDD  Y9, Y8, Y8

#define Y_ROUND(k) \
	VBROADCASTI128 k(AX), Y11; \
	VAESENC        Y11, Y0, Y0; \
	VAESENC        Y11, Y1, Y1; \
	VAESENC        Y11, Y2, Y2; \
	VAESENC        Y11, Y3, Y3; \
	VAESENC        Y11, Y4, Y4; \
	VAESENC        Y11, Y5, Y5; \
	VAESENC        Y11, Y6, Y6; \
	VAESENC        Y11, Y7, Y7

#define Y_XOR(y, off) \
	VPXOR   off(SI), y, y; \
	VMOVDQU y, off(DI)

#define Y1_ROUND(k) \
	VBROADCASTI128 k(AX), Y11; \
	VAESENC        Y11, Y0, Y0

// Y_BLOCKS16 sets Y0-Y7 to the encryptions of the next sixteen counter
// blocks.
#define Y_BLOCKS16 \
	Y_NEXT(Y0); \
	Y_NEXT(Y1); \
	Y_NEXT(Y2); \
	Y_NEXT(Y3); \
	Y_NEXT(Y4); \
	Y_NEXT(Y5); \
	Y_NEXT(Y6); \
	Y_NEXT(Y7); \
	VBROADCASTI128 (AX), Y11; \
	VPXOR          Y11, Y0, Y0; \
	VPXOR          Y11, Y1, Y1; \
	VPXOR          Y11, Y2, Y2; \
	VPXOR          Y11, Y3, Y3; \
	VPXOR          Y11, Y4, Y4; \
	VPXOR          Y11, Y5, Y5; \
	VPXOR          Y11, Y6, Y6; \
	VPXOR          Y11, Y7, Y7; \
	Y_ROUND(16); \
	Y_ROUND(32); \
	Y_ROUND(48); \
	Y_ROUND(64); \
	Y_ROUND(80); \
	Y_ROUND(96); \
	Y_ROUND(112); \
	Y_ROUND(128); \
	Y_ROUND(144); \
	Y_ROUND(160); \
	Y_ROUND(176); \
	Y_ROUND(192); \
	Y_ROUND(208); \
	VBROADCASTI128 224(AX), Y11; \
	VAESENCLAST    Y11, Y0, Y0; \
	VAESENCLAST    Y11, Y1, Y1; \
	VAESENCLAST    Y11, Y2, Y2; \
	VAESENCLAST    Y11, Y3, Y3; \
	VAESENCLAST    Y11, Y4, Y4; \
	VAESENCLAST    Y11, Y5, Y5; \
	VAESENCLAST    Y11, Y6, Y6; \
	VAESENCLAST    Y11, Y7, Y7

// func ctrAVX2(rk *[240]byte, iv *[16]byte, dst *byte, src *byte, n int)
//
// As ctrAVX512, with VAES on 256-bit registers (two blocks per
// instruction, sixteen at a time). Requires AVX2, AES and
// VAES.
TEXT ·ctrAVX2(SB), NOSPLIT, $16-40
	MOVQ rk+0(FP), AX
	MOVQ iv+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX

	VBROADCASTI128 bswapMask<>(SB), Y10
	VBROADCASTI128 four<>(SB), Y9
	VPSRLD         $1, Y9, Y9 // two
	VBROADCASTI128 (BX), Y8
	VPSHUFB        Y10, Y8, Y8
	VPADDD         laneInc<>(SB), Y8, Y8

avx2Loop16:
	CMPQ DX, $0x100
	JB   avx2Tail
	Y_BLOCKS16
	Y_XOR(Y0, 0)
	Y_XOR(Y1, 32)
	Y_XOR(Y2, 64)
	Y_XOR(Y3, 96)
	Y_XOR(Y4, 128)
	Y_XOR(Y5, 160)
	Y_XOR(Y6, 192)
	Y_XOR(Y7, 224)
	ADDQ $0x100, SI
	ADDQ $0x100, DI
	SUBQ $0x100, DX
	JMP  avx2Loop16

avx2Tail:
	TESTQ DX, DX
	JZ    avx2Done
	Y_BLOCKS16
	// 0 < DX < 256: whole pairs, then a block and the rest
	CMPQ DX, $0x20
	JB   avx2One0
	Y_XOR(Y0, 0)
	SUBQ $0x20, DX
	CMPQ DX, $0x20
	JB   avx2One1
	Y_XOR(Y1, 32)
	SUBQ $0x20, DX
	CMPQ DX, $0x20
	JB   avx2One2
	Y_XOR(Y2, 64)
	SUBQ $0x20, DX
	CMPQ DX, $0x20
	JB   avx2One3
	Y_XOR(Y3, 96)
	SUBQ $0x20, DX
	CMPQ DX, $0x20
	JB   avx2One4
	Y_XOR(Y4, 128)
	SUBQ $0x20, DX
	CMPQ DX, $0x20
	JB   avx2One5
	Y_XOR(Y5, 160)
	SUBQ $0x20, DX
	CMPQ DX, $0x20
	JB   avx2One6
	Y_XOR(Y6, 192)
	SUBQ $0x20, DX
	CMPQ DX, $0x20
	JB   avx2One7
	Y_XOR(Y7, 224)
	SUBQ $0x20, DX
	JMP  avx2Done

avx2One0:
	TESTQ        DX, DX
	JZ           avx2Done
	CMPQ         DX, $0x10
	JB           avx2Lo0
	VPXOR        0(SI), X0, X12
	VMOVDQU      X12, 0(DI)
	SUBQ         $0x10, DX
	JZ           avx2Done
	VEXTRACTI128 $1, Y0, X12
	LEAQ         16(SI), SI
	LEAQ         16(DI), DI
	JMP          avx2Partial

avx2Lo0:
	VMOVDQU X0, X12
	LEAQ    0(SI), SI
	LEAQ    0(DI), DI
	JMP     avx2Partial

avx2One1:
	TESTQ        DX, DX
	JZ           avx2Done
	CMPQ         DX, $0x10
	JB           avx2Lo1
	VPXOR        32(SI), X1, X12
	VMOVDQU      X12, 32(DI)
	SUBQ         $0x10, DX
	JZ           avx2Done
	VEXTRACTI128 $1, Y1, X12
	LEAQ         48(SI), SI
	LEAQ         48(DI), DI
	JMP          avx2Partial

avx2Lo1:
	VMOVDQU X1, X12
	LEAQ    32(SI), SI
	LEAQ    32(DI), DI
	JMP     avx2Partial

avx2One2:
	TESTQ        DX, DX
	JZ           avx2Done
	CMPQ         DX, $0x10
	JB           avx2Lo2
	VPXOR        64(SI), X2, X12
	VMOVDQU      X12, 64(DI)
	SUBQ         $0x10, DX
	JZ           avx2Done
	VEXTRACTI128 $1, Y2, X12
	LEAQ         80(SI), SI
	LEAQ         80(DI), DI
	JMP          avx2Partial

avx2Lo2:
	VMOVDQU X2, X12
	LEAQ    64(SI), SI
	LEAQ    64(DI), DI
	JMP     avx2Partial

avx2One3:
	TESTQ        DX, DX
	JZ           avx2Done
	CMPQ         DX, $0x10
	JB           avx2Lo3
	VPXOR        96(SI), X3, X12
	VMOVDQU      X12, 96(DI)
	SUBQ         $0x10, DX
	JZ           avx2Done
	VEXTRACTI128 $1, Y3, X12
	LEAQ         112(SI), SI
	LEAQ         112(DI), DI
	JMP          avx2Partial

avx2Lo3:
	VMOVDQU X3, X12
	LEAQ    96(SI), SI
	LEAQ    96(DI), DI
	JMP     avx2Partial

avx2One4:
	TESTQ        DX, DX
	JZ           avx2Done
	CMPQ         DX, $0x10
	JB           avx2Lo4
	VPXOR        128(SI), X4, X12
	VMOVDQU      X12, 128(DI)
	SUBQ         $0x10, DX
	JZ           avx2Done
	VEXTRACTI128 $1, Y4, X12
	LEAQ         144(SI), SI
	LEAQ         144(DI), DI
	JMP          avx2Partial

avx2Lo4:
	VMOVDQU X4, X12
	LEAQ    128(SI), SI
	LEAQ    128(DI), DI
	JMP     avx2Partial

avx2One5:
	TESTQ        DX, DX
	JZ           avx2Done
	CMPQ         DX, $0x10
	JB           avx2Lo5
	VPXOR        160(SI), X5, X12
	VMOVDQU      X12, 160(DI)
	SUBQ         $0x10, DX
	JZ           avx2Done
	VEXTRACTI128 $1, Y5, X12
	LEAQ         176(SI), SI
	LEAQ         176(DI), DI
	JMP          avx2Partial

avx2Lo5:
	VMOVDQU X5, X12
	LEAQ    160(SI), SI
	LEAQ    160(DI), DI
	JMP     avx2Partial

avx2One6:
	TESTQ        DX, DX
	JZ           avx2Done
	CMPQ         DX, $0x10
	JB           avx2Lo6
	VPXOR        192(SI), X6, X12
	VMOVDQU      X12, 192(DI)
	SUBQ         $0x10, DX
	JZ           avx2Done
	VEXTRACTI128 $1, Y6, X12
	LEAQ         208(SI), SI
	LEAQ         208(DI), DI
	JMP          avx2Partial

avx2Lo6:
	VMOVDQU X6, X12
	LEAQ    192(SI), SI
	LEAQ    192(DI), DI
	JMP     avx2Partial

avx2One7:
	TESTQ        DX, DX
	JZ           avx2Done
	CMPQ         DX, $0x10
	JB           avx2Lo7
	VPXOR        224(SI), X7, X12
	VMOVDQU      X12, 224(DI)
	SUBQ         $0x10, DX
	JZ           avx2Done
	VEXTRACTI128 $1, Y7, X12
	LEAQ         240(SI), SI
	LEAQ         240(DI), DI
	JMP          avx2Partial

avx2Lo7:
	VMOVDQU X7, X12
	LEAQ    224(SI), SI
	LEAQ    224(DI), DI
	JMP     avx2Partial

avx2Partial:
	// the last 0 < DX < 16 bytes, with the keystream block in X12
	VMOVDQU X12, (SP)
	XORQ  CX, CX

avx2PartLoop:
	MOVB (SI)(CX*1), AX
	XORB (SP)(CX*1), AX
	MOVB AX, (DI)(CX*1)
	INCQ CX
	CMPQ CX, DX
	JB   avx2PartLoop

avx2Done:
	VZEROUPPER
	RET

// Y_KMUL multiplies y by the two powers at off(DI) (Karatsuba) and adds
// the unreduced products into Y9 (low), Y10 (high) and Y11 (products of
// the halves' sums; Y_KFIX, once, makes them the middle part).
#define Y_KMUL(y, off) \
	VMOVDQU    off(DI), Y14; \
	VPCLMULQDQ $0x00, Y14, y, Y12; \
	VPCLMULQDQ $0x11, Y14, y, Y13; \
	VPXOR      Y12, Y9, Y9; \
	VPXOR      Y13, Y10, Y10; \
	VPSHUFD    $0x4e, y, Y12; \
	VPSHUFD    $0x4e, Y14, Y13; \
	VPXOR      y, Y12, Y12; \
	VPXOR      Y14, Y13, Y13; \
	VPCLMULQDQ $0x00, Y13, Y12, Y12; \
	VPXOR      Y12, Y11, Y11

#define Y_KFIX \
	VPXOR X9, X11, X11; \
	VPXOR X10, X11, X11

// GMAC_TAIL_SETUP starts the last chunk of gmacAVX2 and gmacAVX, with SI
// at the tail's CX = m blocks: block i takes H^(m-i) (tab[17-m+i], at R11), the
// sums X9-X11 cleared and the first block, with the hash so far (X8)
// added, in X0.
#define GMAC_TAIL_SETUP \
	MOVQ $17, R11; \
	SUBQ CX, R11; \
	SHLQ $4, R11; \
	ADDQ DI, R11; \
	VPXOR X9, X9, X9; \
	VPXOR X10, X10, X10; \
	VPXOR X11, X11, X11; \
	VMOVDQU (SI), X0; \
	VPSHUFB X15, X0, X0; \
	VPXOR X8, X0, X0

// GMAC_OUT writes the tag to (AX): the hash (X8) in byte order, masked
// with (BX).
#define GMAC_OUT \
	VPSHUFB X15, X8, X8; \
	VPXOR (BX), X8, X8; \
	VMOVDQU X8, (AX)

// func gmacAVX2(tab *[17][16]byte, mask *[16]byte, data *byte, n int, tail *byte, m int, out *[16]byte)
//
// Sets out to GHASH(data[:n] || tail[:16m]) XOR mask, for n a multiple of
// 256 and 1 <= m <= 17 (tail holds the zero-padded rest of the data and
// the length block). Requires AVX2 and VPCLMULQDQ.
TEXT ·gmacAVX2(SB), NOSPLIT, $0-56
	MOVQ tab+0(FP), DI
	MOVQ data+16(FP), SI
	MOVQ n+24(FP), DX

	VBROADCASTI128 bswapMask<>(SB), Y15
	VPXOR          X8, X8, X8

gavx2Loop:
	CMPQ    DX, $0x100
	JB      gavx2Tail
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVDQU 64(SI), Y2
	VMOVDQU 96(SI), Y3
	VMOVDQU 128(SI), Y4
	VMOVDQU 160(SI), Y5
	VMOVDQU 192(SI), Y6
	VMOVDQU 224(SI), Y7
	VPSHUFB Y15, Y0, Y0
	VPSHUFB Y15, Y1, Y1
	VPSHUFB Y15, Y2, Y2
	VPSHUFB Y15, Y3, Y3
	VPSHUFB Y15, Y4, Y4
	VPSHUFB Y15, Y5, Y5
	VPSHUFB Y15, Y6, Y6
	VPSHUFB Y15, Y7, Y7
	VPXOR   Y8, Y0, Y0
	VPXOR   Y9, Y9, Y9
	VPXOR   Y10, Y10, Y10
	VPXOR   Y11, Y11, Y11
	Y_KMUL(Y0, 16)
	Y_KMUL(Y1, 48)
	Y_KMUL(Y2, 80)
	Y_KMUL(Y3, 112)
	Y_KMUL(Y4, 144)
	Y_KMUL(Y5, 176)
	Y_KMUL(Y6, 208)
	Y_KMUL(Y7, 240)
	VEXTRACTI128 $1, Y9, X12
	VEXTRACTI128 $1, Y10, X13
	VPXOR        X12, X9, X9
	VPXOR        X13, X10, X10
	VEXTRACTI128 $1, Y11, X12
	VPXOR        X12, X11, X11
	Y_KFIX
	GHASH_REDUCE_M
	ADDQ         $0x100, SI
	SUBQ         $0x100, DX
	JMP          gavx2Loop

gavx2Tail:
	MOVQ tail+32(FP), SI
	MOVQ m+40(FP), CX
	GMAC_TAIL_SETUP
	JMP     gavx2Mul

gavx2TailLoop:
	VMOVDQU (SI), X0
	VPSHUFB X15, X0, X0

gavx2Mul:
	VPCLMULQDQ $0x00, (R11), X0, X12
	VPCLMULQDQ $0x11, (R11), X0, X13
	VPXOR      X12, X9, X9
	VPXOR      X13, X10, X10
	VPCLMULQDQ $0x01, (R11), X0, X12
	VPCLMULQDQ $0x10, (R11), X0, X13
	VPXOR      X12, X11, X11
	VPXOR      X13, X11, X11
	ADDQ       $0x10, SI
	ADDQ       $0x10, R11
	DECQ       CX
	JNZ        gavx2TailLoop
	GHASH_REDUCE_M

	MOVQ mask+8(FP), BX
	MOVQ out+48(FP), AX
	GMAC_OUT
	VZEROUPPER
	RET

// X_KMUL multiplies X0 by the power at t (Karatsuba) and adds the
// unreduced products into X9 (low), X10 (high) and X11 (the middle
// product of the halves' sums; X_KFIX turns it into the middle part).
#define X_KMUL(t) \
	VMOVDQU    t, X1; \
	VPCLMULQDQ $0x00, X1, X0, X12; \
	VPCLMULQDQ $0x11, X1, X0, X13; \
	VPSHUFD    $0x4e, X0, X2; \
	VPSHUFD    $0x4e, X1, X3; \
	VPXOR      X0, X2, X2; \
	VPXOR      X1, X3, X3; \
	VPXOR      X12, X9, X9; \
	VPXOR      X13, X10, X10; \
	VPCLMULQDQ $0x00, X3, X2, X12; \
	VPXOR      X12, X11, X11

#define X_KFIX \
	VPXOR X9, X11, X11; \
	VPXOR X10, X11, X11

#define X_LOAD(off) \
	VMOVDQU off(SI), X0; \
	VPSHUFB X15, X0, X0

// func gmacAVX(tab *[17][16]byte, mask *[16]byte, data *byte, n int, tail *byte, m int, out *[16]byte)
//
// As gmacAVX2, one block at a time (Karatsuba, sixteen per reduction).
// Requires AVX and PCLMULQDQ.
TEXT ·gmacAVX(SB), NOSPLIT, $0-56
	MOVQ tab+0(FP), DI
	MOVQ data+16(FP), SI
	MOVQ n+24(FP), DX

	VMOVDQU bswapMask<>(SB), X15
	VMOVDQU gcmPoly<>(SB), X14
	VPXOR   X8, X8, X8

gavxLoop:
	CMPQ  DX, $0x100
	JB    gavxTail
	VPXOR X9, X9, X9
	VPXOR X10, X10, X10
	VPXOR X11, X11, X11
	X_LOAD(0)
	VPXOR X8, X0, X0
	X_KMUL(16(DI))
	X_LOAD(16)
	X_KMUL(32(DI))
	X_LOAD(32)
	X_KMUL(48(DI))
	X_LOAD(48)
	X_KMUL(64(DI))
	X_LOAD(64)
	X_KMUL(80(DI))
	X_LOAD(80)
	X_KMUL(96(DI))
	X_LOAD(96)
	X_KMUL(112(DI))
	X_LOAD(112)
	X_KMUL(128(DI))
	X_LOAD(128)
	X_KMUL(144(DI))
	X_LOAD(144)
	X_KMUL(160(DI))
	X_LOAD(160)
	X_KMUL(176(DI))
	X_LOAD(176)
	X_KMUL(192(DI))
	X_LOAD(192)
	X_KMUL(208(DI))
	X_LOAD(208)
	X_KMUL(224(DI))
	X_LOAD(224)
	X_KMUL(240(DI))
	X_LOAD(240)
	X_KMUL(256(DI))
	X_KFIX
	GHASH_REDUCE
	ADDQ $0x100, SI
	SUBQ $0x100, DX
	JMP  gavxLoop

gavxTail:
	MOVQ tail+32(FP), SI
	MOVQ m+40(FP), CX
	GMAC_TAIL_SETUP
	JMP     gavxMul

gavxTailLoop:
	VMOVDQU (SI), X0
	VPSHUFB X15, X0, X0

gavxMul:
	X_KMUL((R11))
	ADDQ $0x10, SI
	ADDQ $0x10, R11
	DECQ CX
	JNZ  gavxTailLoop
	X_KFIX
	GHASH_REDUCE

	MOVQ mask+8(FP), BX
	MOVQ out+48(FP), AX
	GMAC_OUT
	RET
