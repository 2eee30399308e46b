package scenario

import (
	"net/netip"
	"time"
)

// Label is the ground truth of one event in one direction: what happened
// to which subnet key and when, and the incident (class) it should raise;
// benign events are labelled with class "none".
type Label struct {
	Attack    int       `json:"attack"` // index in Scenario.Attacks
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Class     string    `json:"class"`
	Benign    bool      `json:"benign"`
	Customer  string    `json:"customer"`
	Subnet    string    `json:"subnet"`
	Direction string    `json:"direction"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	// Magnitude is the attack's packet rate over the subnet's background
	// in that direction at its start (floods, scan, flash crowd); Level
	// the share of background left (traffic_drop, maintenance).
	Magnitude float64 `json:"magnitude,omitempty"`
	Level     float64 `json:"level,omitempty"`
	PPS       float64 `json:"pps,omitempty"` // the attack's own rate at its start
}

// Labels returns the ground truth of every event for live traffic
// starting at live, one label per direction.
func (s *Scenario) Labels(live time.Time) []Label {
	var out []Label
	for i := range s.Attacks {
		a := &s.Attacks[i]
		sn := s.AttackedSubnet(a)
		for _, d := range a.Directions() {
			in := d == "inbound"
			start := live.Add(a.Start)
			l := Label{Attack: i, Name: a.Name, Kind: a.Kind, Class: a.Expect.Class, Benign: IsBenign(a.Kind),
				Customer: a.Customer, Subnet: a.subnet.String(), Direction: d, Start: start, End: live.Add(a.End())}
			switch a.Kind {
			case TrafficDrop, Maintenance:
				l.Level = *a.Level
			case FlashCrowd:
				l.PPS = s.AttackRate(a, in, start)
				l.Magnitude = a.Magnitude
			default:
				l.PPS = s.AttackRate(a, in, start)
				if b := s.BaseRate(sn, in, start); b > 0 {
					l.Magnitude = l.PPS / b
				}
			}
			out = append(out, l)
		}
	}
	return out
}

// Prefixes lists every customer subnet of the scenario.
func (s *Scenario) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, c := range s.Customers {
		for _, sn := range c.Subnets {
			out = append(out, sn.prefix)
		}
	}
	return out
}
