package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
)

// principals names the SCRAM user and the consumer group of each service.
type principals struct {
	collector, detector, alerter, sink             string
	detectorGroup, alerterGroup, sinkGroup         string
	flows, anomalies, baselines, state, deadLetter string
}

func defaultPrincipals() principals {
	return principals{collector: "collector", detector: "detector", alerter: "alerter", sink: "sink",
		detectorGroup: "flowsentry-detector", alerterGroup: "flowsentry-alerter", sinkGroup: "flowsentry-sink",
		flows: topics.Flows, anomalies: topics.Anomalies, baselines: topics.Baselines, state: topics.DetectorState,
		deadLetter: topics.FlowsDeadLetter}
}

// grant is one ACL: a user may do ops on one topic or group (literal name).
type grant struct {
	user     string
	resource kafka.ResourceType
	name     string
	ops      []kafka.ACLOperationType
}

var (
	read  = kafka.ACLOperationTypeRead
	write = kafka.ACLOperationTypeWrite
	desc  = kafka.ACLOperationTypeDescribe
	topic = kafka.ResourceTypeTopic
	group = kafka.ResourceTypeGroup
)

// policy is the least each service needs, nothing else: READ on a topic
// covers fetching, listing offsets and committing them for it; READ on a
// group covers joining, syncing, heartbeats and offset commits; DESCRIBE is
// named where a service asks for metadata or offsets (Kafka implies it by
// READ and WRITE, the list says it for the reader). The admin principal
// (the broker's super user) creates topics and these ACLs; no service may
// create, delete or alter anything.
func policy(p principals) []grant {
	return []grant{
		{p.collector, topic, p.flows, []kafka.ACLOperationType{write, desc}},

		{p.detector, topic, p.flows, []kafka.ACLOperationType{read, desc}},
		{p.detector, group, p.detectorGroup, []kafka.ACLOperationType{read}},
		{p.detector, topic, p.anomalies, []kafka.ACLOperationType{write, desc}},
		{p.detector, topic, p.baselines, []kafka.ACLOperationType{write, desc}},
		// Checkpoints: written, and read back by the worker that takes a partition over.
		{p.detector, topic, p.state, []kafka.ACLOperationType{read, write, desc}},

		{p.alerter, topic, p.anomalies, []kafka.ACLOperationType{read, desc}},
		{p.alerter, group, p.alerterGroup, []kafka.ACLOperationType{read}},

		{p.sink, topic, p.flows, []kafka.ACLOperationType{read, desc}},
		{p.sink, topic, p.anomalies, []kafka.ACLOperationType{read, desc}},
		{p.sink, topic, p.baselines, []kafka.ACLOperationType{read, desc}},
		{p.sink, group, p.sinkGroup, []kafka.ACLOperationType{read}},
		{p.sink, topic, p.deadLetter, []kafka.ACLOperationType{write, desc}},
	}
}

// entries is the policy as CreateACLs entries, one per operation.
func entries(gs []grant) []kafka.ACLEntry {
	var out []kafka.ACLEntry
	for _, g := range gs {
		for _, op := range g.ops {
			out = append(out, kafka.ACLEntry{ResourceType: g.resource, ResourceName: g.name,
				ResourcePatternType: kafka.PatternTypeLiteral, Principal: "User:" + g.user, Host: "*",
				Operation: op, PermissionType: kafka.ACLPermissionTypeAllow})
		}
	}
	return out
}

var opNames = map[kafka.ACLOperationType]string{read: "Read", write: "Write", desc: "Describe"}

// printCommands writes the policy as kafka-acls.sh commands (the operator's
// way when this tool cannot reach the brokers).
func printCommands(w io.Writer, gs []grant, bootstrap string) {
	fmt.Fprintf(w, "# Flowsentry Kafka ACLs: run as the admin (super) user; admin.properties holds its SASL_SSL client settings.\n")
	for _, g := range gs {
		var ops []string
		for _, op := range g.ops {
			ops = append(ops, "--operation "+opNames[op])
		}
		kind := "--topic"
		if g.resource == group {
			kind = "--group"
		}
		fmt.Fprintf(w, "kafka-acls.sh --bootstrap-server %s --command-config admin.properties --add --allow-principal User:%s %s %s %s\n",
			bootstrap, g.user, strings.Join(ops, " "), kind, g.name)
	}
}

// applyACLs creates the policy's ACLs (an existing identical ACL is not an
// error: Kafka keeps one).
func applyACLs(ctx context.Context, kc kafkaclient.Config, gs []grant, log *slog.Logger) error {
	sec, err := kc.Resolve("kafka")
	if err != nil {
		return err
	}
	client := &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Timeout: 30 * time.Second,
		Transport: sec.Transport("flowsentry-schema")}
	es := entries(gs)
	resp, err := client.CreateACLs(ctx, &kafka.CreateACLsRequest{ACLs: es})
	if err != nil {
		return fmt.Errorf("create ACLs: %w", err)
	}
	var errs []error
	for i, e := range resp.Errors {
		if e != nil && i < len(es) {
			errs = append(errs, fmt.Errorf("ACL %s %s on %s: %w", es[i].Principal, opNames[es[i].Operation], es[i].ResourceName, e))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("ACLs applied", "entries", len(es))
	return nil
}

// aclsCommand is "flowsentry-schema acls".
func aclsCommand(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	p := defaultPrincipals()
	fs := flag.NewFlagSet("acls", flag.ContinueOnError)
	fs.StringVar(&p.collector, "collector-user", p.collector, "SCRAM user of the collector")
	fs.StringVar(&p.detector, "detector-user", p.detector, "SCRAM user of the detector")
	fs.StringVar(&p.alerter, "alerter-user", p.alerter, "SCRAM user of the alerter")
	fs.StringVar(&p.sink, "sink-user", p.sink, "SCRAM user of the sink")
	fs.StringVar(&p.detectorGroup, "detector-group", p.detectorGroup, "detector worker.group")
	fs.StringVar(&p.alerterGroup, "alerter-group", p.alerterGroup, "alerter consumer.group_id")
	fs.StringVar(&p.sinkGroup, "sink-group", p.sinkGroup, "sink consumer.group_id")
	apply := fs.Bool("apply", false, "create the ACLs on the brokers (as the admin user of -kafka-config) instead of printing kafka-acls.sh commands")
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers")
	kafkaConfig := fs.String("kafka-config", "", "YAML file holding a kafka section (brokers, tls, sasl) of the admin user; overrides -brokers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	kc := kafkaclient.Default()
	kc.Brokers = strings.Split(*brokers, ",")
	if *kafkaConfig != "" {
		if err := loadKafkaSection(*kafkaConfig, &kc); err != nil {
			return err
		}
	}
	for flagName, v := range map[string]string{"collector-user": p.collector, "detector-user": p.detector,
		"alerter-user": p.alerter, "sink-user": p.sink, "detector-group": p.detectorGroup,
		"alerter-group": p.alerterGroup, "sink-group": p.sinkGroup} {
		if v == "" || strings.ContainsAny(v, " \t\n*") {
			return fmt.Errorf("-%s: %q is not a user or group name", flagName, v)
		}
	}
	gs := policy(p)
	if !*apply {
		printCommands(out, gs, strings.Join(kc.Brokers, ","))
		return nil
	}
	return applyACLs(ctx, kc, gs, log)
}
