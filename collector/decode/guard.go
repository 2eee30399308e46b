package decode

import (
	"encoding/binary"
	"fmt"
)

// templatesFit checks, before goflow2 sees a NetFlow v9 or IPFIX datagram,
// that every template and options template record fits in its set.
// goflow2 allocates a slice of the field count a record claims before it
// reads a single field: a 30-byte datagram claiming 65535 fields costs
// about 0.8 MB of allocation and 0.4 ms of CPU, so a flood of them starves
// the real exporters (TestFaultMalformedFlood, tag faults). Walking the
// fields costs a few ns per byte. Sets are bounded the way goflow2 bounds
// them: by their length, clamped to the datagram.
func templatesFit(pkt []byte) error {
	be := binary.BigEndian
	version := be.Uint16(pkt)
	p := 20
	if version == 10 {
		p = 16
	}
	for p+4 <= len(pkt) {
		id, l := be.Uint16(pkt[p:]), int(be.Uint16(pkt[p+2:]))
		if l < 4 {
			return nil // goflow2 refuses the set itself
		}
		body := pkt[p+4 : min(p+l, len(pkt))]
		var err error
		switch {
		case (version == 9 && id == 0) || (version == 10 && id == 2):
			err = templateRecordsFit(body, version == 10)
		case version == 9 && id == 1:
			err = v9OptionRecordsFit(body)
		case version == 10 && id == 3:
			err = ipfixOptionRecordsFit(body)
		}
		if err != nil {
			return fmt.Errorf("set %d at byte %d: %w", id, p, err)
		}
		p += l
	}
	return nil
}

// skipFields skips n field specifiers (4 bytes, plus 4 for an enterprise
// number when pen and the type's top bit is set).
func skipFields(b []byte, n int, pen bool) ([]byte, bool) {
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return b, false
		}
		typ := binary.BigEndian.Uint16(b)
		b = b[4:]
		if pen && typ&0x8000 != 0 {
			if len(b) < 4 {
				return b, false
			}
			b = b[4:]
		}
	}
	return b, true
}

func templateRecordsFit(b []byte, ipfix bool) error {
	for len(b) >= 4 {
		id, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		left := len(b) - 4
		var ok bool
		if b, ok = skipFields(b[4:], n, ipfix); !ok {
			return fmt.Errorf("template %d claims %d fields, its set has %d bytes left", id, n, left)
		}
	}
	return nil
}

func v9OptionRecordsFit(b []byte) error {
	for len(b) >= 6 {
		id := binary.BigEndian.Uint16(b)
		scope, opts := int(binary.BigEndian.Uint16(b[2:]))/4, int(binary.BigEndian.Uint16(b[4:]))/4
		left := len(b) - 6
		var ok bool
		if b, ok = skipFields(b[6:], scope+opts, false); !ok {
			return fmt.Errorf("options template %d claims %d fields, its set has %d bytes left", id, scope+opts, left)
		}
	}
	return nil
}

func ipfixOptionRecordsFit(b []byte) error {
	for len(b) >= 6 {
		id := binary.BigEndian.Uint16(b)
		n, scope := int(binary.BigEndian.Uint16(b[2:])), int(binary.BigEndian.Uint16(b[4:]))
		left := len(b) - 6
		var ok bool
		if b, ok = skipFields(b[6:], max(n, scope), true); !ok {
			return fmt.Errorf("options template %d claims %d fields, its set has %d bytes left", id, max(n, scope), left)
		}
	}
	return nil
}
