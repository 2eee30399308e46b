package classify

import (
	"fmt"
	"hash/fnv"

	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// Families of classes. One target has at most one open anomaly per family:
// a UDP carpet-bombing attack is one incident, not three (carpet, UDP flood,
// volumetric), while a scan during a flood is a second one.
const (
	FamilyFlood = iota
	FamilyScan
	FamilyDrop
	NumFamilies
)

// Anomaly is an open anomaly of one target.
type Anomaly struct {
	ID       string
	Class    string
	Metric   window.Metric
	StartNs  int64
	LastNs   int64 // end of the last window still above the end threshold
	Seq      uint32
	Severity pb.Severity
	Windows  uint32 // windows since start
	// Peaks are of 1-second buckets; totals of all windows since start.
	PeakBps, PeakPps, PeakScore float64
	TotalBytes, TotalPackets    float64
	Last                        Verdict
	Fingerprint                 *pb.Fingerprint
	// ProvisionalNs is the start of a window that opened the anomaly
	// before its lateness allowance ran out (see Engine); its final
	// evaluation must not open it again.
	ProvisionalNs int64
	sinceUpdate   int
}

// Tracker is one target's hysteresis state: about 64 bytes at rest.
type Tracker struct {
	Fam [NumFamilies]FamilyState
}

// FamilyState counts consecutive above/below windows of one family.
type FamilyState struct {
	Above, Below uint8
	PendingNs    int64 // start of the first above window
	Active       *Anomaly
}

// Quiet reports whether no family is open or about to open: only then may
// the baseline learn from the window.
func (t *Tracker) Quiet() bool {
	for _, f := range t.Fam {
		if f.Active != nil || f.Above > 0 {
			return false
		}
	}
	return true
}

// OldestActiveWindows is the age in windows of the oldest open anomaly.
func (t *Tracker) OldestActiveWindows() uint32 {
	var w uint32
	for _, f := range t.Fam {
		if f.Active != nil {
			w = max(w, f.Active.Windows)
		}
	}
	return w
}

// Active returns the open anomalies.
func (t *Tracker) Active() []*Anomaly {
	var out []*Anomaly
	for _, f := range t.Fam {
		if f.Active != nil {
			out = append(out, f.Active)
		}
	}
	return out
}

// AnomalyID is the stable id of an anomaly: a hash of what identifies it.
func AnomalyID(subnet string, dir pb.Direction, class string, startNs int64) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d|%s|%d", subnet, dir, class, startNs)
	return fmt.Sprintf("%016x", h.Sum64())
}

func (c *Classifier) verdict(fam int, in *Input) (Verdict, bool) {
	switch fam {
	case FamilyFlood:
		return c.Flood(in)
	case FamilyScan:
		return c.ScanVerdict(in)
	}
	return c.DropVerdict(in, false)
}

// Step evaluates one window of one target and returns the events it causes.
// final is false for the provisional evaluation made when the window ends
// but late flows may still arrive: it may only open anomalies (late flows
// can only add traffic, so an above window stays above), which is what
// keeps time-to-START within one window. final is true once the window is
// complete: it moves the hysteresis counters, updates and closes.
func (c *Classifier) Step(t *Tracker, in *Input, final bool, detector string) []*pb.AnomalyEvent {
	var out []*pb.AnomalyEvent
	ws := in.F.Start
	we := ws + int64(in.F.Seconds)*1e9
	for fam := range t.Fam {
		fs := &t.Fam[fam]
		if a := fs.Active; a != nil {
			if !final {
				continue
			}
			a.ProvisionalNs = 0
			a.Windows++
			a.sinceUpdate++
			a.TotalBytes += in.F.TotalBytes
			a.TotalPackets += in.F.TotalPackets
			if ev := c.refine(a, in, fam, we, detector); ev != nil {
				// A more specific class now holds: the same anomaly
				// (id, incident) carries it from here on.
				fs.Below, a.sinceUpdate = 0, 0
				out = append(out, ev)
				continue
			}
			vd, hot := c.stillHot(in, a)
			if hot {
				fs.Below = 0
				c.absorb(a, in, vd, we)
			} else {
				fs.Below++
				if int(fs.Below) >= c.cfg.Thresholds(a.Class, in.Customer).EndWindows {
					ev := c.event(pb.AnomalyEvent_END, a, in, vd, detector)
					ev.EndedAtNs = uint64(a.LastNs)
					ev.UpdatedAtNs = uint64(we)
					ev.Reason = fmt.Sprintf("below end threshold for %d windows", fs.Below)
					out = append(out, ev)
					*fs = FamilyState{}
					continue
				}
			}
			if a.sinceUpdate >= c.cfg.UpdateEveryWindows {
				a.sinceUpdate = 0
				ev := c.event(pb.AnomalyEvent_UPDATE, a, in, vd, detector)
				ev.Reason = "periodic update"
				out = append(out, ev)
			}
			continue
		}
		vd, ok := c.verdict(fam, in)
		if !ok {
			if final {
				fs.Above = 0
				if vd.Surge {
					c.surges++
				}
			}
			continue
		}
		need := c.cfg.Thresholds(vd.Class, in.Customer).StartWindows
		if !final {
			if int(fs.Above)+1 >= need {
				start := ws
				if fs.Above > 0 {
					start = fs.PendingNs
				}
				a := c.open(fs, in, vd, start, we)
				a.ProvisionalNs = ws
				out = append(out, c.startEvent(a, in, vd, detector, need))
			}
			continue
		}
		if fs.Above == 0 {
			fs.PendingNs = ws
		}
		if fs.Above < 255 {
			fs.Above++
		}
		if int(fs.Above) >= need {
			a := c.open(fs, in, vd, fs.PendingNs, we)
			a.Windows = 1
			a.TotalBytes, a.TotalPackets = in.F.TotalBytes, in.F.TotalPackets
			out = append(out, c.startEvent(a, in, vd, detector, need))
		}
	}
	return out
}

