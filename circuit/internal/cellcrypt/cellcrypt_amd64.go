//go:build amd64 && !purego

package cellcrypt

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/cpu"
)

var (
	hasAVX512  = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasBMI2
	hasVAES    = hasAVX512 && cpu.X86.HasAES && cpu.X86.HasAVX512VAES
	hasVPCLMUL = hasAVX512 && cpu.X86.HasPCLMULQDQ && cpu.X86.HasAVX512VPCLMULQDQ
	hasAESNI   = cpu.X86.HasAES && cpu.X86.HasSSE41 && cpu.X86.HasSSSE3
)

func ctrMode() int {
	switch {
	case forceGeneric:
		return ctrGeneric
	case hasVAES:
		return ctrVAES
	case hasAESNI:
		return ctrAESNI
	}
	return ctrGeneric
}

func gmacAsmOK() bool { return !forceGeneric && hasVPCLMUL && cpu.X86.HasAES }

func ctrAsm(c *CTR, iv *[16]byte, dst, src []byte) {
	if c.mode == ctrVAES {
		ctrAVX512(&c.rk, iv, unsafe.SliceData(dst), unsafe.SliceData(src), len(src))
		return
	}
	full := len(src) &^ 15
	if full > 0 {
		ctrAESNI8(&c.rk, iv, unsafe.SliceData(dst), unsafe.SliceData(src), full)
	}
	if rest := len(src) - full; rest > 0 {
		var tmp [16]byte
		copy(tmp[:], src[full:])
		binary.BigEndian.PutUint32(iv[12:], binary.BigEndian.Uint32(iv[12:])+uint32(full/16))
		ctrAESNI8(&c.rk, iv, &tmp[0], &tmp[0], 16)
		copy(dst[full:], tmp[:rest])
	}
}

func gmacAsm(g *GMAC, out *[TagSize]byte, data []byte) {
	gmacAVX512(&g.tab, &g.mask, unsafe.SliceData(data), len(data), out)
}

//go:noescape
func expandKey256(key *[KeySize]byte, rk *[240]byte)

//go:noescape
func ctrAVX512(rk *[240]byte, iv *[16]byte, dst *byte, src *byte, n int)

//go:noescape
func ctrAESNI8(rk *[240]byte, iv *[16]byte, dst *byte, src *byte, n int)

//go:noescape
func ghashInit(h *[16]byte, tab *[31][16]byte)

//go:noescape
func gmacAVX512(tab *[31][16]byte, mask *[16]byte, data *byte, n int, out *[TagSize]byte)
