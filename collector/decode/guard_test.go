package decode

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// set appends a set header (id, length = 4 + len(body)) and body.
func guardSet(b []byte, id uint16, body ...uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, uint16(4+2*len(body)))
	for _, v := range body {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

func guardHeader(version uint16) []byte {
	if version == 9 {
		return make([]byte, 20)
	}
	b := make([]byte, 16)
	binary.BigEndian.PutUint16(b, 10)
	return b
}

func TestTemplatesFit(t *testing.T) {
	hdr9, hdr10 := guardHeader(9), guardHeader(10)
	binary.BigEndian.PutUint16(hdr9, 9)
	v9 := &flowgen.Encoder{Version: 9, Boot: boot, SamplingRate: 10, SamplerID: 2}
	ipfix := &flowgen.Encoder{Version: 10, Boot: boot, SamplingRate: 10}
	cases := []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"v9 templates, options and data", v9.Datagram(export, testFlows()), true},
		{"ipfix templates, options and data", ipfix.Datagram(export, testFlows()), true},
		{"v9 template of 2 fields", guardSet(hdr9, 0, 256, 2, 8, 4, 12, 4), true},
		{"v9 template padding", guardSet(hdr9, 0, 256, 1, 8, 4, 0), true},
		{"ipfix withdrawal", guardSet(hdr10, 2, 256, 0), true},
		{"ipfix enterprise field", guardSet(hdr10, 2, 256, 1, 0x8001, 4, 0, 9), true},
		{"v9 65535 fields in 8 bytes", guardSet(hdr9, 0, 256, 65535, 8, 4), false},
		{"v9 second record too long", guardSet(hdr9, 0, 256, 1, 8, 4, 257, 900), false},
		{"ipfix 65535 fields", guardSet(hdr10, 2, 256, 65535, 8, 4), false},
		{"ipfix enterprise number cut", guardSet(hdr10, 2, 256, 1, 0x8001, 4), false},
		{"v9 options scope 65532 bytes", guardSet(hdr9, 1, 258, 65532, 4, 1, 4), false},
		{"ipfix options scope count 60000", guardSet(hdr10, 3, 258, 2, 60000, 149, 4), false},
		{"ipfix options field count 60000", guardSet(hdr10, 3, 258, 60000, 1, 149, 4), false},
		// A set longer than the datagram is read up to the datagram's end
		// (as goflow2 does): the fields must fit in what is there.
		{"set length past the end", append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(hdr9, 0), 4000),
			0x01, 0x00, 0xff, 0xff, 0, 8, 0, 4), false},
		{"data set only", guardSet(hdr9, 256, 1, 2, 3, 4), true},
		{"bad set length left to goflow2", guardSet(hdr9, 0)[:22], true},
	}
	for _, c := range cases {
		if err := templatesFit(c.pkt); (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok %v", c.name, err, c.ok)
		}
	}
}

// A flood of datagrams claiming 65535 template fields is refused before
// goflow2 allocates for them, and counted under reason "template".
func TestHugeFieldCountRefusedCheaply(t *testing.T) {
	m := NewMetrics(nil)
	d := NewDecoder(NewState(Config{}, m))
	hdr9 := guardHeader(9)
	binary.BigEndian.PutUint16(hdr9, 9)
	pkts := [][]byte{guardSet(hdr9, 0, 256, 65535, 8, 4), guardSet(guardHeader(10), 2, 256, 65535, 8, 4),
		guardSet(hdr9, 1, 258, 65532, 65532)}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 100
	for i := 0; i < n; i++ {
		for _, p := range pkts {
			_, err := d.Decode(p, exporterAddr, received, HandlerFunc(nil))
			var de *Error
			if !errors.As(err, &de) || de.Reason != ReasonTemplate {
				t.Fatalf("datagram %d: err %v, want reason %s", i, err, ReasonTemplate)
			}
		}
	}
	runtime.ReadMemStats(&after)
	// goflow2 would allocate ~0.8 MB per datagram (240 MB here).
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("%d bytes allocated for %d refused datagrams", alloc, n*len(pkts))
	}
	if got := testutil.ToFloat64(m.errors.WithLabelValues(exporterAddr.String(), ReasonTemplate)); got != n*3 {
		t.Errorf("template errors counted %v, want %d", got, n*3)
	}
}
