package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// A rollup table is fed by a materialized view on each INSERT into flows.
// ClickHouse writes the flows part first and the views' parts after it, each
// committed on its own: a server killed in between keeps the flows rows
// without their rollup rows. The replay check then rightly skips those flows,
// so the rollups would stay short for good. RepairRollups closes that gap: it
// compares each rollup cell with what its source holds and inserts the
// difference. SummingMergeTree adds the difference row to the cell, per
// second (minute) too, so the busiest second stays exact.

// rollup says how one rollup table derives from its source: flows_1m from
// flows, flows_1h from flows_1m (which RepairRollups has made whole first; an
// hour of flows_1m is 60 rows per key, an hour of raw flows can be millions).
type rollup struct {
	table  string // flows_1m
	cell   string // its time column: minute
	floor  string // toStartOfMinute
	span   int    // seconds of one cell
	nested string // secondsMap
	unit   string // the nested key column: second
	// source selects (cell, customer, subnet, direction, proto, unit, b, p,
	// f) from the source at the unit's grain; {lo}, {hi} and {keys} are
	// filled in.
	source string
}

var rollups = []rollup{
	{table: "flows_1m", cell: "minute", floor: "toStartOfMinute", span: 60, nested: "secondsMap", unit: "second",
		source: `SELECT toStartOfMinute(time_received) AS cell, customer, subnet, direction, proto, toSecond(time_received) AS unit,
      toInt64(bytes) AS b, toInt64(packets) AS p, toInt64(1) AS f
    FROM {db}.flows WHERE time_received >= {lo} AND time_received < {hi}{keys}`},
	{table: "flows_1h", cell: "hour", floor: "toStartOfHour", span: 3600, nested: "minutesMap", unit: "minute",
		source: `SELECT toStartOfHour(minute) AS cell, customer, subnet, direction, proto, toMinute(minute) AS unit,
      toInt64(bytes) AS b, toInt64(packets) AS p, toInt64(flows) AS f
    FROM {db}.flows_1m WHERE minute >= {lo} AND minute < {hi}{keys}`},
}

// flowsUnit is the unit value no second or minute has: the rollup's flow
// count sits there (it is kept per cell, not per unit).
const flowsUnit = 255

// RollupDiffSQL is the query that lists, for the cells of table between the
// cells holding tmin and tmax and for keys (nil: all), source minus rollup:
// bytes, packets, flows, and the units (seconds or minutes) whose bytes or
// packets differ, with their differences. An empty answer means the rollup
// is whole. Portable to 18.16 and current releases (tested on both).
func RollupDiffSQL(db, table string, tmin, tmax time.Time, keys []Key) (string, error) {
	var r *rollup
	for i := range rollups {
		if rollups[i].table == table {
			r = &rollups[i]
		}
	}
	if r == nil {
		return "", fmt.Errorf("no rollup table %q", table)
	}
	// Cell bounds are computed by the server: its time zone decides where an
	// hour starts (a +05:30 server's hours start at :30 UTC).
	lo := fmt.Sprintf("%s(toDateTime(%d))", r.floor, tmin.Unix())
	hi := fmt.Sprintf("%s(toDateTime(%d)) + %d", r.floor, tmax.Unix(), r.span)
	fill := strings.NewReplacer("{db}", db, "{lo}", lo, "{hi}", hi, "{keys}", keyFilter(keys))
	target := fmt.Sprintf(`SELECT %[2]s AS cell, customer, subnet, direction, proto, %[3]s.%[4]s AS unit,
      -toInt64(%[3]s.bytes) AS b, -toInt64(%[3]s.packets) AS p, toInt64(0) AS f
    FROM {db}.%[1]s ARRAY JOIN %[3]s WHERE %[2]s >= {lo} AND %[2]s < {hi}{keys}
    UNION ALL
    SELECT %[2]s AS cell, customer, subnet, direction, proto, toUInt8(%[5]d) AS unit,
      toInt64(0) AS b, toInt64(0) AS p, -toInt64(flows) AS f
    FROM {db}.%[1]s WHERE %[2]s >= {lo} AND %[2]s < {hi}{keys}`, r.table, r.cell, r.nested, r.unit, flowsUnit)
	// UNION ALL branches have the same column types on purpose: 18.16 does
	// not unify them. The units are sorted so that the answer is the same
	// on every server and run (groupArray's order is not).
	q := `SELECT cell, customer, subnet, direction, proto,
  sum(d_bytes) AS bytes, sum(d_packets) AS packets, sum(d_flows) AS flows,
  arrayMap(x -> tupleElement(x, 1), arraySort(groupArrayIf((unit, d_bytes, d_packets), d_bytes != 0 OR d_packets != 0))) AS units,
  arrayMap(x -> tupleElement(x, 2), arraySort(groupArrayIf((unit, d_bytes, d_packets), d_bytes != 0 OR d_packets != 0))) AS unit_bytes,
  arrayMap(x -> tupleElement(x, 3), arraySort(groupArrayIf((unit, d_bytes, d_packets), d_bytes != 0 OR d_packets != 0))) AS unit_packets
FROM (
  SELECT cell, customer, subnet, direction, proto, unit, sum(b) AS d_bytes, sum(p) AS d_packets, sum(f) AS d_flows
  FROM (
    ` + r.source + `
    UNION ALL
    ` + target + `
  )
  GROUP BY cell, customer, subnet, direction, proto, unit
)
GROUP BY cell, customer, subnet, direction, proto
HAVING bytes != 0 OR packets != 0 OR flows != 0 OR length(units) > 0
ORDER BY cell, customer, subnet, direction, proto`
	return fill.Replace(q), nil
}

