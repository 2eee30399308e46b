package pipeline

import (
	"testing"

	"github.com/packetworks/flowsentry/schemas/pb"
)

func TestIncidentsTakeTheRefinedClass(t *testing.T) {
	ev := func(id string, kind pb.AnomalyEvent_Kind, class string, seq uint32) *pb.AnomalyEvent {
		return &pb.AnomalyEvent{Id: id, Kind: kind, Class: class, Seq: seq, Subnet: "198.18.0.0/24",
			Direction: pb.Direction_DIRECTION_INBOUND, StartedAtNs: 1e18, UpdatedAtNs: 1e18 + 1e10, EndedAtNs: 1e18 + 9e10}
	}
	cases := []struct {
		name          string
		evs           []*pb.AnomalyEvent
		class, opened string
	}{
		{"start only", []*pb.AnomalyEvent{ev("a", pb.AnomalyEvent_START, "volumetric", 0)}, "volumetric", ""},
		{"refined by an update", []*pb.AnomalyEvent{
			ev("a", pb.AnomalyEvent_START, "volumetric", 0), ev("a", pb.AnomalyEvent_UPDATE, "fragment_flood", 1),
			ev("a", pb.AnomalyEvent_END, "fragment_flood", 2)}, "fragment_flood", "volumetric"},
		{"update read before its start", []*pb.AnomalyEvent{
			ev("a", pb.AnomalyEvent_UPDATE, "icmp_flood", 1), ev("a", pb.AnomalyEvent_START, "volumetric", 0)}, "icmp_flood", "volumetric"},
		{"updates of the same class", []*pb.AnomalyEvent{
			ev("a", pb.AnomalyEvent_START, "syn_flood", 0), ev("a", pb.AnomalyEvent_UPDATE, "syn_flood", 1)}, "syn_flood", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Incidents(c.evs)
			if len(got) != 1 {
				t.Fatalf("%d incidents, want 1", len(got))
			}
			if got[0].Class != c.class || got[0].OpenedAs != c.opened {
				t.Errorf("class %q opened as %q, want %q and %q", got[0].Class, got[0].OpenedAs, c.class, c.opened)
			}
		})
	}
}
