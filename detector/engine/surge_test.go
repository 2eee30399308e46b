package engine

import (
	"testing"

	"github.com/packetworks/flowsentry/detector/synth"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A flash crowd (3x the normal traffic, same mix, from proportionally more
// of the usual peers) opens nothing and is counted as benign-surge
// windows; a GRE flood of the same size right after it opens volumetric.
func TestFlashCrowdWithheld(t *testing.T) {
	e, s := newEngine(t, nil)
	g := synth.New("203.0.113.0/24", "acme", 11)
	tt := warm(e, g, false)
	for end := tt + 120*sec; tt < end; tt += sec {
		feed(e, g.Normal(tt, 3*basePps, pktPerFlow))
	}
	surges := testutil.ToFloat64(e.m.Windows.WithLabelValues("benign_surge"))
	if n := len(s.kinds(pb.AnomalyEvent_START)); n != 0 || surges < 10 {
		t.Fatalf("flash crowd: %d STARTs (want 0), %.0f benign-surge windows (want about 12)", n, surges)
	}
	for end := tt + 60*sec; tt < end; tt += sec {
		feed(e, append(g.Normal(tt, basePps, pktPerFlow), g.Attack(synth.AttackVolumetric, tt, 2*basePps)...))
	}
	starts := s.kinds(pb.AnomalyEvent_START)
	if len(starts) != 1 || starts[0].Class != "volumetric" {
		t.Fatalf("GRE flood after the crowd: STARTs %v, want one volumetric", starts)
	}
	t.Logf("%.0f benign-surge windows; GRE flood: %s", surges, starts[0].Reason)
}
