package engine

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/checkpoint"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// Sink receives what the engine produces. Calls come from the engine's
// goroutine; a sink must not drop (block instead).
type Sink interface {
	Event(*pb.AnomalyEvent)
	Snapshot(*pb.BaselineSnapshot)
}

// Limits returns a customer's static floors and ceilings by metric name
// (from the inventory); nil maps are fine.
type Limits func(customer string) (floors, ceilings map[string]float64)

type targetKey struct {
	subnet string
	dir    pb.Direction
}

type aggSlot struct {
	start int64
	agg   *window.Agg
}

// target is one subnet key + direction. At rest (no traffic in an open
// window) it holds the baseline, the hysteresis and a few counters.
type target struct {
	key       targetKey
	customer  string
	partition int32
	base      baseline.State
	track     classify.Tracker
	idle      uint32 // consecutive windows without traffic
	skipLearn uint8  // windows not to learn from after a restore
	bornNs    int64  // start of the window of the first flow seen
	dirty     bool   // changed since the last checkpoint
	aggs      []aggSlot
	snap      []float32 // per metric: last value, then the top snapK since the last snapshot
	snapN     int
}

type openWindow struct {
	start       int64
	targets     []*target
	provisional bool
}

// clock is the event time of one flows partition and the targets that live
// in it. A subnet lives in exactly one partition (producers partition by
// subnet), so closing its windows on its own partition's watermark is
// exact: a partition that lags (backlog, consumer lag, replay after a
// handover) is late only relative to itself, never to its neighbours.
type clock struct {
	targets    map[targetKey]*target
	windows    []*openWindow // by start
	maxEvent   int64         // largest event time read from the partition (or followed), ns
	closedUpTo int64         // windows starting before this are final
	nextSnap   int64
	lastFold   int64 // wall clock (ns) of the last flow read, or of assignment
	folded     bool  // a flow was read since the last Advance
}

// Engine is the detector core. Not safe for concurrent use.
type Engine struct {
	cfg      Config
	model    *baseline.Model
	cls      *classify.Classifier
	sink     Sink
	limits   Limits
	id       string
	m        *Metrics
	winNs    int64
	lateNs   int64
	futureNs int64

	targets    map[targetKey]*target // all partitions: a subnet has one owner clock
	clocks     map[int32]*clock
	idleNs     int64
	now        func() int64 // wall clock, ns (tests replace it)
	free       []*window.Agg
	allow      []netip.Prefix
	drops      map[string]uint64 // not yet added to Metrics
	dropTotal  map[string]uint64
	folded     uint64
	tombstones []checkpoint.Record
	snapK      int
}

// New builds an engine. id names the detector instance in events.
func New(cfg Config, bcfg baseline.Config, ccfg classify.Config, sink Sink, limits Limits, id string, m *Metrics) (*Engine, error) {
	errs := []error{cfg.Validate("engine")}
	model, err := baseline.NewModel(bcfg)
	errs = append(errs, err)
	cls, err := classify.New(ccfg)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if limits == nil {
		limits = func(string) (map[string]float64, map[string]float64) { return nil, nil }
	}
	e := &Engine{cfg: cfg, model: model, cls: cls, sink: sink, limits: limits, id: id, m: m,
		winNs: int64(cfg.WindowSeconds) * 1e9, lateNs: int64(cfg.LatenessSeconds) * 1e9,
		futureNs: int64(cfg.FutureToleranceSeconds) * 1e9, idleNs: int64(cfg.PartitionIdleSeconds) * 1e9,
		now:     func() int64 { return time.Now().UnixNano() },
		targets: map[targetKey]*target{}, clocks: map[int32]*clock{}, drops: map[string]uint64{}, dropTotal: map[string]uint64{}}
	// Windows per snapshot interval decide how many top values make p95.
	w := max(1, cfg.SnapshotSeconds/cfg.WindowSeconds)
	e.snapK = w - int(math.Ceil(0.95*float64(w))) + 1
	for _, p := range cfg.Allowlist {
		e.allow = append(e.allow, netip.MustParsePrefix(p))
	}
	return e, nil
}

// Model and Classifier expose the configured parts (tests, docs).
func (e *Engine) Model() *baseline.Model { return e.model }

// SetWallClock replaces the wall clock that decides partition idleness
// (tests).
func (e *Engine) SetWallClock(now func() time.Time) {
	e.now = func() int64 { return now().UnixNano() }
}

func (e *Engine) clock(p int32) *clock {
	c := e.clocks[p]
	if c == nil {
		c = &clock{targets: map[targetKey]*target{}, lastFold: e.now()}
		e.clocks[p] = c
	}
	return c
}

