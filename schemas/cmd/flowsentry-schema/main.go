// Command flowsentry-schema applies Flowsentry's contracts to the real
// services: "topics" creates the Kafka topics, "migrate" applies the
// ClickHouse migrations, "list" prints both, "acls" prints (or, with
// -apply, creates) each service's Kafka ACLs.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/schemas/chclient"
	"github.com/packetworks/flowsentry/schemas/config"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/packetworks/flowsentry/schemas/migrations"
	"github.com/packetworks/flowsentry/schemas/secret"
	"github.com/packetworks/flowsentry/schemas/topicadmin"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if len(os.Args) < 2 {
		usage()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	switch os.Args[1] {
	case "topics":
		fs := flag.NewFlagSet("topics", flag.ExitOnError)
		brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers")
		replication := fs.Int("replication", 1, "replication factor of new topics (3 in production)")
		kafkaConfig := fs.String("kafka-config", "", "YAML file holding a kafka section (brokers, tls, sasl) as the services use; overrides -brokers")
		_ = fs.Parse(os.Args[2:])
		kc := kafkaclient.Default()
		kc.Brokers = strings.Split(*brokers, ",")
		if *kafkaConfig != "" {
			err = loadKafkaSection(*kafkaConfig, &kc)
		}
		if err == nil && *replication < 1 {
			err = fmt.Errorf("-replication: %d is not >= 1", *replication)
		}
		if err == nil {
			err = createTopics(ctx, kc, int16(*replication), log)
		}
	case "migrate":
		fs := flag.NewFlagSet("migrate", flag.ExitOnError)
		addr := fs.String("addr", "127.0.0.1:9000", "ClickHouse native host:port")
		user := fs.String("user", "default", "ClickHouse user that may create tables")
		pwEnv := fs.String("password-env", "FLOWSENTRY_CH_ADMIN_PASSWORD", "environment variable holding the password (may be unset for a passwordless local user)")
		_ = fs.Parse(os.Args[2:])
		err = migrate(ctx, *addr, *user, *pwEnv, log)
	case "acls":
		err = aclsCommand(ctx, os.Args[2:], os.Stdout, log)
	case "list":
		for _, t := range topics.All() {
			fmt.Printf("topic %-18s partitions=%d compacted=%v  %s\n", t.Name, t.Partitions, t.Compacted, t.Doc)
		}
		all, lerr := migrations.All()
		for _, m := range all {
			fmt.Printf("migration %04d %s (%d statements)\n", m.Version, m.Name, len(m.Statements))
		}
		err = lerr
	default:
		usage()
	}
	if err != nil {
		log.Error(os.Args[1]+" failed", "err", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: flowsentry-schema topics [-brokers h:p] [-replication n] [-kafka-config f.yaml] | migrate [-addr h:p -user u] | list | acls [-apply] [-kafka-config admin.yaml] [-<service>-user u] [-<service>-group g]")
	os.Exit(2)
}

// createTopics creates every missing topic; existing ones are left as they
// are (a partition count is never lowered).
func createTopics(ctx context.Context, kc kafkaclient.Config, replication int16, log *slog.Logger) error {
	sec, err := kc.Resolve("kafka")
	if err != nil {
		return err
	}
	client := &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Timeout: 30 * time.Second,
		Transport: sec.Transport("flowsentry-schema")}
	// The broker may still be electing its controller: retried for a while.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return topicadmin.Create(ctx, client, topicadmin.Configs("", int(replication)),
		func(topic string) { log.Info("topic created", "topic", topic) })
}

func migrate(ctx context.Context, addr, user, pwEnv string, log *slog.Logger) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	cfg := chclient.Default()
	cfg.Addr = []string{addr}
	cfg.Database = "default" // flowsentry may not exist yet
	cfg.Username = user
	cfg.Password = secret.Ref{}
	if v := os.Getenv(pwEnv); v != "" {
		cfg.Password = secret.Ref{Env: pwEnv}
	}
	conn, err := cfg.Open(ctx, "clickhouse")
	if err != nil {
		return err
	}
	defer conn.Close()
	applied, err := migrations.Run(ctx, conn, log)
	if err != nil {
		return err
	}
	log.Info("migrations up to date", "applied_now", len(applied))
	return nil
}

// loadKafkaSection reads only the "kafka" section of a service's config file
// (the other sections belong to that service), strictly.
func loadKafkaSection(path string, kc *kafkaclient.Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("-kafka-config: %w", err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("-kafka-config %s: %w", path, err)
	}
	node, ok := doc["kafka"]
	if !ok {
		return fmt.Errorf("-kafka-config %s: no kafka section", path)
	}
	out, _ := yaml.Marshal(&node)
	if err := config.Decode(out, kc); err != nil {
		return fmt.Errorf("-kafka-config %s: kafka section: %w", path, err)
	}
	return kc.Validate("kafka")
}
