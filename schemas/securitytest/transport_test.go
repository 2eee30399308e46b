//go:build integration

package securitytest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/chclient"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/packetworks/flowsentry/schemas/migrations"
	"github.com/packetworks/flowsentry/schemas/secret"
	"github.com/segmentio/kafka-go"
)

// TestSecurity starts the secured broker and ClickHouse server once and runs
// every check against them: transport (this file) and the service binaries
// (services_test.go).
func TestSecurity(t *testing.T) {
	s := startServers(t)
	bins := buildBinaries(t, s.root) // (starts the build now, waits on first use)
	t.Run("KafkaSCRAMProduceConsumeGroup", func(t *testing.T) { testKafkaSCRAM(t, s) })
	t.Run("KafkaPLAIN", func(t *testing.T) { testKafkaPLAIN(t, s) })
	t.Run("KafkaRefusals", func(t *testing.T) { testKafkaRefusals(t, s) })
	t.Run("ClickHouseTLS", func(t *testing.T) { testClickHouseTLS(t, s) })
	t.Run("ClickHouseRefusals", func(t *testing.T) { testClickHouseRefusals(t, s) })
	t.Run("ServicesThroughTLSAndSASLWithoutLeakingSecrets", func(t *testing.T) { testServices(t, s, bins) })
}

// kafkaConfig is what a service's YAML "kafka" section would hold.
func kafkaConfig(s *servers, mech, user, pwEnv string) kafkaclient.Config {
	return kafkaclient.Config{Brokers: []string{s.kafka}, ClientID: "securitytest",
		TLS:  kafkaclient.TLS{Enabled: true, CAFile: s.ca},
		SASL: kafkaclient.SASL{Mechanism: mech, Username: user, Password: secret.Ref{Env: pwEnv}}}
}

func resolve(t *testing.T, c kafkaclient.Config) kafkaclient.Security {
	t.Helper()
	if err := c.Validate("kafka"); err != nil {
		t.Fatal(err)
	}
	sec, err := c.Resolve("kafka")
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func adminClient(s *servers, sec kafkaclient.Security) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(s.kafka), Timeout: 20 * time.Second, Transport: sec.Transport("securitytest")}
}

// createTopics creates topics on the secured broker (as svc) and waits for leaders.
func createTopics(t *testing.T, s *servers, topics ...kafka.TopicConfig) {
	t.Helper()
	t.Setenv("SECTEST_KAFKA_PW", s.secrets.kafkaSvc)
	sec := resolve(t, kafkaConfig(s, "scram-sha-512", "svc", "SECTEST_KAFKA_PW"))
	cl := adminClient(s, sec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	for name, err := range resp.Errors {
		if err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
	waitTopics(ctx, t, cl, topics...)
}

// waitTopics waits until every partition of the topics has a leader that
// answers ListOffsets.
func waitTopics(ctx context.Context, t *testing.T, cl *kafka.Client, topics ...kafka.TopicConfig) {
	t.Helper()
	for _, tc := range topics {
		for {
			md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{tc.Topic}})
			if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == tc.NumPartitions {
				ok := true
				for _, p := range md.Topics[0].Partitions {
					ok = ok && p.Leader.ID >= 0 && p.Error == nil
				}
				// Metadata names a leader a moment before that broker
				// answers ListOffsets for the partition (NOT_LEADER_OR_FOLLOWER);
				// a detector restoring state then exits. Wait for both.
				if ok {
					ok = offsetsReady(ctx, cl, tc.Topic, tc.NumPartitions)
				}
				if ok {
					break
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("topic %s has no leaders: %v", tc.Topic, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func offsetsReady(ctx context.Context, cl *kafka.Client, topic string, partitions int) bool {
	req := make([]kafka.OffsetRequest, partitions)
	for p := range req {
		req[p] = kafka.FirstOffsetOf(p)
	}
	resp, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil || len(resp.Topics[topic]) != partitions {
		return false
	}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return false
		}
	}
	return true
}

// testKafkaSCRAM: TLS with CA verification + SCRAM-SHA-512 through
// kafkaclient.Config; produce, consume in a consumer group, commit.
func testKafkaSCRAM(t *testing.T, s *servers) {
	topic := "sec-scram-" + itest.RandomID()
	createTopics(t, s, kafka.TopicConfig{Topic: topic, NumPartitions: 4, ReplicationFactor: 1})
	t.Setenv("SECTEST_KAFKA_PW", s.secrets.kafkaSvc)
	sec := resolve(t, kafkaConfig(s, "scram-sha-512", "svc", "SECTEST_KAFKA_PW"))
	if sec.TLS == nil || sec.TLS.RootCAs == nil || sec.TLS.InsecureSkipVerify || sec.SASL.Name() != "SCRAM-SHA-512" {
		t.Fatalf("resolved security is not TLS-verified SCRAM-SHA-512: %+v", sec)
	}
	const n = 200
	w := &kafka.Writer{Addr: kafka.TCP(s.kafka), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		Transport: sec.Transport("securitytest"), RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}
	group := "sec-group-" + itest.RandomID()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{s.kafka}, GroupID: group, Topic: topic,
		Dialer: sec.Dialer("securitytest"), MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
		StartOffset: kafka.FirstOffset, HeartbeatInterval: time.Second, SessionTimeout: 6 * time.Second})
	defer r.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("consume over SASL_SSL after %d messages: %v", len(seen), err)
		}
		seen[string(m.Value)] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	// The group's committed offsets are on the broker: n in total.
	cl := adminClient(s, sec)
	off, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2, 3}}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	var total int64
	for _, p := range off.Topics[topic] {
		if p.CommittedOffset > 0 {
			total += p.CommittedOffset
		}
	}
	if total != n {
		t.Fatalf("committed offsets sum to %d, want %d", total, n)
	}
}

