// Package migrations holds Flowsentry's ClickHouse DDL as ordered migrations
// (NNNN_name.sql, embedded in the binary) and applies them, recording each
// applied migration in flowsentry.schema_migrations.
//
// Every statement is idempotent (IF NOT EXISTS, ...) so that a run that died
// half-way can simply be run again. An applied migration must never be edited:
// its checksum is recorded, and a mismatch stops the runner.
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Database is the ClickHouse database every migration writes into.
const Database = "flowsentry"

//go:embed *.sql
var files embed.FS

// Migration is one SQL file.
type Migration struct {
	Version    int
	Name       string
	SQL        string
	Statements []string
	Checksum   string
}

var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// All returns the embedded migrations in order.
func All() ([]Migration, error) { return load(files) }

func load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			if strings.HasSuffix(e.Name(), ".sql") {
				return nil, fmt.Errorf("migration %q: name must be NNNN_name.sql", e.Name())
			}
			continue
		}
		v, _ := strconv.Atoi(m[1])
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %q and %q share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		stmts := Split(string(body))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migration %q has no statement", e.Name())
		}
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(body),
			Statements: stmts, Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Split cuts a migration file into statements: "--" comment lines are
// dropped and a statement ends with a line ending in ";". The Python
// portability check (chdb) applies the same rule.
func Split(sql string) []string {
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			s := strings.TrimSpace(cur.String())
			stmts = append(stmts, strings.TrimSpace(strings.TrimSuffix(s, ";")))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// Applied is one row of flowsentry.schema_migrations.
type Applied struct {
	Version  int
	Name     string
	Checksum string
}

// Run applies every migration not yet recorded, in order, and returns the
// versions it applied.
func Run(ctx context.Context, conn driver.Conn, log *slog.Logger) ([]int, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	return run(ctx, conn, all, log)
}

func run(ctx context.Context, conn driver.Conn, all []Migration, log *slog.Logger) ([]int, error) {
	if log == nil {
		log = slog.Default()
	}
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + Database,
		`CREATE TABLE IF NOT EXISTS ` + Database + `.schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime
)
ENGINE = MergeTree()
ORDER BY version`,
	} {
		if err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("preparing migration bookkeeping: %w", err)
		}
	}
	done, err := AppliedMigrations(ctx, conn)
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range all {
		if prev, ok := done[m.Version]; ok {
			if prev.Checksum != m.Checksum {
				return applied, fmt.Errorf("migration %04d_%s was edited after it was applied (checksum %s, recorded %s): add a new migration instead",
					m.Version, m.Name, m.Checksum[:12], prev.Checksum[:min(12, len(prev.Checksum))])
			}
			continue
		}
		start := time.Now()
		for i, s := range m.Statements {
			if err := conn.Exec(ctx, s); err != nil {
				return applied, fmt.Errorf("migration %04d_%s, statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := record(ctx, conn, m); err != nil {
			return applied, fmt.Errorf("recording migration %04d_%s: %w", m.Version, m.Name, err)
		}
		log.Info("migration applied", "version", m.Version, "name", m.Name,
			"statements", len(m.Statements), "duration", time.Since(start))
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// record inserts the bookkeeping row with a batch: on ClickHouse 18.16 an
// "INSERT ... VALUES (...)" sent through Exec never completes (the server
// waits for data blocks; clickhouse-go v2.51 sends none).
func record(ctx context.Context, conn driver.Conn, m Migration) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+Database+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(uint32(m.Version), m.Name, m.Checksum, time.Now().UTC().Truncate(time.Second)); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

// AppliedMigrations reads the bookkeeping table.
func AppliedMigrations(ctx context.Context, conn driver.Conn) (map[int]Applied, error) {
	rows, err := conn.Query(ctx, "SELECT version, name, checksum FROM "+Database+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("reading schema_migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]Applied{}
	for rows.Next() {
		var v uint32
		var a Applied
		if err := rows.Scan(&v, &a.Name, &a.Checksum); err != nil {
			return nil, err
		}
		a.Version = int(v)
		out[a.Version] = a
	}
	return out, rows.Err()
}
