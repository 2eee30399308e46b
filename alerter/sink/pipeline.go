package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/dedup"
)

// Message is one Kafka record as the sink sees it.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Time      time.Time
	Value     []byte
}

// DeadLetter is a record, or part of one, that cannot be written to
// ClickHouse; it goes to the dead-letter topic with the error.
type DeadLetter struct {
	Source Message
	// Index is the flow's position in the source FlowBatch, -1 for the
	// whole message.
	Index int
	Value []byte
	Err   error
}

// Table is the ClickHouse side of one topic.
type Table[R any] interface {
	// Name is the ClickHouse table (metrics, logs).
	Name() string
	// Decode turns one message into rows; what cannot be converted comes
	// back as dead letters instead.
	Decode(m Message) ([]R, []DeadLetter)
	Insert(ctx context.Context, rows []R) error
}

// Hold is what the replay check found for one row.
type Hold uint8

const (
	// NotHeld: ClickHouse does not hold the row; insert it.
	NotHeld Hold = iota
	// HeldHere: held at the row's own Kafka position (a replay after a
	// crash or a failed insert).
	HeldHere
	// HeldResent: the row is a re-sent copy (same producer, sequence and
	// index) of a row an earlier run stored from another offset.
	HeldResent
)

// Replayable is a Table that cannot fold a row written twice (flows, unlike
// the ReplacingMergeTree tables), so that a replay after a crash or an
// insert that failed half-way writes each row exactly once.
type Replayable[R any] interface {
	// Held tells, per row, whether ClickHouse already holds it (same
	// content, at its Kafka position or as the same row of the same
	// batch). reused counts rows whose position it holds with other
	// content (the topic was deleted and created again): they are inserted.
	Held(ctx context.Context, rows []R) (held []Hold, reused int, err error)
	// Repair makes what ClickHouse derives from the table (rollups) whole
	// for the held rows: their INSERT may have died after the table's part
	// and before the views' parts.
	Repair(ctx context.Context, held []R) ([]store.RepairReport, error)
}

// Resendable is a Table whose messages carry their batch's identity
// (producer id, sequence): a message re-sent by its producer after a lost
// acknowledgement is dropped (schemas/dedup).
type Resendable interface {
	// Origin must be safe for concurrent use (partition readers call it).
	Origin(m Message) dedup.Origin
}

// DeadLetters writes dead letters durably (the offset is committed after).
type DeadLetters interface {
	Write(ctx context.Context, dl []DeadLetter) error
}

// Committer commits the next offset to read per partition of one topic.
type Committer func(ctx context.Context, offsets map[int]int64) error

// errStopped ends a pipeline when its generation or the process ends.
var errStopped = errors.New("pipeline stopped")

// span is the rows of one message inside a batch.
type span struct {
	msg        Message
	start, end int
	suspect    bool
}

type batch[R any] struct {
	rows    []R
	spans   []span
	dead    []DeadLetter
	next    map[int]int64 // partition -> offset to commit (last + 1)
	first   time.Time
	suspect bool
}

func (b *batch[R]) reset() {
	b.rows, b.spans, b.dead = b.rows[:0], b.spans[:0], b.dead[:0]
	b.next = map[int]int64{}
	b.first = time.Time{}
	b.suspect = false
}

// pipeline batches one topic's messages, writes them and commits.
type pipeline[R any] struct {
	topic   string
	table   Table[R]
	dead    DeadLetters
	commit  Committer
	batch   BatchConfig
	retry   RetryConfig
	log     *slog.Logger
	metrics *Metrics
	acked   *offsets
	// healthy is shared with the Sink's readiness check: false while
	// inserts fail.
	healthy *atomic.Bool
	// budget: rows of each partition still to check against ClickHouse
	// since the partition was assigned (Replayable tables only).
	budget      map[int]int
	checkBudget int
	// window remembers the batches seen in this generation (Resendable
	// tables only); a new pipeline per generation starts empty, so a batch
	// is never judged by what a revoked assignment read and did not write.
	window *dedup.Window
}

