// Package topicadmin creates and deletes the pipeline's Kafka topics
// (schemas/topics) on a broker: the schema tool for a deployment, and the
// demo and benchmark harnesses for the topics of one run (a name prefix).
package topicadmin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
)

// Configs returns every pipeline topic with its partition count, retention
// and cleanup policy, named prefix+name.
func Configs(prefix string, replication int) []kafka.TopicConfig {
	var cfgs []kafka.TopicConfig
	for _, t := range topics.All() {
		entries := []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(t.RetentionMs, 10)}}
		if t.Compacted {
			entries = append(entries, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"})
		}
		cfgs = append(cfgs, kafka.TopicConfig{Topic: prefix + t.Name, NumPartitions: t.Partitions,
			ReplicationFactor: replication, ConfigEntries: entries})
	}
	return cfgs
}

// Names returns the topic names of cfgs.
func Names(cfgs []kafka.TopicConfig) []string {
	names := make([]string, len(cfgs))
	for i, c := range cfgs {
		names[i] = c.Topic
	}
	return names
}

// Create creates the topics (existing ones are left as they are) and waits
// until every partition has a leader that answers: a service started on a
// partition without one fails (the detector exits on "not leader" during
// its state restore). A broker that is still electing its controller
// refuses for a while, so refusals are retried until ctx ends. created
// reports each topic this call created.
func Create(ctx context.Context, client *kafka.Client, cfgs []kafka.TopicConfig, created func(topic string)) error {
	var last error
	for {
		resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
		if err == nil {
			var errs []error
			for name, e := range resp.Errors {
				switch {
				case e == nil:
					if created != nil {
						created(name)
					}
				case !errors.Is(e, kafka.TopicAlreadyExists):
					errs = append(errs, fmt.Errorf("create topic %s: %w", name, e))
				}
			}
			if err = errors.Join(errs...); err == nil {
				return waitLeaders(ctx, client, cfgs)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("creating topics: %w", last)
		case <-time.After(time.Second):
		}
	}
}

func waitLeaders(ctx context.Context, client *kafka.Client, cfgs []kafka.TopicConfig) error {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, c := range cfgs {
		for p := range c.NumPartitions {
			req.Topics[c.Topic] = append(req.Topics[c.Topic], kafka.LastOffsetOf(p))
		}
	}
	for {
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
			if err = errors.Join(errs...); err == nil && len(resp.Topics) < len(cfgs) {
				err = fmt.Errorf("%d of %d topics answered", len(resp.Topics), len(cfgs))
			}
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics have no leaders yet: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Delete deletes the named topics; topics already gone are not an error.
func Delete(ctx context.Context, client *kafka.Client, names []string) error {
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
