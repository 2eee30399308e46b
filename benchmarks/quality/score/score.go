// Package score matches a detector's incidents to a scenario's ground truth
// and computes per-incident precision, recall by class and magnitude band,
// time to detect, and duplicate or fragmented incidents.
package score

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/scenario"
)

// Incident is what a detector raised: one anomaly from START to END.
type Incident struct {
	ID string `json:"id"`
	// Class is the incident's class as an operator sees it: the detector
	// may refine a young volumetric anomaly into a specific flood with an
	// UPDATE (same id, same incident; docs/detection.md), so the last class
	// counts. OpenedAs is the START's class when it differs.
	Class     string `json:"class"`
	OpenedAs  string `json:"opened_as,omitempty"`
	Subnet    string `json:"subnet"`
	Direction string `json:"direction"`
	// Host is the banned address of a per-host static incident ("" for
	// subnet-wide ones and for the baseline detector).
	Host string `json:"host,omitempty"`
	// Start is the first evidence (the start of the first hot window);
	// Opened when the incident was raised; End when it ended (zero: still
	// open when the run stopped). Event time.
	Start  time.Time `json:"start"`
	Opened time.Time `json:"opened"`
	End    time.Time `json:"end"`
	// The figure that raised it (metric, observed, expected, score), as
	// evidence for a wrong class or a false incident.
	Metric   string  `json:"metric,omitempty"`
	Observed float64 `json:"observed,omitempty"`
	Expected float64 `json:"expected,omitempty"`
	Score    float64 `json:"score,omitempty"`
}

// Options are the matching rules.
type Options struct {
	// An incident matches a label of the same subnet and direction when
	// its Start lies in [label start - Before, label end + After].
	Before, After time.Duration
}

// DefaultOptions: one window before (the window holding the attack's
// start opens up to 10 s before it), 30 s after (a drop opens after three
// windows; an end effect is still the attack's).
func DefaultOptions() Options { return Options{Before: 10 * time.Second, After: 30 * time.Second} }

// Family groups classes a target can have one open anomaly of at a time.
func Family(class string) string {
	switch class {
	case scenario.Scan, scenario.TrafficDrop:
		return class
	case scenario.Benign:
		return ""
	}
	return "flood"
}

// LabelResult is one label and what the detector made of it.
type LabelResult struct {
	scenario.Label
	Scenario string `json:"scenario"`
	Band     string `json:"band"`
	// Detected: an incident of the label's family matched; Correct: one of
	// its exact class did.
	Detected bool     `json:"detected"`
	Correct  bool     `json:"correct"`
	Classes  []string `json:"classes,omitempty"` // of the matched incidents
	// TTD is Opened - label start of the first matching incident (exact
	// class first), seconds of event time; -1 when undetected.
	TTD float64 `json:"ttd_s"`
	// Extra incidents for the same label: open at the same time as an
	// earlier one or of another family (duplicates), or after one ended
	// (fragments).
	Duplicates int `json:"duplicates"`
	Fragments  int `json:"fragments"`
}

// IncidentResult is one incident and the label it was matched to.
type IncidentResult struct {
	Incident
	Scenario string `json:"scenario"`
	Label    string `json:"label,omitempty"`
	// True: it matched an attack of its family; otherwise Reason says why
	// it is false (background, a benign event, the wrong family).
	True   bool   `json:"true"`
	Band   string `json:"band,omitempty"` // of the matched label
	Reason string `json:"reason,omitempty"`
	// OtherFamily: matched to an attack of another family (a duplicate).
	OtherFamily bool `json:"other_family,omitempty"`
}

// Band names a label's magnitude band.
func Band(l scenario.Label) string {
	switch {
	case l.Benign:
		return "benign"
	case l.Kind == scenario.TrafficDrop:
		return "drop"
	case l.Magnitude < 3:
		return "lt3x"
	case l.Magnitude < 10:
		return "3to10x"
	}
	return "ge10x"
}

