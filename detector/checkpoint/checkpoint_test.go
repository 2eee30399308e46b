package checkpoint

import (
	"reflect"
	"testing"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
)

func sample() *State {
	s := &State{Customer: "acme"}
	m, _ := baseline.NewModel(baseline.DefaultConfig())
	v := window.Values{1e8, 1e4, 100, 9000, 900, 50, 0, 10, 0, 300, 20, 400}
	for i := 0; i < 50; i++ {
		m.Learn(&s.Base, i%48, &v)
	}
	s.Track.Fam[classify.FamilyScan].Above = 1
	s.Track.Fam[classify.FamilyScan].PendingNs = 42
	s.Track.Fam[classify.FamilyFlood].Active = &classify.Anomaly{ID: "abc", Class: classify.SynFlood, Metric: window.PpsSyn,
		StartNs: 1, LastNs: 2, Seq: 3, Severity: pb.Severity_SEVERITY_CRITICAL, Windows: 4, PeakBps: 5, PeakPps: 6,
		PeakScore: 7, TotalBytes: 8, TotalPackets: 9, Last: classify.Verdict{Class: classify.SynFlood, Metric: window.PpsSyn},
		Fingerprint: &pb.Fingerprint{DistinctSources: 77, Mitigation: &pb.Mitigation{TcpFlags: "syn&!ack"}}}
	return s
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	s := sample()
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Base, s.Base) || got.Customer != "acme" {
		t.Fatal("baseline or customer changed in the round trip")
	}
	a, b2 := s.Track.Fam[0].Active, got.Track.Fam[0].Active
	if b2 == nil || b2.ID != a.ID || b2.Seq != a.Seq || b2.TotalPackets != a.TotalPackets || b2.Fingerprint.GetDistinctSources() != 77 ||
		b2.Fingerprint.GetMitigation().GetTcpFlags() != "syn&!ack" || b2.Severity != a.Severity || b2.Metric != a.Metric {
		t.Fatalf("anomaly %+v, want %+v", b2, a)
	}
	if got.Track.Fam[1].Above != 1 || got.Track.Fam[1].PendingNs != 42 {
		t.Fatalf("scan family %+v", got.Track.Fam[1])
	}
	t.Logf("checkpoint record: %d bytes (baseline %d)", len(b), baseline.EncodedSize)
}

// Corrupt records are errors, never panics: every truncation and a few
// flipped bytes.
func TestDecodeCorrupt(t *testing.T) {
	b, _ := Encode(sample())
	for i := 0; i < len(b); i++ {
		if _, err := Decode(b[:i]); err == nil {
			t.Fatalf("truncated at %d of %d accepted", i, len(b))
		}
	}
	for _, i := range []int{0, 1, 5, 8} {
		c := append([]byte(nil), b...)
		c[i] ^= 0xff
		_, _ = Decode(c) // must not panic
	}
	if _, err := Decode(append(b, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		subnet string
		dir    pb.Direction
		key    string
	}{
		{"203.0.113.0/24", pb.Direction_DIRECTION_INBOUND, "203.0.113.0/24|in"},
		{"2001:db8::/64", pb.Direction_DIRECTION_OUTBOUND, "2001:db8::/64|out"},
	} {
		k := Key(tc.subnet, tc.dir)
		if k != tc.key {
			t.Errorf("Key = %q, want %q", k, tc.key)
		}
		s, d, err := ParseKey(k)
		if err != nil || s != tc.subnet || d != tc.dir {
			t.Errorf("ParseKey(%q) = %q %v %v", k, s, d, err)
		}
	}
	for _, bad := range []string{"", "x", "|in", "1.2.3.0/24|up"} {
		if _, _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

// The state record of a subnet goes to the partition its flows use.
func TestBalancerFollowsFlowsPartition(t *testing.T) {
	parts := []int{0, 1, 2, 3, 4, 5, 6, 7}
	for _, subnet := range []string{"203.0.113.0/24", "198.51.100.0/25", "2001:db8:1::/64", "10.1.2.0/24"} {
		want := topics.Partition([]byte(subnet), len(parts))
		for _, dir := range []pb.Direction{pb.Direction_DIRECTION_INBOUND, pb.Direction_DIRECTION_OUTBOUND} {
			got := Balancer{}.Balance(kafka.Message{Key: []byte(Key(subnet, dir))}, parts...)
			if got != want {
				t.Errorf("%s %v: partition %d, flows use %d", subnet, dir, got, want)
			}
		}
	}
}
