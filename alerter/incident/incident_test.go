package incident

import (
	"errors"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/pb"
)

func ev(id string, kind pb.AnomalyEvent_Kind, seq uint32, sev pb.Severity) *pb.AnomalyEvent {
	return &pb.AnomalyEvent{Id: id, Kind: kind, Seq: seq, Severity: sev, Class: "syn_flood", Customer: "acme",
		Subnet: "203.0.113.0/24", Direction: pb.Direction_DIRECTION_INBOUND,
		StartedAtNs: uint64(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()),
		Observed:    2e6, Expected: 1e4, Metric: "pps_syn", Unit: "pps", PeakPps: 2_100_000, EndedAtNs: 0,
		Reason: "below threshold for 3 windows"}
}

func TestApplyLifecycle(t *testing.T) {
	const (
		start  = pb.AnomalyEvent_START
		update = pb.AnomalyEvent_UPDATE
		end    = pb.AnomalyEvent_END
		warn   = pb.Severity_SEVERITY_WARNING
		crit   = pb.Severity_SEVERITY_CRITICAL
		info   = pb.Severity_SEVERITY_INFO
	)
	type step struct {
		ev     *pb.AnomalyEvent
		change Change
		state  State
		sev    string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"start update end", []step{
			{ev("a", start, 0, warn), Opened, Open, "warning"},
			{ev("a", update, 1, warn), Updated, Open, "warning"},
			{ev("a", end, 2, warn), ResolvedChange, Resolved, "warning"},
		}},
		{"redelivered events are duplicates", []step{
			{ev("a", start, 0, warn), Opened, Open, "warning"},
			{ev("a", update, 1, warn), Updated, Open, "warning"},
			{ev("a", start, 0, warn), Duplicate, Open, "warning"},
			{ev("a", update, 1, warn), Duplicate, Open, "warning"},
		}},
		{"escalation once, downgrade silent, re-escalation to the same level silent", []step{
			{ev("a", start, 0, warn), Opened, Open, "warning"},
			{ev("a", update, 1, crit), Escalated, Open, "critical"},
			{ev("a", update, 2, info), Updated, Open, "info"},
			{ev("a", update, 3, crit), Updated, Open, "critical"},
		}},
		{"update without start opens", []step{
			{ev("b", update, 5, crit), Opened, Open, "critical"},
		}},
		{"end without start opens resolved", []step{
			{ev("c", end, 7, warn), ResolvedChange, Resolved, "warning"},
		}},
		{"events after end are late", []step{
			{ev("a", start, 0, warn), Opened, Open, "warning"},
			{ev("a", end, 1, warn), ResolvedChange, Resolved, "warning"},
			{ev("a", update, 2, crit), Late, Resolved, "warning"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker()
			now := time.Date(2025, 1, 2, 3, 5, 0, 0, time.UTC)
			for i, s := range tc.steps {
				in, ch, err := tr.Apply(s.ev, now)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if ch != s.change || in.State != s.state || in.Severity != s.sev {
					t.Fatalf("step %d: got %s/%s/%s, want %s/%s/%s", i, ch, in.State, in.Severity, s.change, s.state, s.sev)
				}
			}
		})
	}
}

func TestApplyFields(t *testing.T) {
	tr := NewTracker()
	now := time.Now()
	e := ev("a", pb.AnomalyEvent_START, 0, pb.Severity_SEVERITY_CRITICAL)
	e.Fingerprint = &pb.Fingerprint{TopSrcPorts: []*pb.TopItem{{Key: "123", Packets: 10, Share: 0.9}},
		Mitigation: &pb.Mitigation{DstPrefix: "203.0.113.7/32", Protocols: []uint32{17}, Action: "discard"}}
	in, _, _ := tr.Apply(e, now)
	if in.Customer != "acme" || in.Direction != "inbound" || in.Class != "syn_flood" || in.Unit != "pps" ||
		in.PeakPPS != 2_100_000 || in.StartedAt.Year() != 2025 || in.FirstSeenAt != now {
		t.Fatalf("fields not copied: %+v", in)
	}
	if in.Fingerprint.TopSrcPorts[0].Key != "123" || in.Fingerprint.Mitigation.Action != "discard" {
		t.Fatalf("fingerprint not copied: %+v", in.Fingerprint)
	}
	l := in.Labels()
	if l["scope"] != "subnet" || l["severity"] != "critical" {
		t.Fatalf("labels %v", l)
	}
	e2 := ev("a", pb.AnomalyEvent_END, 1, pb.Severity_SEVERITY_CRITICAL)
	e2.EndedAtNs = uint64(time.Date(2025, 1, 2, 4, 0, 0, 0, time.UTC).UnixNano())
	in, _, _ = tr.Apply(e2, now)
	if in.ResolvedBy != "detector" || in.Reason != "below threshold for 3 windows" || in.EndedAt.Hour() != 4 {
		t.Fatalf("resolve not recorded: %+v", in)
	}
}

func TestApplyRejects(t *testing.T) {
	tr := NewTracker()
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'x'
	}
	for _, tc := range []struct {
		ev   *pb.AnomalyEvent
		want error
	}{
		{&pb.AnomalyEvent{Kind: pb.AnomalyEvent_START}, ErrNoID},
		{&pb.AnomalyEvent{Id: "x"}, ErrBadKind},
		{&pb.AnomalyEvent{Id: string(long), Kind: pb.AnomalyEvent_START}, ErrTooLongID},
	} {
		if _, _, err := tr.Apply(tc.ev, time.Now()); !errors.Is(err, tc.want) {
			t.Errorf("%v: got %v want %v", tc.ev, err, tc.want)
		}
	}
	if len(tr.All()) != 0 {
		t.Fatal("rejected events must not create incidents")
	}
}

func TestExpireSilentAndLateEnd(t *testing.T) {
	tr := NewTracker()
	t0 := time.Now()
	tr.Apply(ev("a", pb.AnomalyEvent_START, 0, pb.Severity_SEVERITY_WARNING), t0)
	tr.Apply(ev("b", pb.AnomalyEvent_START, 0, pb.Severity_SEVERITY_WARNING), t0.Add(10*time.Minute))
	got := tr.ExpireSilent(t0.Add(16*time.Minute), 15*time.Minute)
	if len(got) != 1 || got[0].ID != "a" || got[0].ResolvedBy != "timeout" || got[0].Reason == "" {
		t.Fatalf("expired %+v", got)
	}
	if tr.Get("b").State != Open {
		t.Fatal("b expired too early")
	}
	in, ch, _ := tr.Apply(ev("a", pb.AnomalyEvent_END, 3, pb.Severity_SEVERITY_WARNING), t0.Add(17*time.Minute))
	if ch != Late || in.ResolvedBy != "detector" {
		t.Fatalf("late END: %s %+v", ch, in)
	}
	if ids := tr.Forget(t0.Add(time.Hour), nil); len(ids) != 1 || ids[0] != "a" {
		t.Fatalf("forget %v", ids)
	}
}
