// Package store writes the sink's rows into ClickHouse with clickhouse-go/v2
// column-wise batch inserts, answers which Kafka records (or re-sent copies
// of them) flowsentry.flows already holds (the sink's replay check) and
// repairs the rollups of an INSERT cut between its flows part and its
// views' parts.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/alerter/sink/rows"
)

// Store is a ClickHouse database holding the Flowsentry tables.
type Store struct {
	conn driver.Conn
	db   string
}

// New wraps conn; db is the database of the tables (flowsentry in
// production, a throw-away one in tests).
func New(conn driver.Conn, db string) *Store { return &Store{conn: conn, db: db} }

// Database is the database the store writes to.
func (s *Store) Database() string { return s.db }

// Conn is the underlying connection (retention, health checks).
func (s *Store) Conn() driver.Conn { return s.conn }

// Record identifies one flow row in Kafka: partition, message offset and
// index in the message's FlowBatch.
type Record struct {
	Partition uint16
	Offset    uint64
	Index     uint32
}

// Range is the offsets [Lo, Hi] of one Kafka partition.
type Range struct {
	Partition uint16
	Lo, Hi    uint64
}

// InsertFlows inserts rows with one INSERT per day partition. An INSERT
// into a single partition (below max_insert_block_size rows) becomes one
// part, which ClickHouse commits atomically; an INSERT spanning two days
// would write two parts, and a failure between them would leave half a
// batch. Per-day inserts keep the possible partial states few and the replay
// check (HeldFlows) exact either way.
func (s *Store) InsertFlows(ctx context.Context, rs []rows.Flow) error {
	if len(rs) == 0 {
		return nil
	}
	byDay := map[int][]int{}
	var days []int
	for i := range rs {
		d := rs[i].Day()
		if _, ok := byDay[d]; !ok {
			days = append(days, d)
		}
		byDay[d] = append(byDay[d], i)
	}
	slices.Sort(days)
	for _, d := range days {
		if err := s.insertFlows(ctx, rs, byDay[d]); err != nil {
			return fmt.Errorf("insert flows of day %d: %w", d, err)
		}
	}
	return nil
}

func (s *Store) insertFlows(ctx context.Context, rs []rows.Flow, idx []int) error {
	n := len(idx)
	var (
		tr, ts, te                      = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		ft, dir                         = make([]int8, n), make([]int8, n)
		exp, src, dst, cust, subnet     = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		odid, seq, rate, inIf, outIf    = make([]uint32, n), make([]uint32, n), make([]uint32, n), make([]uint32, n), make([]uint32, n)
		srcAS, dstAS, kidx              = make([]uint32, n), make([]uint32, n), make([]uint32, n)
		sport, dport, etype, frag       = make([]uint16, n), make([]uint16, n), make([]uint16, n), make([]uint16, n)
		proto, flags, tos, icmpT, icmpC = make([]uint8, n), make([]uint8, n), make([]uint8, n), make([]uint8, n), make([]uint8, n)
		bytes, packets, koff            = make([]uint64, n), make([]uint64, n), make([]uint64, n)
		kpart                           = make([]uint16, n)
		producer, bseq                  = make([]uint64, n), make([]uint64, n)
	)
	for j, i := range idx {
		r := &rs[i]
		tr[j], ts[j], te[j] = r.TimeReceived, r.TimeFlowStart, r.TimeFlowEnd
		ft[j], dir[j] = r.FlowType, r.Direction
		exp[j], src[j], dst[j], cust[j], subnet[j] = r.Exporter, r.SrcAddr, r.DstAddr, r.Customer, r.Subnet
		odid[j], seq[j], rate[j], inIf[j], outIf[j] = r.ObservationDomainID, r.SequenceNum, r.SamplingRate, r.InIf, r.OutIf
		srcAS[j], dstAS[j], kidx[j] = r.SrcAS, r.DstAS, r.KafkaIndex
		sport[j], dport[j], etype[j], frag[j] = r.SrcPort, r.DstPort, r.Etype, r.FragmentOffset
		proto[j], flags[j], tos[j], icmpT[j], icmpC[j] = r.Proto, r.TCPFlags, r.IPTos, r.ICMPType, r.ICMPCode
		bytes[j], packets[j], koff[j], kpart[j] = r.Bytes, r.Packets, r.KafkaOffset, r.KafkaPartition
		producer[j], bseq[j] = r.ProducerID, r.Sequence
	}
	// Same order as rows.FlowColumns.
	cols := []any{tr, ts, te, ft, exp, odid, seq, rate, inIf, outIf, src, dst, sport, dport, proto, etype, flags,
		tos, icmpT, icmpC, frag, srcAS, dstAS, bytes, packets, cust, subnet, dir, kpart, koff, kidx, producer, bseq}
	return s.insertColumns(ctx, "flows", rows.FlowColumns, cols)
}

