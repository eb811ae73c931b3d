//go:build amd64 && !purego && !cellcrypt_avx2 && !cellcrypt_aesni

package cellcrypt

// The build tags cellcrypt_avx2 and cellcrypt_aesni keep the package off
// the AVX-512 paths, or off the VAES and VPCLMULQDQ ones, to measure the
// others.
const noAVX512, noVec = false, false
