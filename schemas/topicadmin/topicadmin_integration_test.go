//go:build integration

package topicadmin_test

import (
	"context"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/topicadmin"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
)

func TestCreateIsIdempotentAndDeleteCleansUp(t *testing.T) {
	brokers := itest.KafkaBrokers(t)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 20 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefix := "topicadmin-" + itest.RandomID() + "-"
	cfgs := topicadmin.Configs(prefix, 1)
	names := topicadmin.Names(cfgs)
	t.Cleanup(func() { _ = topicadmin.Delete(context.Background(), client, names) })

	var created []string
	if err := topicadmin.Create(ctx, client, cfgs, func(n string) { created = append(created, n) }); err != nil {
		t.Fatal(err)
	}
	if len(created) != len(topics.All()) {
		t.Errorf("created %v, want every pipeline topic", created)
	}
	created = nil
	if err := topicadmin.Create(ctx, client, cfgs, func(n string) { created = append(created, n) }); err != nil || len(created) != 0 {
		t.Fatalf("second create: %v, created %v; want no error and nothing new", err, created)
	}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mt := range md.Topics {
		got[mt.Name] = len(mt.Partitions)
	}
	for _, tp := range topics.All() {
		if got[prefix+tp.Name] != tp.Partitions {
			t.Errorf("%s%s has %d partitions, want %d", prefix, tp.Name, got[prefix+tp.Name], tp.Partitions)
		}
	}
	dc, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: prefix + topics.DetectorState, ConfigNames: []string{"cleanup.policy"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if e := dc.Resources[0].ConfigEntries; len(e) != 1 || e[0].ConfigValue != "compact" {
		t.Errorf("detector-state cleanup.policy %+v, want compact", e)
	}
	if err := topicadmin.Delete(ctx, client, names); err != nil {
		t.Fatal(err)
	}
	if err := topicadmin.Delete(ctx, client, names); err != nil {
		t.Errorf("deleting topics already gone: %v", err)
	}
}
