//go:build amd64 && !purego

package cellcrypt

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// x/sys/cpu reports VAES and VPCLMULQDQ only with AVX-512; their CPUID
// bits (leaf 7, ECX bits 9 and 10) are read here for the AVX2 paths.
// noAVX512 and noVec come from the build tags (limit_*.go).
var (
	hasAESNI            = cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasSSE41 && cpu.X86.HasSSSE3
	hasVAES, hasVPCLMUL = vecAES()
	hasAVX512           = !noAVX512 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasBMI2
)

func vecAES() (vaes, vpclmul bool) {
	if noVec || !hasAESNI || !cpu.X86.HasAVX2 {
		return false, false
	}
	_, ecx := cpuid7()
	return ecx&(1<<9) != 0, ecx&(1<<10) != 0
}

func ctrMode() int {
	switch {
	case forceGeneric || !hasAESNI:
		return ctrGeneric
	case hasVAES && hasAVX512:
		return ctrVAES512
	case hasVAES:
		return ctrVAES256
	}
	return ctrAESNI
}

func gmacMode() int {
	switch {
	case forceGeneric || !hasAESNI || !cpu.X86.HasAVX:
		return gmacGeneric
	case hasVPCLMUL && hasAVX512:
		return gmacVec512
	case hasVPCLMUL:
		return gmacVec256
	}
	return gmacVec128
}

func ctrAsm(c *CTR, iv *[16]byte, dst, src []byte) {
	d, s, n := unsafe.SliceData(dst), unsafe.SliceData(src), len(src)
	switch c.mode {
	case ctrVAES512:
		ctrAVX512(&c.rk, iv, d, s, n)
	case ctrVAES256:
		ctrAVX2(&c.rk, iv, d, s, n)
	default:
		ctrAESNI8(&c.rk, iv, d, s, n)
	}
}

func gmacAsm(g *GMAC, out *[TagSize]byte, data []byte) {
	if g.mode == gmacVec512 {
		gmacAVX512(&g.tab, &g.mask, unsafe.SliceData(data), len(data), out)
		return
	}
	// the data's last partial chunk of 16 blocks, zero-padded, and the
	// length block
	n := len(data) &^ 255
	var tail [17 * 16]byte
	r := (copy(tail[:], data[n:]) + 15) / 16
	binary.BigEndian.PutUint64(tail[16*r:], uint64(len(data))*8)
	if g.mode == gmacVec256 {
		gmacAVX2(&g.tab, &g.mask, unsafe.SliceData(data), n, &tail[0], r+1, out)
	} else {
		gmacAVX(&g.tab, &g.mask, unsafe.SliceData(data), n, &tail[0], r+1, out)
	}
}

func cpuid7() (ebx, ecx uint32)

//go:noescape
func expandKey256(key *[KeySize]byte, rk *[240]byte)

//go:noescape
func ctrAVX512(rk *[240]byte, iv *[16]byte, dst *byte, src *byte, n int)

//go:noescape
func ctrAVX2(rk *[240]byte, iv *[16]byte, dst *byte, src *byte, n int)

//go:noescape
func ctrAESNI8(rk *[240]byte, iv *[16]byte, dst *byte, src *byte, n int)

//go:noescape
func ghashInit(h *[16]byte, tab *[17][16]byte)

//go:noescape
func gmacAVX512(tab *[17][16]byte, mask *[16]byte, data *byte, n int, out *[TagSize]byte)

//go:noescape
func gmacAVX(tab *[17][16]byte, mask *[16]byte, data *byte, n int, tail *byte, m int, out *[TagSize]byte)

//go:noescape
func gmacAVX2(tab *[17][16]byte, mask *[16]byte, data *byte, n int, tail *byte, m int, out *[TagSize]byte)
