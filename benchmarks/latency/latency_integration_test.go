//go:build integration

package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/itest"
)

// TestIntegrationQuick runs the quick mode end to end against the local
// broker: the real collector, detector and alerter binaries (built here),
// two attacks. Every stage must be measured for every attack, in order
// (first datagram < START < first notification; stop < END < resolved),
// with positive durations; datagram→START cannot exceed two windows plus a
// generous pipeline allowance on a shared machine.
func TestIntegrationQuick(t *testing.T) {
	brokers := itest.KafkaBrokers(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := findRepo(wd)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "bin")
	if err := build(ctx, repo, bin); err != nil {
		t.Fatal(err)
	}

	o := defaultOptions(true)
	o.Brokers, o.Bin, o.WorkDir, o.Log = brokers, bin, t.TempDir(), testWriter{t}
	t0 := time.Now()
	res, problems, err := measure(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(res.Attacks) != 2 {
		t.Fatalf("%d attacks measured, want 2", len(res.Attacks))
	}
	for _, a := range res.Attacks {
		oc := a.outcome
		if !(oc.Attack.Sent.Before(oc.Start) && oc.Start.Before(oc.Notified)) {
			t.Errorf("%s: want t0 < t1 < t2, got %v, %v, %v", oc.Attack.Name, oc.Attack.Sent, oc.Start, oc.Notified)
		}
		if !(oc.Attack.Stopped.Before(oc.End) && oc.End.Before(oc.Resolved)) {
			t.Errorf("%s: want stop < END < resolved, got %v, %v, %v", oc.Attack.Name, oc.Attack.Stopped, oc.End, oc.Resolved)
		}
		// The class is the detector's business, not a latency: logged only.
		t.Logf("%s detected as %s (%s)", oc.Attack.Name, oc.Class, oc.Severity)
		for _, s := range stages {
			v, ok := a.Seconds[s.ID]
			if !ok || v <= 0 {
				t.Errorf("%s: %s = %v (measured %v), want > 0", oc.Attack.Name, s.ID, v, ok)
			}
		}
		// At most the rest of the starting window and one more (see
		// floorNote), with 5 s for a loaded machine.
		if v := a.Seconds["e2e.latency.datagram_to_start"]; v > 2*windowSeconds+5 {
			t.Errorf("%s: datagram→START %.2f s, more than two windows + 5 s", oc.Attack.Name, v)
		}
	}
	for _, f := range res.Figures {
		if f.Status != "measured" || f.Value == nil || *f.Value <= 0 || f.Extra["attacks"] != 2 || !f.Quick {
			t.Errorf("figure %s: status %s value %v extra %v quick %v", f.ID, f.Status, f.Value, f.Extra, f.Quick)
		}
	}
	if len(res.Unexpected) > 0 {
		t.Errorf("unexpected incidents: %v", res.Unexpected)
	}
	t.Logf("quick run (after the build) took %.1f s", time.Since(t0).Seconds())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
