//go:build amd64 && !purego && cellcrypt_avx2 && !cellcrypt_aesni

package cellcrypt

const noAVX512, noVec = true, false
