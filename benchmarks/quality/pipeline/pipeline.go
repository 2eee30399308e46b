// Package pipeline runs a suite through the real Flowsentry pipeline:
// the collector and detector binaries with generated configs on a run's
// own Kafka topics (partition counts of schemas/topics) and consumer
// group, IPFIX datagrams from benchmarks/quality/export sent to the
// collector time-compressed, and the detector's anomalies read back.
//
// Accelerated time: the detector works on event time, so the run sends
// the whole timeline (set in the past) as fast as the pace allows through
// one socket and one collector sender, which keeps every Kafka partition
// in event-time order (the detector drops flows more than
// engine.lateness_seconds behind their partition's newest one). Every
// partition keeps reading while the run sends, so partition idleness
// (wall clock) does not kick in before the end.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/quality/export"
	"github.com/packetworks/flowsentry/benchmarks/quality/inproc"
	"github.com/packetworks/flowsentry/benchmarks/quality/score"
	"github.com/packetworks/flowsentry/benchmarks/quality/suite"
	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/telemetry"
	"github.com/packetworks/flowsentry/schemas/topicadmin"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// Config is one pipeline run.
type Config struct {
	Brokers []string
	// Bin holds collector and detector binaries; empty: go build them
	// into Dir (from the repository root Repo).
	Bin, Repo string
	// Dir receives configs, logs and the inventory.
	Dir string
	// Rate: records sent per second (wall clock).
	Rate float64
	// Warmup is baseline.warmup_windows, the one detector default changed.
	Warmup int
	Log    *slog.Logger
}

// Observer sees every record sent, in event-time order (the static
// detector runs beside the pipeline on the same records); Tick follows
// each second of event time.
type Observer interface {
	Record(scenarioIdx int, r *scenario.Record)
	Tick(sec time.Time)
}

// Stats are the run's figures.
type Stats struct {
	Records         uint64  `json:"records"`
	Datagrams       uint64  `json:"datagrams"`
	SendSeconds     float64 `json:"send_seconds"`
	RecordsPerSec   float64 `json:"records_per_second"`
	EventSeconds    float64 `json:"event_seconds"`
	Compression     float64 `json:"compression"` // event time per wall time while sending
	Decoded         float64 `json:"collector_decoded"`
	Produced        float64 `json:"collector_produced"`
	SocketDrops     float64 `json:"collector_socket_drops"`
	DecodeErrors    float64 `json:"collector_decode_errors"`
	Folded          float64 `json:"detector_folded"`
	Late            float64 `json:"detector_late"`
	OtherDrops      float64 `json:"detector_other_drops"`
	Events          int     `json:"anomaly_events"`
	TotalSeconds    float64 `json:"total_seconds"`
	CaughtUpSeconds float64 `json:"caught_up_seconds"`
}

