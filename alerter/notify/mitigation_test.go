package notify

import (
	"testing"

	"github.com/packetworks/flowsentry/alerter/incident"
)

func TestMitigationText(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    incident.Mitigation
		want string
	}{
		{"none", incident.Mitigation{}, ""},
		{"description wins", incident.Mitigation{DstPrefix: "198.51.100.7/32", Description: "drop it"}, "drop it"},
		{"outbound scan keeps its source",
			incident.Mitigation{SrcPrefix: "203.0.113.30/32", Protocols: []uint32{6}, DstPorts: []uint32{23}, Action: "discard"},
			"src 203.0.113.30/32 proto [6] dst-port [23] then discard"},
		{"syn flood",
			incident.Mitigation{DstPrefix: "198.51.100.7/32", Protocols: []uint32{6}, TCPFlags: "syn&!ack", Action: "discard"},
			"dst 198.51.100.7/32 proto [6] tcp-flags syn&!ack then discard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MitigationText(tc.m)
			if got != tc.want {
				t.Fatalf("MitigationText = %q, want %q", got, tc.want)
			}
		})
	}
}
