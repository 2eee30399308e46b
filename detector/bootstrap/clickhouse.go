package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// ClickHouse reads history from the raw flows table the sink writes
// (schemas/migrations/0001_flows.sql). Plain SELECTs only, so the
// read-only analyst user is enough; no per-query settings either, which a
// readonly=1 profile would refuse.
type ClickHouse struct {
	Conn     driver.Conn
	Database string
	// Customers restricts the history to these customers; all when empty.
	Customers []string
	// RowsPerQuery bounds how many rows one sorted query returns (about):
	// the server sorts one query at a time, so its memory follows this,
	// not the history. DefaultRowsPerQuery when zero.
	RowsPerQuery int
}

// DefaultRowsPerQuery: a few hundred MB of sort on the server.
const DefaultRowsPerQuery = 1_000_000

// maxBatch bounds a batch when one Kafka message held more flows.
const maxBatch = 8192

// row is one flows row as the query selects it. Times are DateTime
// (seconds); addresses FixedString(16), IPv4 as ::ffff:a.b.c.d.
type row struct {
	recv, end        uint32
	src, dst         [16]byte
	sport, dport     uint16
	proto, flags     uint8
	frag             uint16
	rate             uint32
	bytes, packets   uint64
	customer, subnet string
	dir              int8
	kp               uint16 // Kafka position: partition, offset
	ko               uint64
}

// where selects the rows received in [from, to) (seconds). The table is
// partitioned by day of receive time, so the server reads only those days.
func (c *ClickHouse) where(from, to int64) string {
	var q strings.Builder
	fmt.Fprintf(&q, " FROM %s.flows WHERE time_received >= toDateTime(%d) AND time_received < toDateTime(%d) "+
		"AND subnet != '' AND direction != 'unknown'", c.Database, from, to)
	if len(c.Customers) > 0 {
		q.WriteString(" AND customer IN (")
		for i, cu := range c.Customers {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(quote(cu))
		}
		q.WriteString(")")
	}
	return q.String()
}

// countQuery counts rows per hour of receive time (UTC hours, whatever the
// server's time zone).
func (c *ClickHouse) countQuery(from, to int64) string {
	return "SELECT intDiv(toUInt32(time_received), 3600) * 3600 AS h, count()" + c.where(from, to) + " GROUP BY h"
}

// query selects [from, to) in the order the worker read the flows: receive
// time, then Kafka partition and offset, and the flow's place in its
// message.
func (c *ClickHouse) query(from, to int64) string {
	return "SELECT toUInt32(time_received), toUInt32(time_flow_end), src_addr, dst_addr, src_port, dst_port, proto, " +
		"tcp_flags, fragment_offset, sampling_rate, bytes, packets, customer, subnet, direction, kafka_partition, kafka_offset" +
		c.where(from, to) + " ORDER BY time_received, kafka_partition, kafka_offset, kafka_index"
}

var quoter = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

// quote makes a ClickHouse string literal (customer ids come from flags).
func quote(v string) string { return "'" + quoter.Replace(v) + "'" }

// span is [from, to) of receive time, in seconds.
type span struct{ from, to int64 }

// plan cuts [from, to) into spans of about rowsPerQuery rows from the rows
// per receive hour, skipping hours without rows.
func plan(perHour map[int64]uint64, from, to int64, rowsPerQuery int) []span {
	var out []span
	for h := from - from%3600; h < to; h += 3600 {
		n := perHour[h]
		if n == 0 {
			continue
		}
		a, b := max(h, from), min(h+3600, to)
		k := max(1, min(int((n+uint64(rowsPerQuery)-1)/uint64(rowsPerQuery)), int(b-a)))
		for i := range k {
			out = append(out, span{a + (b-a)*int64(i)/int64(k), a + (b-a)*int64(i+1)/int64(k)})
		}
	}
	return out
}