// InsertAlerts inserts anomaly events. alerts is a ReplacingMergeTree on
// (customer, incident, seq): a re-delivered event folds into one row.
func (s *Store) InsertAlerts(ctx context.Context, as []rows.Alert) error {
	if len(as) == 0 {
		return nil
	}
	n := len(as)
	id, cust, sub, metric, unit, fp, reason := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	kind, dir, class, sev := make([]int8, n), make([]int8, n), make([]int8, n), make([]int8, n)
	seq := make([]uint32, n)
	st, up, en := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	obs, exp, score := make([]float64, n), make([]float64, n), make([]float64, n)
	pb, pp, tb, tp := make([]uint64, n), make([]uint64, n), make([]uint64, n), make([]uint64, n)
	for i, a := range as {
		id[i], cust[i], sub[i], metric[i], unit[i], fp[i], reason[i] = a.IncidentID, a.Customer, a.Subnet, a.Metric, a.Unit, a.Fingerprint, a.Reason
		kind[i], dir[i], class[i], sev[i] = a.EventKind, a.Direction, a.Class, a.Severity
		seq[i] = a.EventSeq
		st[i], up[i], en[i] = a.StartedAt, a.UpdatedAt, a.EndedAt
		obs[i], exp[i], score[i] = a.Observed, a.Expected, a.Score
		pb[i], pp[i], tb[i], tp[i] = a.PeakBps, a.PeakPps, a.TotalBytes, a.TotalPackets
	}
	return s.insertColumns(ctx, "alerts", rows.AlertColumns, []any{id, kind, seq, cust, sub, dir, class, sev,
		st, up, en, metric, unit, obs, exp, score, pb, pp, tb, tp, fp, reason})
}

// InsertBaselines inserts baseline rows (ReplacingMergeTree: replays fold).
func (s *Store) InsertBaselines(ctx context.Context, bs []rows.Baseline) error {
	if len(bs) == 0 {
		return nil
	}
	n := len(bs)
	t := make([]time.Time, n)
	cust, sub, metric := make([]string, n), make([]string, n), make([]string, n)
	dir := make([]int8, n)
	exp, spread, obs, p95 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	samples := make([]uint64, n)
	for i, b := range bs {
		t[i], cust[i], sub[i], metric[i], dir[i] = b.Time, b.Customer, b.Subnet, b.Metric, b.Direction
		exp[i], spread[i], obs[i], p95[i], samples[i] = b.Expected, b.Spread, b.Observed, b.P95, b.Samples
	}
	return s.insertColumns(ctx, "baselines", rows.BaselineColumns, []any{t, cust, sub, dir, metric, exp, spread, obs, p95, samples})
}

func (s *Store) insertColumns(ctx context.Context, table, columns string, cols []any) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+"."+table+" ("+columns+")")
	if err != nil {
		return err
	}
	defer func() { _ = batch.Abort() }()
	for i, c := range cols {
		if err := batch.Column(i).Append(c); err != nil {
			return &DataError{Err: fmt.Errorf("column %d of %s: %w", i, table, err)}
		}
	}
	return batch.Send()
}

