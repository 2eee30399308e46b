package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// TopicProblems asks one broker directly whether this Kafka user can use
// each topic (topic -> the config key that names it, for the message).
// problems are the topics' own faults (missing, no ACL: fatal for a
// service); err is a failure to ask (broker unreachable, leader election:
// try again). Why not metadata through kafka-go's Transport: its cache lists
// only the topics the user may describe, so a topic without an ACL looks
// the same as a missing one.
func TopicProblems(ctx context.Context, d *kafka.Dialer, broker string, topics map[string]string) (problems []error, err error) {
	conn, err := d.DialContext(ctx, "tcp", broker)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	for t, key := range topics {
		_, err := conn.ReadPartitions(t)
		var ke kafka.Error
		switch {
		case err == nil:
		case errors.Is(err, kafka.TopicAuthorizationFailed):
			problems = append(problems, fmt.Errorf("%s: topic %q: this Kafka user is not authorized to use it (no ACL): %w", key, t, err))
		case errors.Is(err, kafka.UnknownTopicOrPartition):
			problems = append(problems, fmt.Errorf("%s: topic %q does not exist on %s", key, t, broker))
		case errors.As(err, &ke) && ke.Temporary():
			return nil, err // e.g. a leader being elected
		case errors.As(err, &ke):
			problems = append(problems, fmt.Errorf("%s: topic %q: %w", key, t, err))
		default:
			return nil, err
		}
	}
	return problems, nil
}
