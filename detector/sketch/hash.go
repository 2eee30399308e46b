// Package sketch holds the small, fixed-size summaries the detector keeps per
// subnet and window: HyperLogLog for distinct counts, space-saving for top-K
// heavy hitters and a hashed histogram for entropy. Fixed size matters more
// than precision: an attack with random sources must not grow memory.
package sketch

import (
	"encoding/binary"
	"math/bits"
)

// Mix64 is a 64-bit finaliser (SplitMix64): cheap, well distributed, no
// allocation. Sketches need independent-looking bits, not cryptography.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// HashAddr hashes a 4- or 16-byte address. Other lengths hash their bytes
// too (never panic on bad input); the empty address hashes to a constant.
func HashAddr(b []byte) uint64 {
	switch len(b) {
	case 4:
		return Mix64(uint64(binary.BigEndian.Uint32(b)) | 4<<32)
	case 16:
		hi := binary.BigEndian.Uint64(b[:8])
		lo := binary.BigEndian.Uint64(b[8:])
		return Mix64(hi ^ bits.RotateLeft64(Mix64(lo), 17))
	}
	h := uint64(len(b)) << 56
	for _, c := range b {
		h = Mix64(h ^ uint64(c))
	}
	return h
}

// HashPort hashes a port (or any small integer) with a salt so that ports
// and protocols land on unrelated registers.
func HashPort(p uint32, salt uint64) uint64 { return Mix64(uint64(p) | salt<<32) }
