package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
)

// The demo runs on its own topics (the production names behind a per-run
// prefix): the shared broker's "flows" may carry other people's tests, and
// a fresh detector-state topic means no checkpoint of an earlier run is
// restored into this one.

func demoTopics(prefix string) []kafka.TopicConfig {
	var cfgs []kafka.TopicConfig
	for _, t := range topics.All() {
		entries := []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(t.RetentionMs, 10)}}
		if t.Compacted {
			entries = append(entries, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"})
		}
		cfgs = append(cfgs, kafka.TopicConfig{Topic: prefix + t.Name, NumPartitions: t.Partitions,
			ReplicationFactor: 1, ConfigEntries: entries})
	}
	return cfgs
}

// runTopics is "demo topics -create|-delete -prefix P".
func runTopics(args []string) error {
	fs := flag.NewFlagSet("topics", flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers")
	prefix := fs.String("prefix", "", "topic name prefix, e.g. demo-1a2b-")
	del := fs.Bool("delete", false, "delete the prefixed topics")
	_ = fs.Bool("create", false, "create the prefixed topics (the default)")
	_ = fs.Parse(args)
	if !strings.HasPrefix(*prefix, "demo-") {
		return fmt.Errorf("-prefix: %q must start with demo- (this command never touches other topics)", *prefix)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(strings.Split(*brokers, ",")...), Timeout: 30 * time.Second}
	cfgs := demoTopics(*prefix)
	var names []string
	for _, c := range cfgs {
		names = append(names, c.Topic)
	}
	if *del {
		resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: names})
		if err != nil {
			return fmt.Errorf("delete topics: %w", err)
		}
		var errs []error
		for name, e := range resp.Errors {
			if e != nil && !errors.Is(e, kafka.UnknownTopicOrPartition) {
				errs = append(errs, fmt.Errorf("delete topic %s: %w", name, e))
			}
		}
		return errors.Join(errs...)
	}
	var last error
	for range 30 {
		resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
		if err == nil {
			var errs []error
			for name, e := range resp.Errors {
				if e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
					errs = append(errs, fmt.Errorf("create topic %s: %w", name, e))
				}
			}
			if err = errors.Join(errs...); err == nil {
				if err = waitLeaders(ctx, client, cfgs); err != nil {
					return err
				}
				fmt.Println("topics:", strings.Join(names, " "))
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return last
		case <-time.After(time.Second):
		}
	}
	return last
}

// waitLeaders waits until every partition of the new topics has a leader
// that answers offset requests: a service started on a topic whose
// partitions are still being assigned gets "Not Leader For Partition" (the
// detector exits on it during its state restore).
func waitLeaders(ctx context.Context, client *kafka.Client, cfgs []kafka.TopicConfig) error {
	var last error
	for {
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
		for _, c := range cfgs {
			for p := range c.NumPartitions {
				req.Topics[c.Topic] = append(req.Topics[c.Topic], kafka.LastOffsetOf(p))
			}
		}
		resp, err := client.ListOffsets(ctx, req)
		if err == nil {
			var errs []error
			for t, ps := range resp.Topics {
				for _, p := range ps {
					if p.Error != nil {
						errs = append(errs, fmt.Errorf("%s[%d]: %w", t, p.Partition, p.Error))
					}
				}
			}
			if err = errors.Join(errs...); err == nil && len(resp.Topics) == len(cfgs) {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics have no leaders yet: %w", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
