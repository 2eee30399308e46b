package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/schemas/topicadmin"
	"github.com/segmentio/kafka-go"
)

// The demo runs on its own topics (the production names behind a per-run
// prefix): the shared broker's "flows" may carry other people's tests, and
// a fresh detector-state topic means no checkpoint of an earlier run is
// restored into this one.

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
	cfgs := topicadmin.Configs(*prefix, 1)
	names := topicadmin.Names(cfgs)
	if *del {
		return topicadmin.Delete(ctx, client, names)
	}
	if err := topicadmin.Create(ctx, client, cfgs, nil); err != nil {
		return err
	}
	fmt.Println("topics:", strings.Join(names, " "))
	return nil
}