// Key is a flow's (customer, subnet): the start of flows' ORDER BY.
type Key struct{ Customer, Subnet string }

// maxHeldKeys bounds the IN list of a replay check; beyond it the check
// relies on the time range alone.
const maxHeldKeys = 2000

// Fingerprint is what a flow row holds beyond its Kafka position. The
// replay check compares it too: a record found at the same (partition,
// offset, index) with other content is not this record but one of an
// earlier incarnation of the topic (deleted and created again, offsets from
// 0), and must be inserted, not skipped.
type Fingerprint struct {
	TimeReceived               int64 // Unix seconds
	Exporter, SrcAddr, DstAddr string
	SrcPort, DstPort           uint16
	Proto                      uint8
	SequenceNum                uint32
	Bytes, Packets             uint64
	Customer, Subnet           string
}

// FingerprintOf is the fingerprint of a row as ClickHouse will hand it back
// (FixedString(16) addresses: an absent one is 16 zero bytes).
func FingerprintOf(r *rows.Flow) Fingerprint {
	return Fingerprint{TimeReceived: r.TimeReceived.Unix(), Exporter: fixed16(r.Exporter), SrcAddr: fixed16(r.SrcAddr),
		DstAddr: fixed16(r.DstAddr), SrcPort: r.SrcPort, DstPort: r.DstPort, Proto: r.Proto, SequenceNum: r.SequenceNum,
		Bytes: r.Bytes, Packets: r.Packets, Customer: r.Customer, Subnet: r.Subnet}
}

func fixed16(s string) string {
	if len(s) >= 16 {
		return s
	}
	return s + strings.Repeat("\x00", 16-len(s))
}

// Batch is a FlowBatch's identity (producer_id, sequence); a re-sent copy
// of the batch at another Kafka offset has the same.
type Batch struct{ Producer, Sequence uint64 }

// HeldRow is a flows row the replay check found: its Kafka position, its
// batch identity and its content.
type HeldRow struct {
	Record
	Batch
	Fingerprint
}

// maxHeldBatches bounds the (producer_id, sequence) IN list of one query
// (ClickHouse's max_query_size is 256 KiB); more batches take more queries.
const maxHeldBatches = 2000

// HeldFlows returns the rows flowsentry.flows holds at the given offset
// ranges or with the given batch identities (a re-sent copy stored earlier
// at another offset), with each row's fingerprint: a record may be there
// more than once with different content, one per topic incarnation.
// tmin/tmax bound time_received and keys lists the (customer, subnet) of
// the rows being checked: with both, ClickHouse reads only the parts of
// those days and the index granules of those subnets and seconds, not the
// table (its ORDER BY does not start with the Kafka columns). A re-sent
// copy holds the same flows as its original, so the same bounds find it.
func (s *Store) HeldFlows(ctx context.Context, ranges []Range, batches []Batch, tmin, tmax time.Time, keys []Key) ([]HeldRow, error) {
	var held []HeldRow
	for first := true; first || len(batches) > 0; first = false {
		chunk := batches[:min(len(batches), maxHeldBatches)]
		batches = batches[len(chunk):]
		rs := ranges
		if !first {
			rs = nil // asked already
		}
		if len(rs) == 0 && len(chunk) == 0 {
			continue
		}
		var err error
		if held, err = s.heldFlows(ctx, held, rs, chunk, tmin, tmax, keys); err != nil {
			return nil, err
		}
	}
	return held, nil
}

