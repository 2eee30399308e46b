package checkpoint

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/listoffsets"
)

// flakyLeader answers ListOffsets with a partition-level error code for
// the first `failures` calls, then with offsets 5..42.
type flakyLeader struct {
	failures int
	code     kafka.Error
	calls    int
}

func (f *flakyLeader) RoundTrip(_ context.Context, _ net.Addr, req protocol.Message) (protocol.Message, error) {
	f.calls++
	r := req.(*listoffsets.Request)
	var parts []listoffsets.ResponsePartition
	for _, p := range r.Topics[0].Partitions {
		rp := listoffsets.ResponsePartition{Partition: p.Partition, Timestamp: p.Timestamp}
		switch {
		case f.calls <= f.failures:
			rp.ErrorCode = int16(f.code)
		case p.Timestamp == kafka.FirstOffset:
			rp.Offset = 5
		default:
			rp.Offset = 42
		}
		parts = append(parts, rp)
	}
	return &listoffsets.Response{Topics: []listoffsets.ResponseTopic{{Topic: r.Topics[0].Topic, Partitions: parts}}}, nil
}

func TestOffsetsRetriesTemporaryErrors(t *testing.T) {
	saved := offsetRetry
	offsetRetry.first, offsetRetry.max = time.Millisecond, 2*time.Millisecond
	t.Cleanup(func() { offsetRetry = saved })
	for _, tc := range []struct {
		name      string
		failures  int
		code      kafka.Error
		wantErr   error
		wantCalls int
	}{
		{"leader not ready yet", 2, kafka.NotLeaderForPartition, nil, 3},
		{"permanent error is not retried", 1, kafka.TopicAuthorizationFailed, kafka.TopicAuthorizationFailed, 1},
		{"gives up after a bound", 1000, kafka.NotLeaderForPartition, kafka.NotLeaderForPartition, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &flakyLeader{failures: tc.failures, code: tc.code}
			client := &kafka.Client{Addr: kafka.TCP("127.0.0.1:1"), Transport: rt}
			first, last, err := offsets(context.Background(), client, "detector-state", 3)
			if !errors.Is(err, tc.wantErr) && !(tc.wantErr == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if rt.calls != tc.wantCalls {
				t.Fatalf("calls = %d, want %d", rt.calls, tc.wantCalls)
			}
			if tc.wantErr == nil && (first != 5 || last != 42) {
				t.Fatalf("offsets = %d..%d, want 5..42", first, last)
			}
		})
	}
}