// Scan implements Source: one counting query, then one sorted query per
// span, in order.
func (c *ClickHouse) Scan(ctx context.Context, from, to time.Time, fn func(int64, int32, []*pb.Flow) error) error {
	// DateTime is whole seconds: [from, to) holds the seconds from
	// ceil(from) to before ceil(to).
	a, b := from.Unix(), to.Unix()
	if from.Nanosecond() != 0 {
		a++
	}
	if to.Nanosecond() != 0 {
		b++
	}
	rows, err := c.Conn.Query(ctx, c.countQuery(a, b))
	if err != nil {
		return err
	}
	perHour := map[int64]uint64{}
	for rows.Next() {
		var h, n uint64
		if err := rows.Scan(&h, &n); err != nil {
			rows.Close()
			return err
		}
		perHour[int64(h)] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	per := c.RowsPerQuery
	if per <= 0 {
		per = DefaultRowsPerQuery
	}
	bt := &batcher{fn: fn}
	for _, sp := range plan(perHour, a, b, per) {
		if err := c.scan(ctx, sp, bt); err != nil {
			return fmt.Errorf("received %s..%s: %w", time.Unix(sp.from, 0).UTC().Format(time.RFC3339),
				time.Unix(sp.to, 0).UTC().Format(time.RFC3339), err)
		}
	}
	return bt.flush()
}

func (c *ClickHouse) scan(ctx context.Context, sp span, bt *batcher) error {
	rows, err := c.Conn.Query(ctx, c.query(sp.from, sp.to))
	if err != nil {
		return err
	}
	defer rows.Close()
	var r row
	for rows.Next() {
		if err := rows.Scan(&r.recv, &r.end, &r.src, &r.dst, &r.sport, &r.dport, &r.proto, &r.flags, &r.frag,
			&r.rate, &r.bytes, &r.packets, &r.customer, &r.subnet, &r.dir, &r.kp, &r.ko); err != nil {
			return err
		}
		if err := bt.add(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// batcher regroups rows into the Kafka messages they came in (consecutive
// rows at one partition and offset), reusing its flows.
type batcher struct {
	fn    func(int64, int32, []*pb.Flow) error
	flows []*pb.Flow
	n     int
	recv  int64
	kp    uint16
	ko    uint64
}

func (b *batcher) add(r *row) error {
	if b.n > 0 && (r.kp != b.kp || r.ko != b.ko || b.n == maxBatch) {
		if err := b.flush(); err != nil {
			return err
		}
	}
	if b.n == 0 {
		b.recv, b.kp, b.ko = int64(r.recv)*1e9, r.kp, r.ko
	}
	if b.n == len(b.flows) {
		b.flows = append(b.flows, &pb.Flow{})
	}
	r.flow(b.flows[b.n])
	b.n++
	return nil
}

func (b *batcher) flush() error {
	if b.n == 0 {
		return nil
	}
	err := b.fn(b.recv, int32(b.kp), b.flows[:b.n])
	b.n = 0
	return err
}

// flow fills f with what the engine reads of a flow (reusing f's address
// buffers). The table does not keep the IP flags (the MF bit of first
// fragments) nor packet length ranges (mitigations fall back to the
// average length); everything a baseline learns from is there.
func (r *row) flow(f *pb.Flow) {
	f.TimeReceivedNs, f.TimeFlowEndNs = uint64(r.recv)*1e9, uint64(r.end)*1e9
	f.SrcAddr, f.DstAddr = address(f.SrcAddr[:0], &r.src), address(f.DstAddr[:0], &r.dst)
	f.SrcPort, f.DstPort, f.Proto = uint32(r.sport), uint32(r.dport), uint32(r.proto)
	f.TcpFlags, f.FragmentOffset = uint32(r.flags), uint32(r.frag)
	// The collector multiplies counts by the sampling rate whenever it
	// knows one (collector/normalise), and the sink keeps the rate.
	f.SamplingRate, f.SamplingApplied = uint64(r.rate), r.rate > 0
	f.Bytes, f.Packets = r.bytes, r.packets
	f.Customer, f.Subnet, f.Direction = r.customer, r.subnet, pb.Direction(r.dir)
}

// address turns the table's 16-byte form back into what the collector
// produced: 4 bytes for IPv4 (sketches hash the two forms differently),
// nothing for all zeros (absent).
func address(dst []byte, a *[16]byte) []byte {
	if *a == [16]byte{} {
		return dst
	}
	if [12]byte(a[:12]) == [12]byte{10: 0xff, 11: 0xff} {
		return append(dst, a[12:]...)
	}
	return append(dst, a[:]...)
}
