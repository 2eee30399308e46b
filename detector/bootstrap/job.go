package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/detector/worker"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/segmentio/kafka-go"
)

// Job is one bootstrap: replay the last Days of history up to now (the
// cut), write the learned state to detector-state, and commit the flows
// offsets the topic had at the cut for the detector group.
//
// Afterwards the group looks as if a detector had read every flow up to
// the cut, checkpointed and stopped: workers restore the state when they
// are assigned a partition and read flows from the cut on. Nothing is
// learned twice (ClickHouse held what came before the cut, Kafka gives
// what comes after; the first window after a restore is not learned, which
// absorbs the flows near the cut) and nothing is skipped except flows the
// sink had not yet written at the cut, a few seconds at most.
type Job struct {
	Replay Replay // Partitions is set from the flows topic
	Kafka  kafkaclient.Config
	// Worker: the detectors' group and topics (flows for partitions and
	// offsets, state for the records).
	Worker worker.Config
	Days   int
	// Force replaces the learned state of partitions where the detector
	// already ran (committed offsets or state records); without it such a
	// bootstrap is refused.
	Force bool
	// DryRun reads and replays but writes nothing; what a real run would
	// refuse is logged as a warning.
	DryRun bool
	Now    func() time.Time // the cut; time.Now when nil
	Log    *slog.Logger
}

// MaxDays bounds --days: raw flows are kept 30 days by default; a year of
// replay is already far beyond what the seasonal slots need.
const MaxDays = 366

// Run runs the job reading history from src.
func (j Job) Run(ctx context.Context, src Source) (*Summary, error) {
	if j.Days < 1 || j.Days > MaxDays {
		return nil, fmt.Errorf("bootstrap: --days %d is not in 1..%d", j.Days, MaxDays)
	}
	if err := errors.Join(j.Kafka.Validate("kafka"), j.Worker.Validate("worker")); err != nil {
		return nil, err
	}
	log := j.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	j.Replay.Log = log
	sec, err := j.Kafka.Resolve("kafka")
	if err != nil {
		return nil, err
	}
	transport := sec.Transport(j.Kafka.ClientID)
	c := &cluster{client: &kafka.Client{Addr: kafka.TCP(j.Kafka.Brokers...), Transport: transport, Timeout: 30 * time.Second},
		transport: transport, brokers: j.Kafka.Brokers, group: j.Worker.Group, flows: j.Worker.Topics.Flows,
		state: j.Worker.Topics.State}

	// refuse fails a real run and only warns in a dry run.
	refuse := func(err error) error {
		if j.DryRun {
			log.Warn("a real run would refuse", "err", err)
			return nil
		}
		return err
	}
	n, err := c.partitions(ctx)
	if err != nil {
		return nil, err
	}
	if err := j.idle(ctx, c); err != nil {
		if err := refuse(err); err != nil {
			return nil, err
		}
	}
	live, err := c.live(ctx, n)
	if err != nil {
		return nil, err
	}
	if len(live) > 0 {
		if !j.Force {
			err := fmt.Errorf("bootstrap: detector state already exists (the detector has run); "+
				"--force replaces the state of the targets history has, and moves the group to the cut:%s", describeLive(live))
			if err := refuse(err); err != nil {
				return nil, err
			}
		} else {
			log.Warn("replacing existing detector state (--force)", "partitions", slices.Sorted(maps.Keys(live)))
		}
	}
	// The cut: the flows offsets, then the receive time history stops
	// at, taken right after. A flow produced in between, or delayed across
	// the cut, may land on both sides; the first window after a restore
	// is not learned, which absorbs it.
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	_, ends, err := c.offsets(ctx, c.flows, n)
	if err != nil {
		return nil, err
	}
	cut := now().Truncate(time.Second)
	from := cut.Add(-time.Duration(j.Days) * 24 * time.Hour)
	log.Info("bootstrap starting", "from", from.UTC(), "cut", cut.UTC(), "partitions", n, "group", c.group,
		"state_topic", c.state, "dry_run", j.DryRun)
	j.Replay.Partitions = n
	res, err := j.Replay.Run(ctx, src, from, cut)
	if err != nil {
		return nil, err
	}
	s := &res.Summary
	if s.Flows > 0 && cut.Sub(s.Last) > 5*time.Minute {
		log.Warn("history ends well before the cut: the sink is behind or stopped; flows received in between are "+
			"neither learned nor read by the workers", "last_flow_received", s.Last, "cut", cut.UTC())
	}
	if j.DryRun || len(res.Records) == 0 {
		return s, nil
	}
	// Workers may have started while history was read.
	if err := j.idle(ctx, c); err != nil {
		return s, err
	}
	if err := c.write(ctx, res.Records); err != nil {
		return s, err
	}
	s.Written = len(res.Records)
	// State first, then offsets, as a worker's checkpoint does. Failing
	// in between leaves state without the cut: run again with --force.
	s.Committed = map[int]int64{}
	for p := range s.PerPartition {
		s.Committed[int(p)] = ends[int(p)]
	}
	if err := c.commit(ctx, s.Committed); err != nil {
		return s, err
	}
	log.Info("bootstrap written", "records", s.Written, "offsets", s.Committed)
	return s, nil
}

// idle checks that no worker of the group is running.
func (j Job) idle(ctx context.Context, c *cluster) error {
	m, err := c.members(ctx)
	if err != nil {
		return err
	}
	if m > 0 {
		return fmt.Errorf("bootstrap: consumer group %s has %d active members: stop the detectors first "+
			"(a running worker neither restores new state nor keeps the offsets)", c.group, m)
	}
	return nil
}

// Print writes the summary for the operator.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "history      %s .. %s", s.From.UTC().Format(time.RFC3339), s.To.UTC().Format(time.RFC3339))
	if !s.First.IsZero() {
		fmt.Fprintf(w, " (flows received from %s to %s)", s.First.Format(time.RFC3339), s.Last.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "\nflows read   %d in %s (%.0f/s); dropped as late: %d", s.Flows, s.Elapsed.Round(time.Millisecond),
		float64(s.Flows)/max(s.Elapsed.Seconds(), 1e-3), s.Late)
	for _, r := range slices.Sorted(maps.Keys(s.Dropped)) {
		fmt.Fprintf(w, "; %s: %d", r, s.Dropped[r])
	}
	fmt.Fprintf(w, "\ntargets      %d learned, %d warm (alert at once)\n", s.Targets, s.Warm)
	fmt.Fprintf(w, "windows      per target: min %d, median %d, max %d\n", s.Windows[0], s.Windows[1], s.Windows[2])
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(s.PerPartition)) {
		parts = append(parts, fmt.Sprintf("%d:%d", p, s.PerPartition[p]))
	}
	fmt.Fprintf(w, "partitions   targets per partition %s\n", strings.Join(parts, " "))
	var evs []string
	for _, k := range slices.Sorted(maps.Keys(s.Events)) {
		evs = append(evs, fmt.Sprintf("%s %d", k, s.Events[k]))
	}
	fmt.Fprintf(w, "history anomalies (not published): %s; open at the cut (cleared): %d\n", orNone(strings.Join(evs, ", ")), s.OpenAtCut)
	if s.Committed == nil {
		fmt.Fprintln(w, "written      nothing")
		return
	}
	var offs []string
	for _, p := range slices.Sorted(maps.Keys(s.Committed)) {
		offs = append(offs, fmt.Sprintf("%d@%d", p, s.Committed[p]))
	}
	fmt.Fprintf(w, "written      %d checkpoint records; group offsets (partition@offset) %s\n", s.Written, strings.Join(offs, " "))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
