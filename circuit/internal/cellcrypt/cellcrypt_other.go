//go:build !amd64 || purego

package cellcrypt

func ctrMode() int  { return ctrGeneric }
func gmacMode() int { return gmacGeneric }

func ctrAsm(*CTR, *[16]byte, []byte, []byte)  { panic("cellcrypt: no assembly") }
func gmacAsm(*GMAC, *[TagSize]byte, []byte)   { panic("cellcrypt: no assembly") }
func expandKey256(*[KeySize]byte, *[240]byte) { panic("cellcrypt: no assembly") }
func ghashInit(*[16]byte, *[17][16]byte)      { panic("cellcrypt: no assembly") }