// testKafkaPLAIN: the PLAIN option through the same config section.
func testKafkaPLAIN(t *testing.T, s *servers) {
	topic := "sec-plain-" + itest.RandomID()
	createTopics(t, s, kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1})
	t.Setenv("SECTEST_KAFKA_PW", s.secrets.kafkaSvc)
	sec := resolve(t, kafkaConfig(s, "plain", "svc", "SECTEST_KAFKA_PW"))
	w := &kafka.Writer{Addr: kafka.TCP(s.kafka), Topic: topic, Transport: sec.Transport("securitytest"),
		RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("plain-ok")}); err != nil {
		t.Fatalf("produce with SASL/PLAIN: %v", err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{s.kafka}, Topic: topic, Partition: 0,
		Dialer: sec.Dialer("securitytest"), MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil || string(m.Value) != "plain-ok" {
		t.Fatalf("read with SASL/PLAIN: %q %v", m.Value, err)
	}
}

// testKafkaRefusals: every way in without the right TLS trust or
// credentials fails, and no error message carries the password tried.
func testKafkaRefusals(t *testing.T, s *servers) {
	const wrongPW = "wrong-password-d41d8cd98f00b204"
	for _, tc := range []struct {
		name   string
		cfg    func() kafkaclient.Config
		pw     string
		expect []string // one of these in the error (lower case)
	}{
		{"scram wrong password", func() kafkaclient.Config { return kafkaConfig(s, "scram-sha-512", "svc", "SECTEST_PW") },
			wrongPW, []string{"sasl authentication failed", "authentication failed"}},
		{"scram unknown user", func() kafkaclient.Config { return kafkaConfig(s, "scram-sha-512", "mallory", "SECTEST_PW") },
			s.secrets.kafkaSvc, []string{"authentication failed"}},
		{"plain wrong password", func() kafkaclient.Config { return kafkaConfig(s, "plain", "svc", "SECTEST_PW") },
			wrongPW, []string{"authentication failed"}},
		{"scram-sha-256 not enabled", func() kafkaclient.Config { return kafkaConfig(s, "scram-sha-256", "svc", "SECTEST_PW") },
			s.secrets.kafkaSvc, []string{"unsupported sasl mechanism", "mechanism"}},
		{"tls without sasl", func() kafkaclient.Config {
			c := kafkaConfig(s, "", "", "")
			c.SASL = kafkaclient.SASL{}
			return c
		}, "", []string{"eof", "reset", "closed", "broken pipe", "illegal sasl state", "unexpected"}},
		{"no tls (plaintext client)", func() kafkaclient.Config {
			c := kafkaConfig(s, "scram-sha-512", "svc", "SECTEST_PW")
			c.TLS = kafkaclient.TLS{}
			return c
		}, s.secrets.kafkaSvc, []string{"eof", "reset", "closed", "broken pipe", "deadline", "timeout", "unexpected"}},
		{"wrong CA", func() kafkaclient.Config {
			c := kafkaConfig(s, "scram-sha-512", "svc", "SECTEST_PW")
			c.TLS.CAFile = s.wrongCA
			return c
		}, s.secrets.kafkaSvc, []string{"certificate signed by unknown authority"}},
		{"wrong server name", func() kafkaclient.Config {
			c := kafkaConfig(s, "scram-sha-512", "svc", "SECTEST_PW")
			c.TLS.ServerName = "kafka.evil.example"
			return c
		}, s.secrets.kafkaSvc, []string{"certificate is valid for"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.pw != "" {
				t.Setenv("SECTEST_PW", tc.pw)
			}
			sec, err := tc.cfg().Resolve("kafka")
			if err != nil {
				t.Fatal(err)
			}
			cl := &kafka.Client{Addr: kafka.TCP(s.kafka), Timeout: 8 * time.Second, Transport: sec.Transport("securitytest")}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			md, err := cl.Metadata(ctx, &kafka.MetadataRequest{})
			if err == nil {
				t.Fatalf("metadata request was answered (%d brokers): the broker let this client in", len(md.Brokers))
			}
			msg := strings.ToLower(err.Error())
			found := false
			for _, e := range tc.expect {
				found = found || strings.Contains(msg, e)
			}
			if !found {
				t.Errorf("refused, but with an unexpected error: %v (want one of %q)", err, tc.expect)
			}
			if tc.pw != "" && strings.Contains(err.Error(), tc.pw) {
				t.Errorf("the error message carries the password: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// chConfig is what a service's YAML "clickhouse" section would hold.
func chConfig(s *servers, user, db, pwEnv string) chclient.Config {
	c := chclient.Config{Addr: []string{s.ch}, Database: db, Username: user, DialTimeout: 5 * time.Second,
		TLS: chclient.TLS{Enabled: true, CAFile: s.ca}}
	if pwEnv != "" {
		c.Password = secret.Ref{Env: pwEnv}
	}
	return c
}

// testClickHouseTLS: admin applies the migrations over TLS; the writer
// (password from env) queries over TLS; query_log records who did it.
func testClickHouseTLS(t *testing.T, s *servers) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	admin, err := chConfig(s, "default", "default", "").Open(ctx, "clickhouse")
	if err != nil {
		t.Fatalf("admin over TLS: %v", err)
	}
	defer admin.Close()
	if _, err := migrations.Run(ctx, admin, nil); err != nil {
		t.Fatalf("migrations over TLS: %v", err)
	}
	t.Setenv("SECTEST_CH_PW", s.secrets.chWriter)
	cfg := chConfig(s, "flowsentry_writer", "flowsentry", "SECTEST_CH_PW")
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	w, err := cfg.Open(ctx, "clickhouse")
	if err != nil {
		t.Fatalf("writer over TLS: %v", err)
	}
	defer w.Close()
	marker := "sectest_" + itest.RandomID()
	var n uint64
	if err := w.QueryRow(ctx, "SELECT count() AS "+marker+" FROM flowsentry.alerts").Scan(&n); err != nil {
		t.Fatalf("query over TLS: %v", err)
	}
	// Audit: the query is in system.query_log under the writer's name. The
	// finish record is written after the client has its result, so poll.
	// The prefix match excludes this lookup's own text.
	var user string
	for deadline := time.Now().Add(15 * time.Second); ; {
		if err := admin.Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
			t.Fatal(err)
		}
		if err := admin.QueryRow(ctx, "SELECT any(user) FROM system.query_log WHERE query LIKE 'SELECT count() AS "+marker+"%' AND type = 2").Scan(&user); err != nil {
			t.Fatalf("query_log: %v", err)
		}
		if user != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if user != "flowsentry_writer" {
		t.Fatalf("query_log user = %q, want flowsentry_writer", user)
	}
}

// testClickHouseRefusals: a client that does not trust the server's CA,
// checks another name, speaks plaintext, or has the wrong password is refused.
func testClickHouseRefusals(t *testing.T, s *servers) {
	const wrongPW = "wrong-ch-password-9e107d9d372bb682"
	for _, tc := range []struct {
		name   string
		mod    func(*chclient.Config)
		pw     string
		expect []string
	}{
		{"wrong CA", func(c *chclient.Config) { c.TLS.CAFile = s.wrongCA }, s.secrets.chWriter,
			[]string{"certificate signed by unknown authority"}},
		{"wrong server name", func(c *chclient.Config) { c.TLS.ServerName = "ch.evil.example" }, s.secrets.chWriter,
			[]string{"certificate is valid for"}},
		{"no TLS", func(c *chclient.Config) { c.TLS = chclient.TLS{} }, s.secrets.chWriter,
			[]string{"eof", "reset", "unexpected packet", "timeout", "deadline", "read"}},
		{"wrong password", func(*chclient.Config) {}, wrongPW,
			[]string{"password", "authentication"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SECTEST_CH_PW", tc.pw)
			cfg := chConfig(s, "flowsentry_writer", "flowsentry", "SECTEST_CH_PW")
			cfg.DialTimeout = 3 * time.Second
			tc.mod(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			conn, err := cfg.Open(ctx, "clickhouse")
			if err == nil {
				conn.Close()
				t.Fatal("connected: the server (or the client) accepted this connection")
			}
			msg := strings.ToLower(err.Error())
			found := false
			for _, e := range tc.expect {
				found = found || strings.Contains(msg, e)
			}
			if !found {
				t.Errorf("refused, but with an unexpected error: %v (want one of %q)", err, tc.expect)
			}
			if strings.Contains(err.Error(), tc.pw) {
				t.Errorf("the error message carries the password: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}