func newPipeline[R any](topic string, t Table[R], cfg Config, dead DeadLetters, commit Committer,
	m *Metrics, acked *offsets, log *slog.Logger) *pipeline[R] {
	p := &pipeline[R]{topic: topic, table: t, dead: dead, commit: commit, batch: cfg.Batch, retry: cfg.Retry,
		log: log.With("topic", topic, "table", t.Name()), metrics: m, acked: acked,
		healthy: newTrue(), budget: map[int]int{}, checkBudget: cfg.replayCheckRows()}
	if _, ok := t.(Resendable); ok {
		p.window = dedup.NewWindow(cfg.Consumer.Dedup)
	}
	return p
}

// decoded is a message with its rows. Partition readers decode (in
// parallel, and while the previous batch is being inserted); the batcher
// only appends.
type decoded[R any] struct {
	msg    Message
	rows   []R
	dead   []DeadLetter
	origin dedup.Origin
}

// decode runs in the partition readers' goroutines: Table.Decode must be
// safe for concurrent use.
func (p *pipeline[R]) decode(m Message) decoded[R] {
	rs, dead := p.table.Decode(m)
	d := decoded[R]{msg: m, rows: rs, dead: dead}
	if r, ok := p.table.(Resendable); ok {
		d.origin = r.Origin(m)
	}
	return d
}

// run consumes in until ctx ends. A batch not yet written when ctx ends is
// dropped uncommitted: the partition's next owner reads it again.
func (p *pipeline[R]) run(ctx context.Context, in <-chan decoded[R]) error {
	b := &batch[R]{next: map[int]int64{}, rows: make([]R, 0, p.batch.MaxRows+p.batch.MaxRows/8)}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return errStopped
		case d := <-in:
			if len(b.spans) == 0 {
				b.first = time.Now()
				timer.Reset(p.batch.MaxWait)
			}
			p.add(b, d)
			if len(b.rows) < p.batch.MaxRows {
				continue
			}
		case <-timer.C:
			if len(b.spans) == 0 {
				continue
			}
		}
		timer.Stop()
		if err := p.flush(ctx, b); err != nil {
			return err
		}
		b.reset()
	}
}

func (p *pipeline[R]) add(b *batch[R], d decoded[R]) {
	m, rs, dead := d.msg, d.rows, d.dead
	if p.window != nil {
		switch p.window.Observe(m.Partition, d.origin) {
		case dedup.Duplicate:
			// A copy its producer re-sent after a lost acknowledgement: the
			// original (rows and dead letters) is in this batch or was
			// written before. Only its offset is committed.
			p.metrics.DuplicateBatches.Inc()
			p.metrics.DuplicateFlows.Add(float64(len(rs) + len(dead)))
			p.log.Debug("dropped a re-sent batch", "partition", m.Partition, "offset", m.Offset,
				"producer", fmt.Sprintf("%016x", d.origin.Producer), "sequence", d.origin.Sequence, "flows", len(rs)+len(dead))
			b.spans = append(b.spans, span{msg: m, start: len(b.rows), end: len(b.rows)})
			b.next[m.Partition] = m.Offset + 1
			return
		case dedup.TooOld:
			p.metrics.DedupTooOld.Inc()
		}
	}
	s := span{msg: m, start: len(b.rows)}
	b.rows = append(b.rows, rs...)
	s.end = len(b.rows)
	if _, ok := p.table.(Replayable[R]); ok {
		left, seen := p.budget[m.Partition]
		if !seen {
			left = p.checkBudget
		}
		if left > 0 {
			s.suspect = true
			b.suspect = true
			left -= max(len(rs), 1)
		}
		p.budget[m.Partition] = left
	}
	b.spans = append(b.spans, s)
	b.dead = append(b.dead, dead...)
	b.next[m.Partition] = m.Offset + 1
}

