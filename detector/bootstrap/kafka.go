package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/detector/checkpoint"
	"github.com/segmentio/kafka-go"
)

// cluster is what a bootstrap needs of Kafka: the detector group's
// partitions, offsets and members, and the detector-state topic.
type cluster struct {
	client    *kafka.Client
	transport *kafka.Transport
	brokers   []string
	group     string
	flows     string
	state     string
}

// partitions returns the flows topic's partition count after checking
// that detector-state has as many (the worker's own rule).
func (c *cluster) partitions(ctx context.Context) (int, error) {
	md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{c.flows, c.state}})
	if err != nil {
		return 0, fmt.Errorf("bootstrap: kafka metadata: %w", err)
	}
	n := map[string]int{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return 0, fmt.Errorf("bootstrap: topic %s: %w", t.Name, t.Error)
		}
		n[t.Name] = len(t.Partitions)
	}
	if n[c.flows] == 0 || n[c.flows] != n[c.state] {
		return 0, fmt.Errorf("bootstrap: worker.topics: %s has %d partitions and %s %d; they must be equal and > 0",
			c.flows, n[c.flows], c.state, n[c.state])
	}
	return n[c.flows], nil
}

// members returns the detector group's active members: running workers
// would neither read the new state (they restore only on assignment) nor
// keep the offsets (their next checkpoint overwrites both).
func (c *cluster) members(ctx context.Context) (n int, err error) {
	err = coordinated(ctx, func() error { n, err = c.membersOnce(ctx); return err })
	return n, err
}

func (c *cluster) membersOnce(ctx context.Context) (int, error) {
	resp, err := c.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{c.group}})
	if err != nil {
		return 0, fmt.Errorf("bootstrap: describing group %s: %w", c.group, err)
	}
	for _, g := range resp.Groups {
		if g.Error != nil {
			return 0, fmt.Errorf("bootstrap: describing group %s: %w", c.group, g.Error)
		}
		if g.GroupID == c.group {
			return len(g.Members), nil
		}
	}
	return 0, nil
}

// offsets returns first and last offsets of every partition of topic.
func (c *cluster) offsets(ctx context.Context, topic string, n int) (first, last map[int]int64, err error) {
	req := make([]kafka.OffsetRequest, 0, 2*n)
	for p := range n {
		req = append(req, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap: offsets of %s: %w", topic, err)
	}
	first, last = map[int]int64{}, map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, nil, fmt.Errorf("bootstrap: offsets of %s[%d]: %w", topic, po.Partition, po.Error)
		}
		first[po.Partition], last[po.Partition] = po.FirstOffset, po.LastOffset
	}
	if len(last) != n {
		return nil, nil, fmt.Errorf("bootstrap: offsets of %s: %d of %d partitions answered", topic, len(last), n)
	}
	return first, last, nil
}

// live returns, per flows partition, why detector state already exists
// there: the group committed an offset (a detector read it) or the state
// partition holds records (a detector, or a bootstrap, wrote them).
func (c *cluster) live(ctx context.Context, n int) (out map[int]string, err error) {
	err = coordinated(ctx, func() error { out, err = c.liveOnce(ctx, n); return err })
	return out, err
}

func (c *cluster) liveOnce(ctx context.Context, n int) (map[int]string, error) {
	parts := make([]int, n)
	for p := range n {
		parts[p] = p
	}
	resp, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.group, Topics: map[string][]int{c.flows: parts}})
	if err != nil {
		return nil, fmt.Errorf("bootstrap: committed offsets of group %s: %w", c.group, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("bootstrap: committed offsets of group %s: %w", c.group, resp.Error)
	}
	out := map[int]string{}
	for _, po := range resp.Topics[c.flows] {
		if po.Error != nil {
			return nil, fmt.Errorf("bootstrap: committed offset of %s[%d]: %w", c.flows, po.Partition, po.Error)
		}
		if po.CommittedOffset >= 0 {
			out[po.Partition] = fmt.Sprintf("group %s committed offset %d", c.group, po.CommittedOffset)
		}
	}
	first, last, err := c.offsets(ctx, c.state, n)
	if err != nil {
		return nil, err
	}
	for p, l := range last {
		if l > first[p] {
			why := fmt.Sprintf("%s[%d] holds offsets %d..%d", c.state, p, first[p], l-1)
			if out[p] != "" {
				why = out[p] + ", " + why
			}
			out[p] = why
		}
	}
	return out, nil
}

// describeLive lists live partitions for an error message.
func describeLive(live map[int]string) string {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(live)) {
		fmt.Fprintf(&b, "\n  partition %d: %s", p, live[p])
	}
	return b.String()
}

// write sends the records to detector-state, each to its subnet's
// partition as a worker's checkpoint is.
func (c *cluster) write(ctx context.Context, recs []checkpoint.Record) error {
	w := &kafka.Writer{Addr: kafka.TCP(c.brokers...), Topic: c.state, Balancer: checkpoint.Balancer{}, Transport: c.transport,
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 1000, BatchBytes: 16 << 20, MaxAttempts: 5}
	defer w.Close()
	for len(recs) > 0 {
		n := min(len(recs), 1000)
		if err := w.WriteMessages(ctx, checkpoint.Messages(recs[:n])...); err != nil {
			return fmt.Errorf("bootstrap: writing %s: %w", c.state, err)
		}
		recs = recs[n:]
	}
	return nil
}

// commit sets the group's offsets as a consumer outside any generation
// does (generation -1): the broker accepts it only while the group has no
// members.
func (c *cluster) commit(ctx context.Context, offs map[int]int64) error {
	return coordinated(ctx, func() error { return c.commitOnce(ctx, offs) })
}

func (c *cluster) commitOnce(ctx context.Context, offs map[int]int64) error {
	var oc []kafka.OffsetCommit
	for _, p := range slices.Sorted(maps.Keys(offs)) {
		oc = append(oc, kafka.OffsetCommit{Partition: p, Offset: offs[p], Metadata: "flowsentry detector bootstrap"})
	}
	resp, err := c.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: c.group, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{c.flows: oc}})
	if err != nil {
		return fmt.Errorf("bootstrap: committing offsets of group %s: %w", c.group, err)
	}
	for _, pc := range resp.Topics[c.flows] {
		if pc.Error != nil {
			return fmt.Errorf("bootstrap: committing %s[%d] for group %s: %w", c.flows, pc.Partition, c.group, pc.Error)
		}
	}
	return nil
}

// coordinatorWait bounds how long group requests wait for a coordinator.
var coordinatorWait = 30 * time.Second

// coordinated runs a group request again while the group's coordinator is
// not ready: on a fresh cluster __consumer_offsets is created by the first
// group request, and the broker answers "not coordinator" or "coordinator
// not available" until it is loaded (seen in CI on a new broker).
func coordinated(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(coordinatorWait)
	backoff := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil || !coordinatorNotReady(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func coordinatorNotReady(err error) bool {
	return errors.Is(err, kafka.NotCoordinatorForGroup) || errors.Is(err, kafka.GroupCoordinatorNotAvailable) ||
		errors.Is(err, kafka.GroupLoadInProgress)
}
