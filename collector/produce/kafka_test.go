package produce

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

func TestPartitionBalancer(t *testing.T) {
	b := partitionBalancer{}
	if p := b.Balance(kafka.Message{Key: []byte("x"), WriterData: 5}, 0, 1, 2, 3, 4, 5, 6, 7); p != 5 {
		t.Errorf("partition %d, want the batch's 5", p)
	}
	// A partition that no longer exists falls back to murmur2 of the key.
	m := kafka.Message{Key: []byte("203.0.113.0/24"), WriterData: 9}
	if p, want := b.Balance(m, 0, 1, 2, 3), (kafka.Murmur2Balancer{}).Balance(m, 0, 1, 2, 3); p != want {
		t.Errorf("fallback partition %d, want %d", p, want)
	}
}

// The real kafka-go writer against an address where no broker listens:
// the backlog fills to its bound, the rest is dropped and counted, the
// producer reports unhealthy, and Flow never blocks.
func TestKafkaDownBuffersAndDrops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	kc := kafkaclient.Default()
	kc.Brokers = []string{addr}
	w, err := NewKafkaWriter(kc, KafkaConfig{Topic: "flows", Compression: "lz4", BatchBytes: 4096, WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(nil)
	p := New(Config{BatchBytes: 4096, BufferBytes: 64 << 10, Linger: time.Hour, RetryBackoff: 20 * time.Millisecond}, w, m, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, 100*time.Millisecond); close(done) }()
	b := p.NewBatcher()
	start := time.Now()
	const n = 20000
	for i := 0; i < n; i++ {
		b.Flow(flowFor(i))
	}
	b.FlushAll()
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Flow blocked: %v for %d flows", el, n)
	}
	waitFor(t, "unhealthy", func() bool { return p.Healthy() != nil })
	bytes, flows := p.Backlog()
	dropped := testutil.ToFloat64(m.droppedQueue)
	if bytes == 0 || bytes > 64<<10+8192 || dropped == 0 {
		t.Fatalf("backlog %d bytes, %d dropped", bytes, int(dropped))
	}
	if int(dropped)+int(flows) != n {
		t.Errorf("dropped %v + backlog %d != %d flows", dropped, flows, n)
	}
	if _, err := w.Partitions(context.Background()); err == nil {
		t.Error("metadata from a broker that is not there")
	}
	cancel()
	<-done
	// At shutdown what could not be delivered is counted too.
	if total := testutil.ToFloat64(m.droppedQueue) + testutil.ToFloat64(m.droppedKafka); int(total) != n {
		t.Errorf("after shutdown %v flows counted as dropped, want %d", total, n)
	}
}