// Match scores one scenario's incidents against its labels.
func Match(name string, labels []scenario.Label, incs []Incident, opt Options) ([]LabelResult, []IncidentResult) {
	lr := make([]LabelResult, len(labels))
	for i, l := range labels {
		lr[i] = LabelResult{Label: l, Scenario: name, Band: Band(l), TTD: -1}
	}
	ir := make([]IncidentResult, len(incs))
	matched := make([][]int, len(labels))
	for j, in := range incs {
		r := IncidentResult{Incident: in, Scenario: name, Reason: "background"}
		best, other := -1, -1
		closer := func(i, j int) bool {
			return j < 0 || absDur(in.Start.Sub(labels[i].Start)) < absDur(in.Start.Sub(labels[j].Start))
		}
		for i, l := range labels {
			if l.Subnet != in.Subnet || l.Direction != in.Direction ||
				in.Start.Before(l.Start.Add(-opt.Before)) || in.Start.After(l.End.Add(opt.After)) {
				continue
			}
			switch {
			case l.Benign:
				r.Reason = "benign " + l.Kind + " " + l.Name
			case Family(l.Class) != Family(in.Class):
				if closer(i, other) {
					other = i
				}
			case closer(i, best):
				best = i
			}
		}
		switch {
		case best >= 0:
			r.True, r.Reason, r.Label, r.Band = true, "", labels[best].Name, lr[best].Band
			matched[best] = append(matched[best], j)
		case other >= 0:
			// Attack traffic seen by a second family (an outbound SYN scan
			// is also an outbound SYN flood): true, but an extra incident.
			r.True, r.Reason, r.Label, r.Band = true, "", labels[other].Name, lr[other].Band
			r.OtherFamily = true
			lr[other].Duplicates++
			if !slices.Contains(lr[other].Classes, in.Class) {
				lr[other].Classes = append(lr[other].Classes, in.Class)
			}
		}
		ir[j] = r
	}
	for i := range lr {
		m := matched[i]
		if len(m) == 0 {
			continue
		}
		sort.Slice(m, func(a, b int) bool { return incs[m[a]].Opened.Before(incs[m[b]].Opened) })
		l := &lr[i]
		l.Detected = true
		first := -1
		for k, j := range m {
			in := incs[j]
			if !slices.Contains(l.Classes, in.Class) {
				l.Classes = append(l.Classes, in.Class)
			}
			if in.Class == l.Class {
				l.Correct = true
				if first < 0 {
					first = j
				}
			}
			if k > 0 {
				prev := incs[m[k-1]]
				if prev.End.IsZero() || in.Start.Before(prev.End) {
					l.Duplicates++
				} else {
					l.Fragments++
				}
			}
		}
		if first < 0 {
			first = m[0]
		}
		l.TTD = incs[first].Opened.Sub(l.Start).Seconds()
	}
	return lr, ir
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// Stats are counts and rates for one class or band.
type Stats struct {
	Labels    int `json:"labels"`
	Detected  int `json:"detected"` // any class of the family
	Correct   int `json:"correct"`  // the exact class
	Recall    F   `json:"recall"`   // Correct / Labels (NaN: no label)
	Incidents int `json:"incidents"`
	TrueInc   int `json:"true_incidents"` // of this class, matched to a label of this class
	Precision F   `json:"precision"`      // TrueInc / Incidents
	F1        F   `json:"f1"`
	TTDp50    F   `json:"ttd_p50_s"`
	TTDp95    F   `json:"ttd_p95_s"`
}

// Summary aggregates label and incident results.
type Summary struct {
	Classes    map[string]*Stats            `json:"classes"`
	Bands      map[string]*Stats            `json:"bands"` // floods and scans by magnitude, drops
	ClassBands map[string]map[string]*Stats `json:"class_bands"`
	// Ge3x: floods and scans of at least 3x their baseline. Precision
	// counts the incidents matched to them against every false incident.
	Ge3x           Stats `json:"ge3x"`
	Incidents      int   `json:"incidents"`
	TrueIncidents  int   `json:"true_incidents"`
	FalseIncidents int   `json:"false_incidents"`
	FalseOnBenign  int   `json:"false_on_benign_events"`
	BenignEvents   int   `json:"benign_events"`
	Duplicates     int   `json:"duplicates"`
	Fragments      int   `json:"fragments"`
	Fragmented     int   `json:"fragmented_labels"` // labels with more than one incident
	TTDp50         F     `json:"ttd_p50_s"`         // detected floods and scans >= 3x
	TTDp95         F     `json:"ttd_p95_s"`
	TTDn           int   `json:"ttd_n"`
}

// Summarize aggregates results of one or more scenarios.
func Summarize(lr []LabelResult, ir []IncidentResult) Summary {
	s := Summary{Classes: map[string]*Stats{}, Bands: map[string]*Stats{}, ClassBands: map[string]map[string]*Stats{}}
	get := func(m map[string]*Stats, k string) *Stats {
		if m[k] == nil {
			m[k] = &Stats{}
		}
		return m[k]
	}
	ttd := map[*Stats][]float64{}
	var ttdAll []float64
	add := func(st *Stats, l *LabelResult) {
		st.Labels++
		if l.Detected {
			st.Detected++
		}
		if l.Correct {
			st.Correct++
		}
		if l.TTD >= 0 {
			ttd[st] = append(ttd[st], l.TTD)
		}
	}
	for i := range lr {
		l := &lr[i]
		if l.Benign {
			s.BenignEvents++
			continue
		}
		add(get(s.Classes, l.Class), l)
		add(get(s.Bands, l.Band), l)
		if s.ClassBands[l.Class] == nil {
			s.ClassBands[l.Class] = map[string]*Stats{}
		}
		add(get(s.ClassBands[l.Class], l.Band), l)
		if l.Band == "3to10x" || l.Band == "ge10x" {
			add(&s.Ge3x, l)
			if l.TTD >= 0 {
				ttdAll = append(ttdAll, l.TTD)
			}
		}
		s.Duplicates += l.Duplicates
		s.Fragments += l.Fragments
		if l.Duplicates+l.Fragments > 0 {
			s.Fragmented++
		}
	}
	class := map[string]string{} // label name+scenario -> class
	for i := range lr {
		class[lr[i].Scenario+"/"+lr[i].Name+"/"+lr[i].Direction] = lr[i].Class
	}
	for i := range ir {
		in := &ir[i]
		s.Incidents++
		st := get(s.Classes, in.Class)
		st.Incidents++
		if in.True {
			s.TrueIncidents++
			if class[in.Scenario+"/"+in.Label+"/"+in.Direction] == in.Class {
				st.TrueInc++
			}
			if in.Band == "3to10x" || in.Band == "ge10x" {
				s.Ge3x.TrueInc++
			}
			continue
		}
		s.FalseIncidents++
		if len(in.Reason) > 7 && in.Reason[:7] == "benign " {
			s.FalseOnBenign++
		}
	}
	s.Ge3x.Incidents = s.Ge3x.TrueInc + s.FalseIncidents
	finish := func(st *Stats) {
		r, p := ratio(st.Correct, st.Labels), ratio(st.TrueInc, st.Incidents)
		st.Recall, st.Precision, st.F1 = F(r), F(p), F(f1(p, r))
		st.TTDp50, st.TTDp95 = F(Quantile(ttd[st], 0.5)), F(Quantile(ttd[st], 0.95))
	}
	for _, st := range s.Classes {
		finish(st)
	}
	for _, st := range s.Bands {
		finish(st)
		st.Precision, st.F1 = F(math.NaN()), F(math.NaN()) // precision is per class or overall, not per band
	}
	for _, m := range s.ClassBands {
		for _, st := range m {
			finish(st)
			st.Precision, st.F1 = F(math.NaN()), F(math.NaN())
		}
	}
	finish(&s.Ge3x)
	s.TTDp50, s.TTDp95, s.TTDn = F(Quantile(ttdAll, 0.5)), F(Quantile(ttdAll, 0.95)), len(ttdAll)
	return s
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// f1 treats a class never raised (precision undefined) as precision 0
// when it has labels: a detector that never names a class scores 0.
func f1(p, r float64) float64 {
	if math.IsNaN(r) {
		return math.NaN()
	}
	if math.IsNaN(p) {
		p = 0
	}
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

// Quantile is the nearest-rank q-quantile (NaN for no values).
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// UpperBound95 is the one-sided 95 % upper bound of a Poisson rate per
// unit exposure when k events were seen in exposure units (k = 0: the
// rule of three, 3.0/exposure); k > 0 uses the Wilson-Hilferty
// approximation of the chi-square quantile.
func UpperBound95(k int, exposure float64) float64 {
	if exposure <= 0 {
		return math.NaN()
	}
	if k == 0 {
		return -math.Log(0.05) / exposure
	}
	// chi2(0.95, 2(k+1)) / 2
	n := 2 * float64(k+1)
	z := 1.6448536269514722
	c := n * math.Pow(1-2/(9*n)+z*math.Sqrt(2/(9*n)), 3)
	return c / 2 / exposure
}

// F is a float that is null in JSON when it is not a number (a rate with
// nothing to count).
type F float64

// MarshalJSON writes NaN and infinities as null.
func (f F) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(f), 'g', 6, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (f *F) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = F(math.NaN())
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	*f = F(v)
	return err
}