// Run sends the suite through collector → Kafka → detector and returns the
// incidents read from the anomalies topic.
func Run(ctx context.Context, cfg Config, s *suite.Suite, obs Observer) ([]score.Incident, Stats, error) {
	t0 := time.Now()
	var st Stats
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, st, err
	}
	bin := cfg.Bin
	if bin == "" {
		bin = filepath.Join(cfg.Dir, "bin")
		for _, b := range []string{"collector", "detector"} {
			cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, b), "./"+b+"/cmd/"+b)
			cmd.Dir, cmd.Stderr = cfg.Repo, os.Stderr
			if err := cmd.Run(); err != nil {
				return nil, st, fmt.Errorf("go build %s: %w", b, err)
			}
		}
	}
	prefix := "quality-" + itest.RandomID() + "-"
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 30 * time.Second}
	tcfgs := topicadmin.Configs(prefix, 1)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := topicadmin.Create(tctx, client, tcfgs, nil)
	cancel()
	if err != nil {
		return nil, st, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = topicadmin.Delete(dctx, client, topicadmin.Names(tcfgs))
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, st, err
	}
	collHTTP, detHTTP := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	ipfix := fmt.Sprintf("127.0.0.1:%d", ports[2])
	if err := writeConfigs(cfg, s, prefix, collHTTP, detHTTP, ipfix); err != nil {
		return nil, st, err
	}
	stopColl, err := start(ctx, filepath.Join(bin, "collector"), cfg.Dir, "collector")
	if err != nil {
		return nil, st, err
	}
	defer stopColl()
	stopDet, err := start(ctx, filepath.Join(bin, "detector"), cfg.Dir, "detector")
	if err != nil {
		return nil, st, err
	}
	defer stopDet()
	for _, u := range []string{collHTTP, detHTTP} {
		if err := waitReady(ctx, "http://"+u, 60*time.Second); err != nil {
			return nil, st, err
		}
	}
	cfg.Log.Info("pipeline ready", "topics", prefix+"*", "seconds", time.Since(t0).Seconds())

	snd, err := export.NewSender(ipfix, cfg.Rate)
	if err != nil {
		return nil, st, err
	}
	defer snd.Close()
	var doms [][]*export.Domain
	for _, x := range s.Scenarios {
		var d []*export.Domain
		for ei, e := range x.SC.Exporters {
			d = append(d, export.NewDomain(x.Domain+2*uint32(ei), e.Sampling))
		}
		doms = append(doms, d)
	}
	per := map[[2]int][]scenario.Record{}
	var dgs [][]byte
	stepper := s.Stepper()
	sendStart := time.Now()
	var sendErr error
	lastLog := time.Now()
	for sendErr == nil && ctx.Err() == nil {
		if time.Since(lastLog) > 15*time.Second {
			lastLog = time.Now()
			cfg.Log.Info("sending", "records", snd.Records, "event_time_done", stepper.Done().Round(time.Second).String())
		}
		sec, ok := stepper.Next(func(i int, recs []scenario.Record) {
			for k := range per {
				if k[0] == i {
					per[k] = per[k][:0]
				}
			}
			for j := range recs {
				k := [2]int{i, recs[j].Exporter}
				per[k] = append(per[k], recs[j])
				if obs != nil {
					obs.Record(i, &recs[j])
				}
			}
			for ei := range s.Scenarios[i].SC.Exporters {
				rs := per[[2]int{i, ei}]
				if len(rs) == 0 {
					continue
				}
				dgs = doms[i][ei].Datagrams(time.Now(), rs, dgs[:0])
				if err := snd.Send(dgs, len(rs)); err != nil && sendErr == nil {
					sendErr = err
				}
			}
		})
		if !ok {
			break
		}
		if obs != nil {
			obs.Tick(sec)
		}
	}
	if sendErr != nil {
		return nil, st, fmt.Errorf("sending: %w", sendErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, st, err
	}
	st.Records, st.Datagrams = snd.Records, snd.Datagrams
	st.SendSeconds = time.Since(sendStart).Seconds()
	st.RecordsPerSec = float64(st.Records) / st.SendSeconds
	st.EventSeconds = s.End.Sub(s.Start).Seconds()
	st.Compression = st.EventSeconds / st.SendSeconds
	cfg.Log.Info("sent", "records", st.Records, "seconds", st.SendSeconds, "compression", st.Compression)

	caught := time.Now()
	if err := waitCaughtUp(ctx, "http://"+collHTTP, "http://"+detHTTP, &st, 120*time.Second); err != nil {
		return nil, st, err
	}
	st.CaughtUpSeconds = time.Since(caught).Seconds()
	evs, err := readAll(ctx, cfg.Brokers, prefix+topics.Anomalies)
	if err != nil {
		return nil, st, err
	}
	st.Events = len(evs)
	st.TotalSeconds = time.Since(t0).Seconds()
	return Incidents(evs), st, nil
}

// Incidents turns anomaly events (any order, duplicates allowed) into
// incidents: one per anomaly id, ended by its END if any.
func Incidents(evs []*pb.AnomalyEvent) []score.Incident {
	byID := map[string]*score.Incident{}
	var order []string
	for _, ev := range evs {
		in := byID[ev.GetId()]
		if in == nil {
			x := inproc.Incident(ev)
			in = &x
			byID[ev.GetId()] = in
			order = append(order, ev.GetId())
		}
		if ev.GetKind() == pb.AnomalyEvent_START {
			refined, opened := in.Class, in.OpenedAs
			*in = inproc.Incident(ev)
			if opened != "" || refined != in.Class { // an UPDATE read before its START
				in.Class, in.OpenedAs = refined, in.Class
			}
		}
		if ev.GetKind() == pb.AnomalyEvent_UPDATE {
			inproc.Reclassify(in, ev)
		}
		if ev.GetKind() == pb.AnomalyEvent_END {
			in.End = time.Unix(0, int64(ev.GetEndedAtNs())).UTC()
		}
	}
	out := make([]score.Incident, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}

func freePorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	var us []net.PacketConn
	defer func() {
		for _, l := range ls {
			l.Close()
		}
		for _, u := range us {
			u.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		p := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return nil, err
		}
		us = append(us, u)
		out = append(out, p)
	}
	return out, nil
}

