package consume

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/dispatch"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/route"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// fakeReader serves queued messages and records commits.
type fakeReader struct {
	mu      sync.Mutex
	msgs    []kafka.Message
	commits []kafka.Message
}

func (f *fakeReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	for {
		f.mu.Lock()
		if len(f.msgs) > 0 {
			m := f.msgs[0]
			f.msgs = f.msgs[1:]
			f.mu.Unlock()
			return m, nil
		}
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (f *fakeReader) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits = append(f.commits, msgs...)
	return nil
}

func (f *fakeReader) Close() error { return nil }

func (f *fakeReader) committed(p int) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	off := int64(-1)
	for _, m := range f.commits {
		if m.Partition == p && m.Offset > off {
			off = m.Offset
		}
	}
	return off
}

type blockingNotifier struct{ release chan struct{} }

func (b *blockingNotifier) Kind() string { return "test" }
func (b *blockingNotifier) Notify(ctx context.Context, _ *notify.Message) error {
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestCommitsOnlySettledPrefix(t *testing.T) {
	tree, _ := route.Compile(route.Config{Receiver: "r", GroupWait: new(time.Duration)}, []string{"r"})
	n := &blockingNotifier{release: make(chan struct{})}
	e, err := dispatch.New(dispatch.Options{Config: dispatch.Config{Retention: time.Hour, Tick: 10 * time.Millisecond}, Tree: tree,
		Receivers: []*notify.Receiver{{Name: "r", Notifier: n, Retry: notify.DefaultRetry()}},
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.Run(ctx) }()
	val := func(id string, kind pb.AnomalyEvent_Kind, seq uint32) []byte {
		b, _ := proto.Marshal(&pb.AnomalyEvent{Id: id, Kind: kind, Seq: seq, Customer: "c", Severity: pb.Severity_SEVERITY_WARNING})
		return b
	}
	r := &fakeReader{msgs: []kafka.Message{
		{Partition: 0, Offset: 10, Value: []byte("not protobuf \xff\xff")},
		{Partition: 1, Offset: 5, Value: val("a", pb.AnomalyEvent_START, 0)},
		{Partition: 1, Offset: 6, Value: val("a", pb.AnomalyEvent_UPDATE, 1)},
	}}
	c := New(Config{CommitInterval: 20 * time.Millisecond}, r, e, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for r.committed(0) != 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.committed(0) != 10 {
		t.Fatal("undecodable message not committed (would block the partition)")
	}
	time.Sleep(100 * time.Millisecond)
	if r.committed(1) != -1 {
		t.Fatalf("offset %d committed before the notification was delivered", r.committed(1))
	}
	close(n.release)
	for r.committed(1) != 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.committed(1) != 6 {
		t.Fatalf("committed %d after delivery, want 6", r.committed(1))
	}
	cancel()
	<-done
}
