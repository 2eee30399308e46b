// Package retention enforces how long each Flowsentry table keeps data by
// dropping whole partitions (ALTER TABLE ... DROP PARTITION) once every day
// they cover is older than the table's retention. ClickHouse 18.16 has no
// TTL clause, and a partition drop is cheap and exact where a DELETE
// mutation would rewrite parts.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config is the YAML "retention" section.
type Config struct {
	Enabled  bool          `yaml:"enabled"`
	Interval time.Duration `yaml:"interval"`
	// KeepDays is, per table, how many whole days before today are kept.
	KeepDays map[string]int `yaml:"keep_days"`
}

// DefaultConfig: raw flows 30 days, minute rollups 180 days, hourly
// rollups, alerts and baselines two years.
func DefaultConfig() Config {
	return Config{Enabled: true, Interval: time.Hour, KeepDays: map[string]int{
		"flows": 30, "flows_1m": 180, "flows_1h": 730, "alerts": 730, "baselines": 730}}
}

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Validate names the bad key under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Enabled && c.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("%s.interval: %v is below 1m", prefix, c.Interval))
	}
	for t, d := range c.KeepDays {
		if !tableName.MatchString(t) {
			errs = append(errs, fmt.Errorf("%s.keep_days.%s: not a table name", prefix, t))
		}
		if d < 1 {
			errs = append(errs, fmt.Errorf("%s.keep_days.%s: %d must be at least 1", prefix, t, d))
		}
	}
	return errors.Join(errs...)
}

// Expired reports whether the partition with the given id (toYYYYMMDD
// "20260131" or toYYYYMM "202601") lies entirely before the cutoff: the
// start of the day keepDays days before now's day (UTC). A partition that
// still holds one day inside the retention is kept whole.
func Expired(id string, keepDays int, now time.Time) (bool, error) {
	var end time.Time
	switch len(id) {
	case 8:
		t, err := time.Parse("20060102", id)
		if err != nil {
			return false, fmt.Errorf("partition %q: %w", id, err)
		}
		end = t.AddDate(0, 0, 1)
	case 6:
		t, err := time.Parse("200601", id)
		if err != nil {
			return false, fmt.Errorf("partition %q: %w", id, err)
		}
		end = t.AddDate(0, 1, 0)
	default:
		return false, fmt.Errorf("partition %q is neither a day (YYYYMMDD) nor a month (YYYYMM)", id)
	}
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	cutoff := today.AddDate(0, 0, -keepDays)
	return !end.After(cutoff), nil
}

// Dropped is one partition the job dropped.
type Dropped struct {
	Table     string
	Partition string
	Rows      uint64
	Bytes     uint64
}

// Job drops expired partitions of the configured tables in one database.
type Job struct {
	Conn driver.Conn
	DB   string
	Cfg  Config
	Log  *slog.Logger
	// OnDrop and OnError feed the sink's metrics; both may be nil.
	OnDrop  func(Dropped)
	OnError func(table string, err error)
}

// RunOnce checks every table once; now is injectable for tests.
func (j *Job) RunOnce(ctx context.Context, now time.Time) ([]Dropped, error) {
	tables := make([]string, 0, len(j.Cfg.KeepDays))
	for t := range j.Cfg.KeepDays {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	var dropped []Dropped
	var errs []error
	for _, t := range tables {
		d, err := j.table(ctx, t, j.Cfg.KeepDays[t], now)
		dropped = append(dropped, d...)
		if err != nil {
			errs = append(errs, fmt.Errorf("retention of %s.%s: %w", j.DB, t, err))
			if j.OnError != nil {
				j.OnError(t, err)
			}
		}
	}
	return dropped, errors.Join(errs...)
}

func (j *Job) table(ctx context.Context, table string, keepDays int, now time.Time) ([]Dropped, error) {
	res, err := j.Conn.Query(ctx, "SELECT partition_id, sum(rows), sum(bytes_on_disk) FROM system.parts "+
		"WHERE database = ? AND table = ? AND active GROUP BY partition_id ORDER BY partition_id", j.DB, table)
	if err != nil {
		return nil, err
	}
	var parts []Dropped
	for res.Next() {
		var p Dropped
		if err := res.Scan(&p.Partition, &p.Rows, &p.Bytes); err != nil {
			res.Close()
			return nil, err
		}
		p.Table = table
		parts = append(parts, p)
	}
	res.Close()
	if err := res.Err(); err != nil {
		return nil, err
	}
	var dropped []Dropped
	var errs []error
	for _, p := range parts {
		expired, err := Expired(p.Partition, keepDays, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !expired {
			continue
		}
		// The id was read from system.parts and matched Expired's digits-only
		// format, so it is safe to put in the statement.
		if err := j.Conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION ID '%s'", j.DB, table, p.Partition)); err != nil {
			errs = append(errs, fmt.Errorf("drop partition %s: %w", p.Partition, err))
			continue
		}
		j.logger().Info("retention dropped partition", "database", j.DB, "table", table,
			"partition", p.Partition, "rows", p.Rows, "bytes", p.Bytes, "keep_days", keepDays)
		if j.OnDrop != nil {
			j.OnDrop(p)
		}
		dropped = append(dropped, p)
	}
	return dropped, errors.Join(errs...)
}

// Run calls RunOnce at start and then every Cfg.Interval until ctx ends.
func (j *Job) Run(ctx context.Context) {
	if !j.Cfg.Enabled {
		return
	}
	t := time.NewTicker(j.Cfg.Interval)
	defer t.Stop()
	for {
		if _, err := j.RunOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			j.logger().Error("retention run failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (j *Job) logger() *slog.Logger {
	if j.Log == nil {
		return slog.Default()
	}
	return j.Log
}
