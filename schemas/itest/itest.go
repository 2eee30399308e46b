// Package itest gives integration tests (build tag "integration") the real
// Kafka broker and ClickHouse server that `make services-up` started.
// Outside CI a missing service skips the test; with CI=true it fails it, so
// that CI can never pass by skipping.
package itest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
)

// KafkaBrokers returns the broker list (FLOWSENTRY_KAFKA, default
// 127.0.0.1:9092) after checking that it answers.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	addr := env("FLOWSENTRY_KAFKA", "127.0.0.1:9092")
	brokers := strings.Split(addr, ",")
	conn, err := kafka.DialContext(context.Background(), "tcp", brokers[0])
	if err != nil {
		unavailable(t, "kafka", addr, err)
	}
	defer conn.Close()
	if _, err := conn.Brokers(); err != nil {
		unavailable(t, "kafka", addr, err)
	}
	return brokers
}

// Topic creates a topic with a unique name for this test and deletes it when
// the test ends, so that tests running in parallel never share a topic.
func Topic(t testing.TB, brokers []string, prefix string, partitions int) string {
	t.Helper()
	name := prefix + "-" + RandomID()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 20 * time.Second}
	resp, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: name, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	if err := resp.Errors[name]; err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{name}})
	})
	// Wait until every partition has a leader.
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{name}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				if p.Leader.ID < 0 || p.Error != nil {
					ready = false
				}
			}
			if ready {
				return name
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s has no leaders after 20s (%v)", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ClickHouse returns a connection to the local server as the admin user
// (FLOWSENTRY_CLICKHOUSE, default 127.0.0.1:9000), database flowsentry.
func ClickHouse(t testing.TB) driver.Conn {
	t.Helper()
	addr := env("FLOWSENTRY_CLICKHOUSE", "127.0.0.1:9000")
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr},
		Auth: clickhouse.Auth{Database: "flowsentry", Username: "default"}, DialTimeout: 5 * time.Second})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = conn.Ping(ctx)
		cancel()
	}
	if err != nil {
		unavailable(t, "clickhouse", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// FreeUDPAddr returns a loopback UDP address nobody listens on right now.
func FreeUDPAddr(t testing.TB) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// RandomID is a short random hex string for unique names.
func RandomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// InCI reports whether the run is CI's (CI=true): skips become failures.
func InCI() bool { return os.Getenv("CI") != "" && os.Getenv("CI") != "false" }

func unavailable(t testing.TB, what, addr string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s at %s is not reachable in CI (make services-up should have started it): %v", what, addr, err)
	}
	t.Skipf("%s at %s not reachable (run `make services-up`): %v", what, addr, err)
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
