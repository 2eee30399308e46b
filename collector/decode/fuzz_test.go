package decode

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// Seeds live in testdata/fuzz/<FuzzName>/ (real softflowd and flowgen
// datagrams); plain `go test` runs them. Fuzz with e.g.
//   go test ./decode -run '^$' -fuzz FuzzDecode -fuzztime 60s

// checkFlow asserts what must hold for any flow, whatever the input.
func checkFlow(t *testing.T, f *pb.Flow) {
	for _, b := range [][]byte{f.SrcAddr, f.DstAddr, f.NextHop, f.SamplerAddress} {
		if n := len(b); n != 0 && n != 4 && n != 16 {
			t.Fatalf("address of %d bytes", n)
		}
	}
	if f.Type == pb.Flow_FLOWUNKNOWN {
		t.Fatal("flow without type")
	}
	if f.SamplingApplied {
		t.Fatal("decoder applied sampling (normalise's job)")
	}
}

func fuzzDecode(t *testing.T, d *Decoder, pkt []byte) {
	_, err := d.Decode(pkt, netip.MustParseAddr("192.0.2.1"), goldenReceived, HandlerFunc(func(f *pb.Flow) { checkFlow(t, f) }))
	var de *Error
	if errors.As(err, &de) && de.Reason == ReasonPanic {
		t.Fatalf("decoder panicked: %v", err)
	}
	if err != nil && !errors.As(err, &de) {
		t.Fatalf("error without a counted reason: %v", err)
	}
}

// FuzzDecode: any datagram, fresh state (every protocol; v9/IPFIX data
// sets go to the hold buffer).
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, pkt []byte) {
		fuzzDecode(t, NewDecoder(NewState(Config{PendingSets: 4}, NewMetrics(nil))), pkt)
	})
}

// FuzzNetFlowData: a datagram decoded after valid v9 and IPFIX templates
// (with options) are known, so mutated data sets reach our record decoder.
func FuzzNetFlowData(f *testing.F) {
	f.Fuzz(func(t *testing.T, pkt []byte) {
		d := NewDecoder(NewState(Config{}, NewMetrics(nil)))
		for _, e := range []*flowgen.Encoder{
			{Version: 9, Boot: boot, SamplingRate: 10},
			{Version: 10, Time: flowgen.TimeUptime, Boot: boot, SamplingRate: 10},
			{Version: 10, Domain: 1, Time: flowgen.TimeNanos, Boot: boot},
		} {
			fuzzDecode(t, d, e.Templates(export))
		}
		fuzzDecode(t, d, pkt)
		// Twice: templates the input defined are now in use.
		fuzzDecode(t, d, pkt)
	})
}

// FuzzPacketHeader: the sFlow sampled-header parser.
func FuzzPacketHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, proto uint8, hdr []byte) {
		d := NewDecoder(NewState(Config{}, NewMetrics(nil)))
		fl := &pb.Flow{}
		d.parseHeader(fl, uint32(proto%13), hdr)
		for _, b := range [][]byte{fl.SrcAddr, fl.DstAddr} {
			if n := len(b); n != 0 && n != 4 && n != 16 {
				t.Fatalf("address of %d bytes", n)
			}
		}
	})
}
