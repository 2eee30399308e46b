package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/export"
	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/collector/flowgen"
)

// exporter is one router: a UDP socket bound to its own loopback address
// (the collector keys templates and sampling rates by exporter address)
// and an encoder for its protocol.
type exporter struct {
	enc *export.Encoder
	out *export.UDPSender
}

func openExporter(protocol string, src netip.Addr, to string, domain, sampling uint32) (*exporter, error) {
	enc, err := export.NewEncoder(protocol, src, domain, sampling, time.Now().Add(-72*time.Hour))
	if err != nil {
		return nil, err
	}
	out, err := export.NewUDPSender(src, to)
	if err != nil {
		return nil, err
	}
	return &exporter{enc: enc, out: out}, nil
}

// encode turns flows (times set) into datagrams exported at now.
func (e *exporter) encode(now time.Time, flows []flowgen.Flow) [][]byte {
	return e.enc.Datagrams(now, flows)
}

func (e *exporter) send(dgs [][]byte) error { return e.out.Send(dgs) }

// attack is one attack's schedule and what the driver did.
type attack struct {
	run      attackRun
	target   netip.Addr
	exporter int
	pps      float64 // unsampled
	at       time.Time
	stopAt   time.Time // zero until the run decides when to stop it
	acc      float64   // fractional sampled packets carried between steps
	lastSent time.Time
	done     bool
}

// driver sends the scenario's background traffic (history, then live) and
// the attacks. Only its own goroutine touches the generator and sockets;
// the attacks' schedule is shared under mu.
type driver struct {
	gen      *scenario.Generator
	exps     []*exporter
	hist     *exporter
	sampling uint32
	rng      *rand.Rand

	mu      sync.Mutex
	attacks []*attack
}

// history replays span of past traffic as fast as rate (records per
// second) allows, through one IPFIX exporter so that records reach the
// detector in event-time order (flows more than the lateness behind their
// partition's newest are dropped). It returns where event time stopped
// and how many records it sent.
func (d *driver) history(ctx context.Context, span time.Duration, rate float64) (time.Time, uint64, error) {
	start := time.Now()
	cursor := start.Add(-span).Truncate(time.Second)
	var recs []scenario.Record
	var flows []flowgen.Flow
	var n uint64
	for {
		now := time.Now()
		if !cursor.Before(now.Add(-500 * time.Millisecond)) {
			return cursor, n, nil
		}
		next := cursor.Add(time.Second)
		if next.After(now) {
			next = now
		}
		recs = d.gen.Step(cursor, next, recs[:0])
		cursor = next
		flows = flows[:0]
		for _, r := range recs {
			flows = append(flows, r.Flow)
		}
		if err := d.hist.send(d.hist.encode(now, flows)); err != nil {
			return cursor, n, fmt.Errorf("history replay: %w", err)
		}
		n += uint64(len(recs))
		if ahead := time.Duration(float64(n)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
			select {
			case <-ctx.Done():
				return cursor, n, ctx.Err()
			case <-time.After(ahead):
			}
		}
	}
}

// live sends real-time traffic from cursor on, every step, until ctx ends.
func (d *driver) live(ctx context.Context, cursor time.Time, step time.Duration) error {
	t := time.NewTicker(step)
	defer t.Stop()
	var recs []scenario.Record
	per := make([][]flowgen.Flow, len(d.exps))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		recs = d.gen.Step(cursor, now, recs[:0])
		for i := range per {
			per[i] = per[i][:0]
		}
		for _, r := range recs {
			per[r.Exporter] = append(per[r.Exporter], r.Flow)
		}
		for i, fl := range per {
			if len(fl) > 0 {
				if err := d.exps[i].send(d.exps[i].encode(now, fl)); err != nil {
					return fmt.Errorf("exporter %d: %w", i, err)
				}
			}
		}
		if err := d.sendAttacks(cursor, now); err != nil {
			return err
		}
		cursor = now
	}
}

// sendAttacks sends the sampled packets of every running attack for flows
// ending in [from, now), in datagrams of their own so that the first one's
// send time is the attack's t0.
func (d *driver) sendAttacks(from, now time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.attacks {
		if a.done || a.at.IsZero() || now.Before(a.at) {
			continue
		}
		if !a.stopAt.IsZero() && !now.Before(a.stopAt) {
			a.done, a.run.Stopped = true, a.lastSent
			continue
		}
		lo := from
		if a.at.After(lo) {
			lo = a.at
		}
		a.acc += a.pps * now.Sub(lo).Seconds() / float64(d.sampling)
		n := int(a.acc)
		if n == 0 {
			continue
		}
		a.acc -= float64(n)
		flows := make([]flowgen.Flow, n)
		for i := range flows {
			flows[i] = d.attackFlow(a, lo.Add(time.Duration(d.rng.Int64N(int64(now.Sub(lo))+1))))
		}
		e := d.exps[a.exporter]
		dgs := e.encode(now, flows)
		if a.run.Sent.IsZero() {
			a.run.Sent = time.Now()
		}
		if err := e.send(dgs); err != nil {
			return fmt.Errorf("attack %s: %w", a.run.Name, err)
		}
		a.lastSent = time.Now()
	}
	return nil
}

// attackFlow is one sampled packet of a spoofed flood ending at end.
func (d *driver) attackFlow(a *attack, end time.Time) flowgen.Flow {
	src := netip.AddrFrom4([4]byte{11, byte(d.rng.IntN(256)), byte(d.rng.IntN(256)), byte(1 + d.rng.IntN(254))})
	f := flowgen.Flow{Src: src, Dst: a.target, Packets: 1, Start: end.Add(-time.Duration(d.rng.Int64N(int64(time.Second)))),
		End: end, InIf: 1, OutIf: 2, SrcPort: uint16(32768 + d.rng.IntN(28000))}
	switch a.run.Kind {
	case kindSYN:
		f.Proto, f.TCPFlags, f.DstPort, f.Bytes = 6, 0x02, 443, 60
	default: // kindUDP: random ports, so no reflector port stands out (not amplification)
		f.Proto, f.DstPort, f.Bytes = 17, uint16(1024+d.rng.IntN(60000)), 512
	}
	return f
}

// schedule sets when each attack starts.
func (d *driver) schedule(first time.Time, spacing time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, a := range d.attacks {
		a.at = first.Add(time.Duration(i) * spacing)
	}
}

// stop asks for attack i to stop at t (the first request wins).
func (d *driver) stop(i int, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a := d.attacks[i]; a.stopAt.IsZero() {
		a.stopAt = t
	}
}

// state returns the attacks as sent so far and whether each is over.
func (d *driver) state() ([]attackRun, []bool, []time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	runs := make([]attackRun, len(d.attacks))
	done := make([]bool, len(d.attacks))
	at := make([]time.Time, len(d.attacks))
	for i, a := range d.attacks {
		runs[i], done[i], at[i] = a.run, a.done, a.at
	}
	return runs, done, at
}

func (d *driver) close() {
	for _, e := range append(d.exps, d.hist) {
		if e != nil {
			_ = e.out.Close()
		}
	}
}