// Assign tells the engine the worker starts reading partition p: its idle
// timeout counts from now, not from when its state was restored.
func (e *Engine) Assign(p int32) {
	e.clock(p).lastFold = e.now()
}

// begin starts a clock's window bookkeeping at the window of its first
// event time; the window before may still get late flows.
func (e *Engine) begin(c *clock, ws int64) {
	if c.closedUpTo == 0 {
		c.closedUpTo = ws - e.winNs
		c.nextSnap = ws + int64(e.cfg.SnapshotSeconds)*1e9
	}
}

// eventTime is the flow's end time, else its receive time; an end time far
// after the receive time is a broken exporter clock.
func (e *Engine) eventTime(f *pb.Flow) int64 {
	end, recv := int64(f.GetTimeFlowEndNs()), int64(f.GetTimeReceivedNs())
	if end <= 0 || (recv > 0 && end > recv+e.futureNs) {
		return recv
	}
	return end
}

func (e *Engine) allowlisted(f *pb.Flow) bool {
	b := f.GetSrcAddr()
	if f.GetDirection() == pb.Direction_DIRECTION_OUTBOUND {
		b = f.GetDstAddr()
	}
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range e.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (e *Engine) drop(reason string) {
	e.drops[reason]++
	e.dropTotal[reason]++
}

// Fold adds one flow read from Kafka partition p. Bad or late flows are
// counted (detector_flows_dropped_total) and skipped.
func (e *Engine) Fold(p int32, f *pb.Flow) {
	subnet := f.GetSubnet()
	if subnet == "" {
		e.drop("no_subnet")
		return
	}
	dir := f.GetDirection()
	if dir != pb.Direction_DIRECTION_INBOUND && dir != pb.Direction_DIRECTION_OUTBOUND {
		e.drop("no_direction")
		return
	}
	t := e.eventTime(f)
	if t <= 0 {
		e.drop("no_time")
		return
	}
	if len(e.allow) > 0 && e.allowlisted(f) {
		e.drop("allowlisted")
		return
	}
	ws := t - t%e.winNs
	rc := e.clock(p) // the partition read: its watermark
	rc.folded = true
	e.begin(rc, ws)
	key := targetKey{subnet, dir}
	tg := e.targets[key]
	c := rc
	if tg != nil && tg.partition != p {
		// A misrouted flow (counted by the worker): it joins its
		// target's windows, on the clock of the target's partition.
		c = e.clock(tg.partition)
		e.begin(c, ws)
	}
	if ws < c.closedUpTo {
		e.drop("late")
		return
	}
	if t > rc.maxEvent {
		rc.maxEvent = t
	}
	if tg == nil {
		// Windows before the first flow say nothing about the target.
		tg = &target{key: key, customer: f.GetCustomer(), partition: p, bornNs: ws}
		e.targets[key] = tg
		c.targets[key] = tg
	}
	if cu := f.GetCustomer(); cu != "" && cu != tg.customer {
		tg.customer = cu
	}
	var agg *window.Agg
	for i := range tg.aggs {
		if tg.aggs[i].start == ws {
			agg = tg.aggs[i].agg
			break
		}
	}
	if agg == nil {
		agg = e.newAgg(ws)
		tg.aggs = append(tg.aggs, aggSlot{ws, agg})
		w := c.openWindow(ws)
		w.targets = append(w.targets, tg)
	}
	agg.Fold(f, int((t-ws)/1e9))
	e.folded++
}

func (e *Engine) newAgg(ws int64) *window.Agg {
	var a *window.Agg
	if n := len(e.free); n > 0 {
		a, e.free = e.free[n-1], e.free[:n-1]
	} else {
		a = window.NewAgg(e.cfg.WindowSeconds)
	}
	a.Reset(ws)
	return a
}

func (c *clock) openWindow(ws int64) *openWindow {
	i, found := slices.BinarySearchFunc(c.windows, ws, func(w *openWindow, s int64) int {
		switch {
		case w.start < s:
			return -1
		case w.start > s:
			return 1
		}
		return 0
	})
	if found {
		return c.windows[i]
	}
	w := &openWindow{start: ws}
	c.windows = slices.Insert(c.windows, i, w)
	return w
}

// Advance evaluates every window a partition's watermark has passed:
// provisionally when event time passes a window's end (to open anomalies
// early), finally LatenessSeconds later (hysteresis, learning, snapshots).
// Call it after each batch of flows.
//
// Each partition has its own watermark. A partition that has read nothing
// for PartitionIdleSeconds of wall clock follows the slowest active
// partition instead, so the windows of its silent subnets still close (a
// subnet gone silent is a traffic drop); when every partition is idle,
// nothing moves (an outage is not a drop).
func (e *Engine) Advance() {
	now := e.now()
	minActive := int64(math.MaxInt64)
	for _, c := range e.clocks {
		if c.folded {
			c.folded, c.lastFold = false, now
		}
		if now-c.lastFold <= e.idleNs && c.maxEvent > 0 {
			minActive = min(minActive, c.maxEvent)
		}
	}
	for p, c := range e.clocks {
		if now-c.lastFold > e.idleNs && minActive != math.MaxInt64 && minActive > c.maxEvent {
			ws := minActive - minActive%e.winNs
			e.begin(c, ws)
			c.maxEvent = minActive
		}
		e.advance(p, c)
	}
	e.flushMetrics()
}

func (e *Engine) advance(p int32, c *clock) {
	for _, w := range c.windows {
		if !w.provisional && w.start+e.winNs <= c.maxEvent && w.start >= c.closedUpTo {
			w.provisional = true
			for _, tg := range w.targets {
				e.evaluate(tg, tg.aggFor(w.start), w.start, false)
			}
		}
	}
	for c.closedUpTo > 0 && c.closedUpTo+e.winNs+e.lateNs <= c.maxEvent {
		gap := (c.maxEvent - e.lateNs - c.closedUpTo) / e.winNs
		if gap > int64(e.cfg.MaxGapWindows) && (len(c.windows) == 0 || c.windows[0].start > c.closedUpTo) {
			// Jump over the empty windows of an event-time gap.
			next := c.maxEvent - e.lateNs - e.winNs
			next -= next % e.winNs
			if len(c.windows) > 0 && c.windows[0].start < next {
				next = c.windows[0].start
			}
			if next > c.closedUpTo {
				e.count("skipped", float64((next-c.closedUpTo)/e.winNs))
				c.closedUpTo = next
				continue
			}
		}
		e.closeWindow(c, c.closedUpTo)
		c.closedUpTo += e.winNs
	}
	if e.m != nil && c.closedUpTo > 0 {
		e.m.Watermark.WithLabelValues(strconv.Itoa(int(p))).Set(float64(c.closedUpTo) / 1e9)
	}
}

func (e *Engine) count(outcome string, n float64) {
	if e.m != nil {
		e.m.Windows.WithLabelValues(outcome).Add(n)
	}
}

func (tg *target) aggFor(ws int64) *window.Agg {
	for _, s := range tg.aggs {
		if s.start == ws {
			return s.agg
		}
	}
	return nil
}

func (e *Engine) closeWindow(c *clock, ws int64) {
	var ow *openWindow
	if len(c.windows) > 0 && c.windows[0].start == ws {
		ow = c.windows[0]
	}
	for key, tg := range c.targets {
		agg := tg.aggFor(ws)
		e.evaluate(tg, agg, ws, true)
		if agg != nil {
			tg.idle = 0
			for i, s := range tg.aggs {
				if s.start == ws {
					tg.aggs = slices.Delete(tg.aggs, i, i+1)
					break
				}
			}
			if len(tg.aggs) == 0 {
				tg.aggs = nil
			}
			e.free = append(e.free, agg)
		} else if tg.idle++; tg.idle > uint32(e.cfg.IdleExpiryWindows) && len(tg.track.Active()) == 0 && len(tg.aggs) == 0 {
			delete(e.targets, key)
			delete(c.targets, key)
			e.tombstones = append(e.tombstones, checkpoint.Record{Key: checkpoint.Key(key.subnet, key.dir), Partition: tg.partition})
		}
	}
	if ow != nil {
		c.windows = c.windows[1:]
		// Keep as many spare aggregates as the busiest recent window
		// needed: memory follows the active set, not its all-time peak.
		if spare := 2 * len(ow.targets); len(e.free) > spare {
			clear(e.free[spare:])
			e.free = e.free[:spare]
		}
	} else if len(e.free) > 0 {
		clear(e.free)
		e.free = e.free[:0]
	}
	e.count("closed", 1)
	if we := ws + e.winNs; we >= c.nextSnap && c.nextSnap > 0 {
		e.snapshot(c, we)
		c.nextSnap = we + int64(e.cfg.SnapshotSeconds)*1e9
	}
}

func (e *Engine) evaluate(tg *target, agg *window.Agg, ws int64, final bool) {
	if ws < tg.bornNs {
		return
	}
	// A quiet target with a quiet baseline: nothing can fire (a drop needs
	// a busy baseline) and learning zeros changes nothing.
	if agg == nil && tg.track.Quiet() && tg.base.N > 0 &&
		tg.base.Global[window.Pps].Level < 0.5 && tg.base.Global[window.Bps].Level < 3 {
		return
	}
	f := window.Compute(agg, ws, e.cfg.WindowSeconds)
	slot := e.model.Slot(ws)
	exp := e.model.Score(&tg.base, slot, &f.Values)
	floors, ceilings := e.limits(tg.customer)
	in := classify.Input{Subnet: tg.key.subnet, Customer: tg.customer, Direction: tg.key.dir, F: &f, Exp: &exp,
		Warm: e.model.Warm(&tg.base), Floors: floors, Ceilings: ceilings}
	for _, ev := range e.cls.Step(&tg.track, &in, final, e.id) {
		if e.m != nil {
			e.m.Events.WithLabelValues(ev.Class, ev.Kind.String()).Inc()
		}
		e.sink.Event(ev)
		tg.dirty = true
	}
	if !final {
		return
	}
	learn := tg.track.Quiet() || tg.track.OldestActiveWindows() > uint32(e.cls.Config().RelearnAfterWindows)
	if tg.skipLearn > 0 {
		tg.skipLearn--
		learn = false
	}
	if learn {
		e.model.Learn(&tg.base, slot, &f.Values)
		tg.dirty = true
	}
	if !tg.track.Quiet() {
		tg.dirty = true
	}
	if agg != nil || tg.snap != nil {
		e.record(tg, &f.Values)
	}
}

// record keeps, per metric, the last observed value and the top snapK
// values since the last snapshot: enough for an exact nearest-rank p95
// over the interval in a few dozen bytes, where a buffer of every window
// would cost more than the baseline itself.
func (e *Engine) record(tg *target, v *window.Values) {
	k := e.snapK
	if tg.snap == nil {
		tg.snap = make([]float32, int(window.NumMetrics)*(k+1))
		for i := range tg.snap {
			tg.snap[i] = -1
		}
	}
	for m, x := range v {
		row := tg.snap[m*(k+1) : (m+1)*(k+1)]
		row[0] = float32(x)
		top := row[1:]
		for i := range top {
			if float32(x) > top[i] {
				copy(top[i+1:], top[i:len(top)-1])
				top[i] = float32(x)
				break
			}
		}
	}
	tg.snapN++
}

func (e *Engine) snapshot(c *clock, now int64) {
	slot := e.model.Slot(now - 1)
	k := e.snapK
	for _, tg := range c.targets {
		if tg.snap == nil || tg.base.N == 0 {
			continue
		}
		var obs window.Values
		for m := range obs {
			obs[m] = float64(tg.snap[m*(k+1)])
		}
		exp := e.model.Score(&tg.base, slot, &obs)
		s := &pb.BaselineSnapshot{TimeNs: uint64(now), Customer: tg.customer, Subnet: tg.key.subnet,
			Direction: tg.key.dir, Detector: e.id}
		// Nearest rank: the ceil(0.95 n)-th smallest is the
		// (n - ceil(0.95 n) + 1)-th largest.
		n := tg.snapN
		idx := min(k-1, n-int(math.Ceil(0.95*float64(n))))
		for m := range obs {
			p95 := float64(tg.snap[m*(k+1)+1+idx])
			s.Metrics = append(s.Metrics, &pb.BaselineMetric{Metric: window.Metric(m).String(),
				Expected: exp[m].Expected, Spread: exp[m].Spread, Observed: obs[m],
				P95: max(p95, 0), Samples: uint64(tg.base.N)})
		}
		tg.snap, tg.snapN = nil, 0
		e.sink.Snapshot(s)
		if e.m != nil {
			e.m.Snapshots.Inc()
		}
	}
}

func (e *Engine) flushMetrics() {
	if e.m == nil {
		return
	}
	e.m.Folded.Add(float64(e.folded))
	e.folded = 0
	for r, n := range e.drops {
		if n > 0 {
			e.m.Dropped.WithLabelValues(r).Add(float64(n))
			e.drops[r] = 0
		}
	}
	e.m.Targets.Set(float64(len(e.targets)))
	if n := e.cls.TakeSurges(); n > 0 {
		e.count("benign_surge", float64(n))
	}
}

// Stats are counters for tests and logs.
type Stats struct {
	Targets    int
	OpenWindow int   // over all partitions
	ClosedUpTo int64 // slowest partition with traffic
	MaxEvent   int64 // fastest partition
}

// Stats returns current figures.
func (e *Engine) Stats() Stats {
	s := Stats{Targets: len(e.targets)}
	for _, c := range e.clocks {
		s.OpenWindow += len(c.windows)
		if c.closedUpTo > 0 && (s.ClosedUpTo == 0 || c.closedUpTo < s.ClosedUpTo) {
			s.ClosedUpTo = c.closedUpTo
		}
		s.MaxEvent = max(s.MaxEvent, c.maxEvent)
	}
	return s
}

// Watermark returns partition p's largest event time and the start of its
// first window not yet final (0, 0 for a partition never read).
func (e *Engine) Watermark(p int32) (maxEvent, closedUpTo int64) {
	if c := e.clocks[p]; c != nil {
		return c.maxEvent, c.closedUpTo
	}
	return 0, 0
}

// Dropped returns how many flows were dropped for reason.
func (e *Engine) Dropped(reason string) uint64 { return e.dropTotal[reason] }

// Checkpoint returns records for every changed target of the given
// partitions (all when parts is nil) and forgets their dirty marks.
func (e *Engine) Checkpoint(parts []int32) ([]checkpoint.Record, error) {
	var out []checkpoint.Record
	keep := e.tombstones[:0]
	for _, r := range e.tombstones {
		if parts == nil || slices.Contains(parts, r.Partition) {
			out = append(out, r)
		} else {
			keep = append(keep, r)
		}
	}
	e.tombstones = keep
	for _, tg := range e.targets {
		if !tg.dirty || (parts != nil && !slices.Contains(parts, tg.partition)) {
			continue
		}
		b, err := checkpoint.Encode(&checkpoint.State{Customer: tg.customer, Base: tg.base, Track: tg.track})
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", tg.key.subnet, err)
		}
		out = append(out, checkpoint.Record{Key: checkpoint.Key(tg.key.subnet, tg.key.dir), Partition: tg.partition, Value: b})
		tg.dirty = false
	}
	return out, nil
}