func writeConfigs(cfg Config, s *suite.Suite, prefix, collHTTP, detHTTP, ipfix string) error {
	var inv strings.Builder
	inv.WriteString("# Generated by benchmarks/quality: every scenario's customers.\ndefault_granularity: {ipv4: 24, ipv6: 64}\ncustomers:\n")
	for _, c := range s.InvFile.Customers {
		fmt.Fprintf(&inv, "  - id: %q\n    prefixes: [%s]\n", c.ID, strings.Join(c.Prefixes, ", "))
	}
	brokers := `["` + strings.Join(cfg.Brokers, `", "`) + `"]`
	invPath := filepath.Join(cfg.Dir, "inventory.yaml")
	coll := fmt.Sprintf(`# Generated by benchmarks/quality. Production defaults except: one IPFIX
# listener on loopback, no template state file, the run's topic, one Kafka
# sender (keeps each partition in event-time order for the time-compressed
# replay, as in the demo).
collector_id: quality
log_level: warn
http_addr: %q
listeners:
  - {protocol: ipfix, addr: %q, network: udp4, sockets: 1, read_buffer: 16777216}
inventory: %s
templates: {state_file: ""}
kafka: {brokers: %s, client_id: flowsentry-quality}
produce: {topic: %sflows, senders: 1}
`, collHTTP, ipfix, invPath, brokers, prefix)
	det := fmt.Sprintf(`# Generated by benchmarks/quality. Production defaults (windows,
# thresholds, classes, lateness, idleness) except: baseline.warmup_windows
# (the history is replayed, and every window of it costs run time), the
# run's topics and consumer group, reading from the first offset.
instance: quality
log_level: warn
http_addr: %q
inventory: %s
kafka: {brokers: %s, client_id: flowsentry-quality}
worker:
  group: %sdetector
  topics: {flows: %sflows, anomalies: %sanomalies, baselines: %sbaselines, state: %sdetector-state}
  start_offset: first
baseline: {warmup_windows: %d}
`, detHTTP, invPath, brokers, prefix, prefix, prefix, prefix, prefix, cfg.Warmup)
	for name, body := range map[string]string{"inventory.yaml": inv.String(), "collector.yaml": coll, "detector.yaml": det} {
		if err := os.WriteFile(filepath.Join(cfg.Dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// start runs bin -config DIR/NAME.yaml with output in DIR/NAME.log; the
// returned func stops it (SIGTERM, then SIGKILL after 10 s).
func start(ctx context.Context, bin, dir, name string) (func(), error) {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-config", filepath.Join(dir, name+".yaml"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	}, nil
}

func waitReady(ctx context.Context, base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s: %v", base, limit, last)
}

// waitCaughtUp waits until the collector has stopped decoding and the
// detector has read everything it produced.
func waitCaughtUp(ctx context.Context, coll, det string, st *Stats, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var prev float64 = -1
	for {
		cm, err1 := telemetry.Scrape(ctx, coll)
		dm, err2 := telemetry.Scrape(ctx, det)
		if err := errors.Join(err1, err2); err == nil {
			st.Decoded = cm.Sum("collector_flows_decoded_total")
			st.Produced = cm.Sum("collector_flows_produced_total")
			st.SocketDrops = cm.Sum("collector_socket_drops_total")
			st.DecodeErrors = cm.Sum("collector_decode_errors_total")
			st.Folded = dm.Sum("detector_flows_folded_total")
			st.Late = dm.Sum("detector_flows_dropped_total", `reason="late"`)
			st.OtherDrops = dm.Sum("detector_flows_dropped_total") - st.Late
			if st.Decoded == prev && st.Produced >= st.Decoded && st.Folded+st.Late+st.OtherDrops >= st.Produced {
				return nil
			}
			prev = st.Decoded
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pipeline not caught up after %s: collector decoded %.0f, produced %.0f; detector read %.0f",
				limit, st.Decoded, st.Produced, st.Folded+st.Late+st.OtherDrops)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// readAll reads every message of topic; it stops when no partition has
// grown for 3 s (the detector publishes the last events after reading the
// last flows).
func readAll(ctx context.Context, brokers []string, topic string) ([]*pb.AnomalyEvent, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	parts := topics.All()[1].Partitions
	next := make([]int64, parts)
	var out []*pb.AnomalyEvent
	quiet := time.Now()
	for time.Since(quiet) < 3*time.Second {
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
		for p := range parts {
			req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
		}
		resp, err := client.ListOffsets(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("anomalies offsets: %w", err)
		}
		for _, po := range resp.Topics[topic] {
			p := po.Partition
			if po.Error != nil {
				return nil, po.Error
			}
			if po.LastOffset <= next[p] {
				continue
			}
			quiet = time.Now()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 500 * time.Millisecond})
			if err := r.SetOffset(next[p]); err != nil {
				r.Close()
				return nil, err
			}
			for next[p] < po.LastOffset {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					r.Close()
					return nil, fmt.Errorf("reading %s[%d]: %w", topic, p, err)
				}
				next[p] = m.Offset + 1
				var ev pb.AnomalyEvent
				if err := proto.Unmarshal(m.Value, &ev); err != nil {
					r.Close()
					return nil, fmt.Errorf("%s[%d]@%d: %w", topic, p, m.Offset, err)
				}
				out = append(out, &ev)
			}
			r.Close()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return out, nil
}
