//go:build amd64 && !purego && cellcrypt_aesni

package cellcrypt

const noAVX512, noVec = true, true
