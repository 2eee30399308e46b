package engine

import (
	"testing"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/synth"
	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// Relearning after a long anomaly (docs/detection.md, "No learning from
// anomalies"). Traffic steps to 4x its normal level at hour 1 and either
// steps back after 5 h (an attack) or stays (a new normal: a customer moved
// a service in). The baseline must not learn while the anomaly is open and
// younger than relearn_after_windows (6 h): an attack that ends leaves the
// baseline where it was, so the return to normal is no traffic drop. A
// shift that outlives 6 h is accepted: learning resumes, the anomaly ends
// soon after, and the new level raises nothing more.
func TestRelearnAfterLongAnomaly(t *testing.T) {
	if testing.Short() {
		t.Skip("ten hours of event time")
	}
	const (
		ppf      = 1000.0 // packets per record: few records per second keep 10 h of event time cheap
		relearnW = 2160   // the default, 6 h of 10 s windows
		hour     = 3600 * sec
	)
	cases := []struct {
		name      string
		shiftFor  int64 // event time at 4x
		recovered bool  // back to normal for an hour afterwards
	}{
		{name: "5 h attack ends", shiftFor: 5 * hour, recovered: true},
		{name: "permanent level shift", shiftFor: 8 * hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The step keeps the normal mix from proportionally more
			// peers: a flash crowd to the surge rule, which would never
			// open it. This test is about relearning, so the rule is off.
			e, s := newEngine(t, func(_ *Config, _ *baseline.Config, c *classify.Config) { c.Surge.NoticeRatio = 0 })
			if e.cls.Config().RelearnAfterWindows != relearnW {
				t.Fatalf("relearn_after_windows default %d", e.cls.Config().RelearnAfterWindows)
			}
			g := synth.New("203.0.113.0/24", "acme", 51)
			const subnet = "203.0.113.0/24"
			in := pb.Direction_DIRECTION_INBOUND
			tt := t0
			for ; tt < t0+hour; tt += sec {
				feed(e, g.Normal(tt, basePps, ppf))
			}
			shiftAt := tt
			expected := func() float64 {
				tg := e.targets[targetKey{subnet, in}]
				return e.model.Score(&tg.base, e.model.Slot(tt), &window.Values{})[window.Pps].Expected
			}
			learned0, exp0 := e.Learned(subnet, in), expected()
			// Last check point before learning may resume.
			frozenUntil := shiftAt + min(tc.shiftFor, 6*hour) - 30*sec
			var learnedFrozen uint32
			for ; tt < shiftAt+tc.shiftFor; tt += sec {
				feed(e, g.Normal(tt, 4*basePps, ppf))
				if tt == frozenUntil {
					learnedFrozen = e.Learned(subnet, in)
				}
			}
			expShift := expected()
			if tc.recovered {
				for end := tt + hour; tt < end; tt += sec {
					feed(e, g.Normal(tt, basePps, ppf))
				}
			}
			at := func(ev *pb.AnomalyEvent) float64 { return float64(int64(ev.UpdatedAtNs)-shiftAt) / float64(hour) }
			for _, ev := range s.events {
				if ev.Kind != pb.AnomalyEvent_UPDATE {
					t.Logf("%s %s at +%.3f h: %s", ev.Kind, ev.Class, at(ev), ev.Reason)
				}
			}
			t.Logf("expected pps %.0f before, %.0f at the end of the step, %.0f at the end; windows learned %d before, %d at +%.2f h, %d at the end",
				exp0, expShift, expected(), learned0, learnedFrozen, float64(frozenUntil-shiftAt)/float64(hour), e.Learned(subnet, in))
			starts, ends := s.kinds(pb.AnomalyEvent_START), s.kinds(pb.AnomalyEvent_END)
			if len(starts) != 1 || starts[0].Class == classify.TrafficDrop || at(starts[0]) > 0.01 {
				t.Fatalf("STARTs %v, want one for the step up within a minute", starts)
			}
			if len(ends) != 1 {
				t.Fatalf("%d ENDs, want 1", len(ends))
			}
			// Not one anomalous window learned before relearning is due
			// (one normal window may still close after the step).
			if learnedFrozen > learned0+1 {
				t.Errorf("learned %d windows during the anomaly's first hours", learnedFrozen-learned0)
			}
			if tc.recovered {
				if end := at(ends[0]); end < 5 || end > 5.02 {
					t.Errorf("END at +%.3f h, want when the attack stops (+5 h)", end)
				}
				if r := expected() / exp0; r < 0.9 || r > 1.1 {
					t.Errorf("baseline moved by the attack: expected %.0f, was %.0f", expected(), exp0)
				}
				return
			}
			// Accepted: learning resumes at 6 h and the anomaly ends soon
			// after; the new level raises nothing more.
			if end := at(ends[0]); end < 6 || end > 6.5 {
				t.Errorf("END at +%.3f h, want within 30 min after relearning starts at +6 h", end)
			}
			if r := expShift / (4 * exp0); r < 0.8 || r > 1.25 {
				t.Errorf("expected %.0f after 8 h at 4x, want about %.0f", expShift, 4*exp0)
			}
		})
	}
}
