// Package sinktest gives the sink's integration tests a throw-away copy of
// the Flowsentry schema on the real ClickHouse server: every migration
// applied to a database of its own, dropped when the test ends. Tests then
// own their Kafka partitions and offsets (the replay check looks at
// kafka_partition/kafka_offset) and their rollups, even when they run in
// parallel with other tests or with a sink writing flowsentry.
package sinktest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/migrations"
)

// Rewrite points a statement written for database flowsentry at db.
func Rewrite(sql, db string) string {
	return strings.ReplaceAll(sql, migrations.Database+".", db+".")
}

// Database creates a database with every migration applied and returns an
// admin connection and the database name.
func Database(t testing.TB) (driver.Conn, string) {
	t.Helper()
	conn := itest.ClickHouse(t)
	db := "fstest_" + itest.RandomID()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("create database %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Logf("drop database %s: %v", db, err)
		}
	})
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		for i, s := range m.Statements {
			if err := conn.Exec(ctx, Rewrite(s, db)); err != nil {
				t.Fatalf("migration %04d_%s statement %d on %s: %v", m.Version, m.Name, i+1, db, err)
			}
		}
	}
	return conn, db
}

// Count runs a query returning one UInt64 (count(), sum(...)).
func Count(t testing.TB, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