// refine re-classifies a young volumetric anomaly when a more specific
// flood class holds in this final window. A flood is often named on its
// first, partial window, where a vector's share is still diluted by the
// normal traffic of the seconds before it began; its next windows say
// better what it is. Only volumetric, the fallback, is refined, and only
// during the first RefineWindows windows, so a class never flaps.
func (c *Classifier) refine(a *Anomaly, in *Input, fam int, we int64, detector string) *pb.AnomalyEvent {
	if fam != FamilyFlood || a.Class != Volumetric || int(a.Windows) > c.cfg.RefineWindows {
		return nil
	}
	vd, ok := c.Flood(in)
	if !ok || vd.Class == Volumetric {
		return nil
	}
	from := a.Class
	a.Class, a.Metric = vd.Class, vd.Metric
	c.absorb(a, in, vd, we)
	ev := c.event(pb.AnomalyEvent_UPDATE, a, in, vd, detector)
	ev.Reason = fmt.Sprintf("reclassified from %s: %s", from, c.because(vd))
	return ev
}

func (c *Classifier) open(fs *FamilyState, in *Input, vd Verdict, start, we int64) *Anomaly {
	a := &Anomaly{ID: AnomalyID(in.Subnet, in.Direction, vd.Class, start), Class: vd.Class, Metric: vd.Metric,
		StartNs: start}
	c.absorb(a, in, vd, we)
	fs.Active, fs.Above, fs.Below = a, 0, 0
	return a
}

func (c *Classifier) startEvent(a *Anomaly, in *Input, vd Verdict, detector string, need int) *pb.AnomalyEvent {
	ev := c.event(pb.AnomalyEvent_START, a, in, vd, detector)
	ev.Reason = fmt.Sprintf("%s for %d window(s)", c.because(vd), need)
	if vd.Class == TrafficDrop {
		ev.Reason = fmt.Sprintf("pps %.3g fell below %.0f%% of expected %.3g", vd.Observed, c.cfg.DropRatio*100, vd.Expected)
	} else if vd.Ceiling {
		ev.Reason = fmt.Sprintf("%s %.3g %s is above the customer's ceiling", vd.Metric, vd.Observed, vd.Metric.Unit())
	}
	if ev.TotalBytes == 0 {
		ev.TotalBytes, ev.TotalPackets = uint64(in.F.TotalBytes), uint64(in.F.TotalPackets)
	}
	return ev
}

// because says what made a verdict hot.
func (c *Classifier) because(vd Verdict) string {
	s := fmt.Sprintf("%s %.3g %s is %.1f spreads above expected %.3g", vd.Metric, vd.Observed, vd.Metric.Unit(), vd.Score, vd.Expected)
	if vd.Via != vd.Metric && vd.Share > 0 {
		s += fmt.Sprintf(", %.0f%% of the increase is %s", 100*vd.Share, vd.Via)
	}
	return s
}

// absorb records a window in which the anomaly is (still) above threshold.
func (c *Classifier) absorb(a *Anomaly, in *Input, vd Verdict, we int64) {
	a.LastNs = we
	a.Last = vd
	a.PeakBps = max(a.PeakBps, in.F.PeakBps)
	a.PeakPps = max(a.PeakPps, in.F.PeakPps)
	a.PeakScore = max(a.PeakScore, vd.Score)
	if s := c.severity(in, a.Class, vd); s > a.Severity {
		a.Severity = s
	}
	if fp := c.Fingerprint(in, a.Class); fp != nil {
		a.Fingerprint = fp
	}
}

func (c *Classifier) event(kind pb.AnomalyEvent_Kind, a *Anomaly, in *Input, vd Verdict, detector string) *pb.AnomalyEvent {
	ev := &pb.AnomalyEvent{
		Id: a.ID, Kind: kind, Seq: a.Seq, Class: a.Class, Severity: a.Severity,
		Customer: in.Customer, Subnet: in.Subnet, Direction: in.Direction,
		StartedAtNs: uint64(a.StartNs), UpdatedAtNs: uint64(in.F.Start + int64(in.F.Seconds)*1e9),
		Metric: vd.Metric.String(), Unit: vd.Metric.Unit(), Observed: vd.Observed, Expected: vd.Expected, Score: vd.Score,
		PeakBps: uint64(a.PeakBps), PeakPps: uint64(a.PeakPps),
		CurrentBps: uint64(in.F.Values[window.Bps]), CurrentPps: uint64(in.F.Values[window.Pps]),
		TotalBytes: uint64(a.TotalBytes), TotalPackets: uint64(a.TotalPackets),
		Fingerprint: a.Fingerprint, Detector: detector,
	}
	a.Seq++
	return ev
}
