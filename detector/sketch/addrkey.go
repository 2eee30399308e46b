package sketch

import (
	"encoding/binary"
	"net/netip"
)

// AddrKey is an address as two integers: comparing it costs two word
// compares where netip.Addr (with its zone handle) costs far more, and
// top-K sketches compare keys for every flow.
type AddrKey [2]uint64

// v4Mark tags IPv4 keys (as the IPv4-mapped IPv6 prefix does).
const v4Mark = 0xffff << 32

// KeyOf converts a 4- or 16-byte address; other lengths give the zero key
// (shown as "unknown").
func KeyOf(b []byte) AddrKey {
	switch len(b) {
	case 4:
		return AddrKey{0, v4Mark | uint64(binary.BigEndian.Uint32(b))}
	case 16:
		return AddrKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	}
	return AddrKey{}
}

// Addr converts back; the zero key is the invalid Addr.
func (k AddrKey) Addr() netip.Addr {
	if k == (AddrKey{}) {
		return netip.Addr{}
	}
	if k[0] == 0 && k[1]>>32 == 0xffff {
		v := uint32(k[1])
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k[0])
	binary.BigEndian.PutUint64(b[8:], k[1])
	return netip.AddrFrom16(b)
}