func (s *Store) heldFlows(ctx context.Context, held []HeldRow, ranges []Range, batches []Batch, tmin, tmax time.Time, keys []Key) ([]HeldRow, error) {
	var q strings.Builder
	fmt.Fprintf(&q, "SELECT kafka_partition, kafka_offset, kafka_index, producer_id, sequence, time_received, exporter, src_addr, dst_addr, "+
		"src_port, dst_port, proto, sequence_num, bytes, packets, customer, subnet FROM %s.flows "+
		"WHERE time_received >= toDateTime(%d) AND time_received <= toDateTime(%d) AND (",
		s.db, tmin.Unix(), tmax.Unix())
	for i, r := range ranges {
		if i > 0 {
			q.WriteString(" OR ")
		}
		fmt.Fprintf(&q, "(kafka_partition = %d AND kafka_offset >= %d AND kafka_offset <= %d)", r.Partition, r.Lo, r.Hi)
	}
	if len(batches) > 0 {
		if len(ranges) > 0 {
			q.WriteString(" OR ")
		}
		q.WriteString("(producer_id, sequence) IN (")
		for i, b := range batches {
			if i > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "(%d, %d)", b.Producer, b.Sequence)
		}
		q.WriteString(")")
	}
	q.WriteString(")")
	if len(keys) <= maxHeldKeys {
		q.WriteString(keyFilter(keys))
	}
	res, err := s.conn.Query(ctx, q.String())
	if err != nil {
		return nil, err
	}
	defer res.Close()
	for res.Next() {
		var h HeldRow
		var tr time.Time
		f := &h.Fingerprint
		if err := res.Scan(&h.Partition, &h.Offset, &h.Index, &h.Producer, &h.Sequence, &tr, &f.Exporter, &f.SrcAddr, &f.DstAddr,
			&f.SrcPort, &f.DstPort, &f.Proto, &f.SequenceNum, &f.Bytes, &f.Packets, &f.Customer, &f.Subnet); err != nil {
			return nil, err
		}
		f.TimeReceived = tr.Unix()
		held = append(held, h)
	}
	return held, res.Err()
}

// keyFilter is " AND (customer, subnet) IN (...)" for keys, "" for none.
func keyFilter(keys []Key) string {
	if len(keys) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" AND (customer, subnet) IN (")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%s, %s)", quote(k.Customer), quote(k.Subnet))
	}
	b.WriteString(")")
	return b.String()
}

var quoter = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

// quote makes a ClickHouse string literal of any value (the customer and
// subnet come from Kafka, so they are escaped, never trusted).
func quote(v string) string { return "'" + quoter.Replace(v) + "'" }

// DataError is an insert ClickHouse (or the driver, before sending) refused
// because of the rows themselves: retrying the same rows cannot succeed.
type DataError struct{ Err error }

func (e *DataError) Error() string { return "invalid rows: " + e.Err.Error() }
func (e *DataError) Unwrap() error { return e.Err }

// dataCodes are ClickHouse error codes caused by the data sent, not by the
// server's state: CANNOT_PARSE_*, TYPE_MISMATCH, ARGUMENT_OUT_OF_BOUND,
// CANNOT_CONVERT_TYPE, TOO_LARGE_STRING_SIZE, INCORRECT_DATA,
// VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE, BAD_ARGUMENTS, ILLEGAL_TYPE_OF_ARGUMENT.
var dataCodes = map[int32]bool{6: true, 27: true, 32: true, 33: true, 36: true, 38: true, 41: true, 43: true,
	53: true, 69: true, 70: true, 72: true, 117: true, 131: true, 321: true}

// IsDataError reports whether err means "these rows are invalid" (dead-letter
// them) rather than "ClickHouse is unavailable" (back off and retry).
// Anything not known to be the data's fault is treated as retryable, so that
// an outage never turns into dead letters.
func IsDataError(err error) bool {
	if err == nil {
		return false
	}
	var de *DataError
	if errors.As(err, &de) {
		return true
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return dataCodes[ex.Code]
	}
	return false
}

// IsConnectionError reports errors of the transport (server down, reset),
// for logs and metrics.
func IsConnectionError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		strings.Contains(err.Error(), "connection refused")
}