// flush writes the batch, then its dead letters, then commits; each step
// is retried with backoff until it succeeds or ctx ends.
func (p *pipeline[R]) flush(ctx context.Context, b *batch[R]) error {
	start := time.Now()
	rows, spans := b.rows, b.spans
	suspect := b.suspect
	backoff := p.retry.InitialBackoff
	var extraDead []DeadLetter
	for attempt := 0; ; attempt++ {
		var err error
		if suspect {
			rows, spans, err = p.dropHeld(ctx, rows, spans)
		}
		if err == nil {
			err = p.insert(ctx, rows)
			if store.IsDataError(err) {
				p.log.Warn("batch refused as invalid, writing message by message", "rows", len(rows), "err", err)
				extraDead, err = p.insertEach(ctx, rows, spans)
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return errStopped
		}
		// The failed insert may have written part of the batch (a day
		// partition, or everything before the connection broke): check
		// before the next attempt.
		suspect = true
		for i := range spans {
			spans[i].suspect = true
		}
		p.metrics.Retries.WithLabelValues(p.table.Name()).Inc()
		p.metrics.ClickHouseUp.Set(0)
		p.healthy.Store(false)
		p.log.Warn("insert failed, will retry", "rows", len(rows), "attempt", attempt+1, "backoff", backoff,
			"connection", store.IsConnectionError(err), "err", err)
		if !sleep(ctx, backoff) {
			return errStopped
		}
		backoff = min(2*backoff, p.retry.MaxBackoff)
	}
	p.metrics.ClickHouseUp.Set(1)
	p.healthy.Store(true)
	if len(rows) > 0 {
		p.metrics.Rows.WithLabelValues(p.table.Name()).Add(float64(len(rows)))
		p.metrics.BatchRows.WithLabelValues(p.table.Name()).Observe(float64(len(rows)))
	}
	dead := append(b.dead, extraDead...)
	if len(dead) > 0 {
		if err := p.retryLoop(ctx, "dead letters", func() error { return p.dead.Write(ctx, dead) }); err != nil {
			return err
		}
		for _, d := range dead {
			p.metrics.DeadLetters.WithLabelValues(p.topic).Inc()
			p.log.Warn("dead letter", "partition", d.Source.Partition, "offset", d.Source.Offset, "index", d.Index, "err", d.Err)
		}
	}
	if err := p.retryLoop(ctx, "commit", func() error { return p.commit(ctx, b.next) }); err != nil {
		return err
	}
	for part, off := range b.next {
		p.acked.set(p.topic, part, off)
	}
	p.metrics.FlushSeconds.WithLabelValues(p.table.Name()).Observe(time.Since(start).Seconds())
	p.metrics.BatchAge.WithLabelValues(p.table.Name()).Observe(time.Since(b.first).Seconds())
	return nil
}

func (p *pipeline[R]) insert(ctx context.Context, rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	// The insert gets its own deadline, not the generation's context: an
	// insert cut off half-way is what the replay check has to repair, so
	// let a running one finish.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.batch.InsertTimeout)
	defer cancel()
	start := time.Now()
	err := p.table.Insert(ictx, rows)
	p.metrics.InsertSeconds.WithLabelValues(p.table.Name()).Observe(time.Since(start).Seconds())
	return err
}

// insertEach isolates the invalid messages of a refused batch: each
// message's rows are inserted alone; those refused as invalid become dead
// letters (the whole message, with the error).
func (p *pipeline[R]) insertEach(ctx context.Context, rows []R, spans []span) ([]DeadLetter, error) {
	var dead []DeadLetter
	for _, s := range spans {
		if s.start == s.end {
			continue
		}
		err := p.insert(ctx, rows[s.start:s.end])
		if err == nil {
			continue
		}
		if !store.IsDataError(err) {
			// ClickHouse went away meanwhile: the caller retries the
			// batch, after checking what was written.
			return nil, err
		}
		dead = append(dead, DeadLetter{Source: s.msg, Index: -1, Value: s.msg.Value, Err: err})
	}
	return dead, nil
}

// dropHeld removes the rows ClickHouse already holds from the suspect
// spans and returns the rows and spans to insert.
func (p *pipeline[R]) dropHeld(ctx context.Context, rows []R, spans []span) ([]R, []span, error) {
	rp, ok := p.table.(Replayable[R])
	if !ok {
		return rows, spans, nil
	}
	var check []R
	for _, s := range spans {
		if s.suspect {
			check = append(check, rows[s.start:s.end]...)
		}
	}
	if len(check) == 0 {
		return rows, spans, nil
	}
	held, reused, err := rp.Held(ctx, check)
	if err != nil {
		return rows, spans, fmt.Errorf("replay check: %w", err)
	}
	if len(held) != len(check) {
		return rows, spans, fmt.Errorf("replay check: %d answers for %d rows", len(held), len(check))
	}
	var replayed, resent int
	if reused > 0 {
		p.metrics.ReplayReused.WithLabelValues(p.table.Name()).Add(float64(reused))
		p.log.Warn("replay: ClickHouse holds other rows at these Kafka positions (topic recreated?); inserting these",
			"rows", reused, "checked", len(check))
	}
	outRows := make([]R, 0, len(rows))
	outSpans := make([]span, 0, len(spans))
	var skipped []R
	k := 0
	for _, s := range spans {
		ns := s
		ns.start = len(outRows)
		for i := s.start; i < s.end; i++ {
			if s.suspect {
				h := held[k]
				k++
				if h != NotHeld {
					if h == HeldResent {
						resent++
					} else {
						replayed++
					}
					skipped = append(skipped, rows[i])
					continue
				}
			}
			outRows = append(outRows, rows[i])
		}
		ns.end = len(outRows)
		outSpans = append(outSpans, ns)
	}
	if len(skipped) == 0 {
		return outRows, outSpans, nil
	}
	p.metrics.ReplaySkipped.WithLabelValues(p.table.Name()).Add(float64(replayed))
	p.metrics.DuplicateFlows.Add(float64(resent))
	p.log.Info("replay: skipped rows ClickHouse already holds", "replayed", replayed,
		"resent_copies", resent, "checked", len(check))
	// Before anything else is inserted for these keys: the skipped rows'
	// INSERT may have kept its flows part and lost its rollup parts.
	reports, err := rp.Repair(ctx, skipped)
	if err != nil {
		return rows, spans, fmt.Errorf("rollup repair: %w", err)
	}
	for _, r := range reports {
		if r.Repaired > 0 {
			p.metrics.RollupRepaired.WithLabelValues(r.Table).Add(float64(r.Repaired))
			p.log.Warn("replay: rollup cells were short of what flows holds (an insert died between the flows part and the views'); repaired",
				"rollup", r.Table, "cells", r.Repaired)
		}
		if len(r.Over) > 0 {
			p.metrics.RollupOver.WithLabelValues(r.Table).Add(float64(len(r.Over)))
			c := r.Over[0]
			p.log.Error("replay: rollup cells hold more than flows; left alone, rebuild the day (docs/clickhouse.md)",
				"rollup", r.Table, "cells", len(r.Over), "first_cell", c.Cell, "customer", c.Customer, "subnet", c.Subnet,
				"bytes_diff", c.Bytes, "flows_diff", c.Flows)
		}
	}
	return outRows, outSpans, nil
}

func (p *pipeline[R]) retryLoop(ctx context.Context, what string, fn func() error) error {
	backoff := p.retry.InitialBackoff
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if errors.Is(err, errStopped) || ctx.Err() != nil {
			return errStopped
		}
		p.log.Warn(what+" failed, will retry", "attempt", attempt, "backoff", backoff, "err", err)
		if !sleep(ctx, backoff) {
			return errStopped
		}
		backoff = min(2*backoff, p.retry.MaxBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func newTrue() *atomic.Bool {
	b := new(atomic.Bool)
	b.Store(true)
	return b
}