// CellDiff is one rollup cell that differs from its source: source minus
// rollup.
type CellDiff struct {
	Cell                   time.Time
	Customer, Subnet       string
	Direction              string
	Proto                  uint8
	Bytes, Packets, Flows  int64
	Units                  []uint8
	UnitBytes, UnitPackets []int64
}

type overKey struct {
	cell                        int64
	customer, subnet, direction string
	proto                       uint8
}

func (c CellDiff) key(cell time.Time) overKey {
	return overKey{cell.Unix(), c.Customer, c.Subnet, c.Direction, c.Proto}
}

// over reports a cell the rollup holds more of than its source: adding rows
// cannot fix it (someone inserted into the rollup by hand, or the source
// lost rows); it is reported, never "repaired" by guessing.
func (c CellDiff) over() bool {
	if c.Bytes < 0 || c.Packets < 0 || c.Flows < 0 {
		return true
	}
	for i := range c.UnitBytes {
		if c.UnitBytes[i] < 0 || c.UnitPackets[i] < 0 {
			return true
		}
	}
	return false
}

// RepairReport is what RepairRollups did to one table.
type RepairReport struct {
	Table    string
	Repaired int        // cells that were short and got their difference row
	Over     []CellDiff // cells holding more than the source: left alone
}

// RepairRollups makes flows_1m and then flows_1h equal to what flows holds,
// for the cells (minutes, hours) between tmin and tmax of the given keys:
// the cells of rows the replay check found already written, whose INSERT may
// have been cut between the flows part and the views' parts. Cells that
// match are left alone, so it is safe to run again after any failure.
//
// It assumes nothing else writes these keys' rows meanwhile (the caller owns
// their Kafka partition): an insert running elsewhere could show its flows
// part before its rollup parts and be counted twice.
func (s *Store) RepairRollups(ctx context.Context, tmin, tmax time.Time, keys []Key) ([]RepairReport, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var out []RepairReport
	// A flows_1m cell left alone (over) must not be copied into flows_1h:
	// the hours holding one are reported, not repaired.
	overHours := map[overKey]bool{}
	for _, r := range rollups {
		rep := RepairReport{Table: r.table}
		for lo := 0; lo < len(keys); lo += maxHeldKeys {
			chunk := keys[lo:min(lo+maxHeldKeys, len(keys))]
			diffs, err := s.rollupDiff(ctx, r.table, tmin, tmax, chunk)
			if err != nil {
				return out, fmt.Errorf("compare %s with its source: %w", r.table, err)
			}
			var add []CellDiff
			for _, d := range diffs {
				if d.over() || (r.table == "flows_1h" && overHours[d.key(d.Cell)]) {
					rep.Over = append(rep.Over, d)
					continue
				}
				add = append(add, d)
			}
			if err := s.insertCellDiffs(ctx, r, add); err != nil {
				return out, fmt.Errorf("repair %s: %w", r.table, err)
			}
			rep.Repaired += len(add)
		}
		if r.table == "flows_1m" {
			for _, d := range rep.Over {
				// The hour in the server's time zone (the driver hands
				// DateTime back in it): minutes and seconds off.
				h := d.Cell.Add(-time.Duration(d.Cell.Minute())*time.Minute - time.Duration(d.Cell.Second())*time.Second)
				overHours[d.key(h)] = true
			}
		}
		out = append(out, rep)
	}
	return out, nil
}

func (s *Store) rollupDiff(ctx context.Context, table string, tmin, tmax time.Time, keys []Key) ([]CellDiff, error) {
	q, err := RollupDiffSQL(s.db, table, tmin, tmax, keys)
	if err != nil {
		return nil, err
	}
	res, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var out []CellDiff
	for res.Next() {
		var d CellDiff
		if err := res.Scan(&d.Cell, &d.Customer, &d.Subnet, &d.Direction, &d.Proto, &d.Bytes, &d.Packets, &d.Flows,
			&d.Units, &d.UnitBytes, &d.UnitPackets); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, res.Err()
}

// insertCellDiffs writes one difference row per cell, column by column.
func (s *Store) insertCellDiffs(ctx context.Context, r rollup, ds []CellDiff) error {
	if len(ds) == 0 {
		return nil
	}
	n := len(ds)
	cell := make([]time.Time, n)
	cust, sub, dir := make([]string, n), make([]string, n), make([]string, n)
	proto := make([]uint8, n)
	bytes, packets, flows := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	units := make([][]uint8, n)
	ubytes, upackets := make([][]uint64, n), make([][]uint64, n)
	for i, d := range ds {
		cell[i], cust[i], sub[i], dir[i], proto[i] = d.Cell, d.Customer, d.Subnet, d.Direction, d.Proto
		bytes[i], packets[i], flows[i] = uint64(d.Bytes), uint64(d.Packets), uint64(d.Flows)
		units[i] = d.Units
		ubytes[i], upackets[i] = make([]uint64, len(d.UnitBytes)), make([]uint64, len(d.UnitPackets))
		for j := range d.UnitBytes {
			ubytes[i][j], upackets[i][j] = uint64(d.UnitBytes[j]), uint64(d.UnitPackets[j])
		}
	}
	cols := fmt.Sprintf("%[1]s, customer, subnet, direction, proto, bytes, packets, flows, `%[2]s.%[3]s`, `%[2]s.bytes`, `%[2]s.packets`",
		r.cell, r.nested, r.unit)
	return s.insertColumns(ctx, r.table, cols, []any{cell, cust, sub, dir, proto, bytes, packets, flows, units, ubytes, upackets})
}
