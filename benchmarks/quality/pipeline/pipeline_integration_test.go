//go:build integration

package pipeline

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/quality/score"
	"github.com/packetworks/flowsentry/benchmarks/quality/suite"
	"github.com/packetworks/flowsentry/schemas/itest"
)

// TestPipelineFindsTheAttack runs a small scenario (a SYN flood at 5x on
// one of two warm subnets) through the real collector and detector
// binaries and the real broker, and requires exactly the expected
// incident: syn_flood, inbound, on the attacked subnet, opened within a
// window of the attack's start.
func TestPipelineFindsTheAttack(t *testing.T) {
	brokers := itest.KafkaBrokers(t)
	s, err := suite.Load([]string{"testdata/small.yaml"}, suite.DefaultLive)
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := filepath.Abs("../../..")
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	cfg := Config{Brokers: brokers, Repo: repo, Dir: t.TempDir(), Rate: 40000, Warmup: 30,
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	incs, st, err := Run(ctx, cfg, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", st)
	if st.Late != 0 || st.SocketDrops != 0 || st.Folded < float64(st.Records) {
		t.Errorf("pipeline lost flows: %+v", st)
	}
	lr, ir := score.Match("small", s.Labels(0), incs, score.DefaultOptions())
	if len(ir) != 1 || !ir[0].True || !lr[0].Correct || ir[0].Class != "syn_flood" || ir[0].Subnet != "198.18.0.0/24" {
		t.Fatalf("incidents %+v, want one syn_flood on 198.18.0.0/24 matching the attack", ir)
	}
	if lr[0].TTD <= 0 || lr[0].TTD > 11 || ir[0].End.IsZero() {
		t.Fatalf("time to detect %.1f s, end %s", lr[0].TTD, ir[0].End)
	}
}