// Restore installs a checkpointed target read from state partition p. The
// first window after a restore is not learned from: its flows before the
// committed offset went to the previous owner.
func (e *Engine) Restore(p int32, key string, value []byte) error {
	subnet, dir, err := checkpoint.ParseKey(key)
	if err != nil {
		return err
	}
	k := targetKey{subnet, dir}
	if value == nil {
		if tg := e.targets[k]; tg != nil {
			e.forget(tg)
		}
		return nil
	}
	s, err := checkpoint.Decode(value)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	tg := e.targets[k]
	if tg != nil && tg.partition != p {
		e.forget(tg)
		tg = nil
	}
	if tg == nil {
		tg = &target{key: k, partition: p}
		e.targets[k] = tg
		e.clock(p).targets[k] = tg
	}
	tg.customer, tg.base, tg.track, tg.skipLearn, tg.idle, tg.partition = s.Customer, s.Base, s.Track, 1, 0, p
	return nil
}

// forget removes a target and its open windows.
func (e *Engine) forget(tg *target) {
	if c := e.clocks[tg.partition]; c != nil {
		for _, sl := range tg.aggs {
			for _, w := range c.windows {
				if w.start == sl.start {
					w.targets = slices.DeleteFunc(w.targets, func(x *target) bool { return x == tg })
				}
			}
			e.free = append(e.free, sl.agg)
		}
		delete(c.targets, tg.key)
	}
	tg.aggs = nil
	delete(e.targets, tg.key)
}

// Drop forgets partition p (revoked on rebalance): its targets, open
// windows and clock. The new owner replays from the committed offset on a
// clock of its own.
func (e *Engine) Drop(p int32) {
	c := e.clocks[p]
	if c == nil {
		return
	}
	for k, tg := range c.targets {
		for _, sl := range tg.aggs {
			e.free = append(e.free, sl.agg)
		}
		delete(e.targets, k)
	}
	delete(e.clocks, p)
	e.tombstones = slices.DeleteFunc(e.tombstones, func(r checkpoint.Record) bool { return r.Partition == p })
	if e.m != nil {
		e.m.Watermark.DeleteLabelValues(strconv.Itoa(int(p)))
	}
}

// Warm reports whether the target has finished warm-up (tests, ops).
func (e *Engine) Warm(subnet string, dir pb.Direction) bool {
	tg := e.targets[targetKey{subnet, dir}]
	return tg != nil && e.model.Warm(&tg.base)
}

// Learned returns how many windows the target's baseline learned from.
func (e *Engine) Learned(subnet string, dir pb.Direction) uint32 {
	if tg := e.targets[targetKey{subnet, dir}]; tg != nil {
		return tg.base.N
	}
	return 0
}
