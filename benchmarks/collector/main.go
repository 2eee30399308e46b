// Command collector-bench replays NetFlow v9, IPFIX and sFlow datagrams at
// full speed into (a) Flowsentry's collector and (b) goflow2's own
// collector (cmd/goflow2 v2.2.6, -format=bin -transport=file to /dev/null),
// one after the other in the same run on the same machine, and reports
// flows per CPU-second of the receiving process ("flows/s per core") for
// both and their ratio.
//
// Each receiver is a separate process; its CPU time comes from
// /proc/<pid>/stat, so other load on a shared machine slows the run down
// but does not distort flows per CPU-second much. Flows counted: ours, the
// flows the Kafka writer was handed (after decode, normalise, batching and
// encoding; the writer discards them, or with -kafka really produces them);
// goflow2, the data records and flow samples its decoder metrics report.
//
// Usage (from benchmarks/): go run ./collector [-duration 10s] [-protocols v9,ipfix,sflow] [-kafka 127.0.0.1:9092] [-dump dir] [-json file]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/packetworks/flowsentry/collector/config"
	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/collector/produce"
	"github.com/packetworks/flowsentry/collector/service"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/prometheus/client_golang/prometheus"
	kgo "github.com/segmentio/kafka-go"
)

func main() {
	serve := flag.String("serve-ours", "", "internal: run our collector on this UDP address")
	kafkaAddr := flag.String("kafka", "", "also produce to this broker (topic flows-bench-<pid>; must exist or auto-create)")
	topic := flag.String("topic", "", "internal")
	duration := flag.Duration("duration", 10*time.Second, "replay time per protocol and collector")
	protocols := flag.String("protocols", "v9,ipfix,sflow", "protocols to replay")
	dump := flag.String("dump", "", "write the replayed datagrams to this directory")
	goflow2 := flag.String("goflow2", "", "goflow2 binary (default: go build the tool from go.mod)")
	jsonOut := flag.String("json", "", "also write every result line as a JSON array to this file (read by benchmarks/report)")
	flag.Parse()
	if *serve != "" {
		if err := serveOurs(*serve, *kafkaAddr, *topic); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := bench(*duration, strings.Split(*protocols, ","), *dump, *goflow2, *kafkaAddr); err != nil {
		fmt.Fprintln(os.Stderr, "collector-bench:", err)
		os.Exit(1)
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(results, "", "  ") // fails on NaN/Inf (no CPU time measured)
		if err == nil {
			err = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "collector-bench:", err)
			os.Exit(1)
		}
	}
}

// --- datagrams ---

var protectedNet = netip.MustParsePrefix("203.0.113.0/24")

func flows(n, seed int, now time.Time) []flowgen.Flow {
	fl := make([]flowgen.Flow, n)
	for i := range fl {
		k := seed*n + i
		fl[i] = flowgen.Flow{Src: netip.AddrFrom4([4]byte{198, 51, byte(k >> 8), byte(k)}), Dst: netip.AddrFrom4([4]byte{203, 0, 113, byte(k)}),
			SrcPort: uint16(1024 + k), DstPort: 443, Proto: 6, TCPFlags: 0x18, Bytes: uint64(1000 + k%500), Packets: uint64(1 + k%10),
			Start: now.Add(-10 * time.Second), End: now.Add(-time.Second), InIf: 1, OutIf: 2, SrcAS: 64500, DstAS: 64501,
			NextHop: netip.MustParseAddr("192.0.2.1"), SrcMask: 24, DstMask: 24}
		if k%5 == 4 {
			fl[i].Proto, fl[i].TCPFlags = 17, 0
		}
	}
	return fl
}

// datagrams returns the templates datagram (sent first and every 1000
// datagrams, as exporters refresh them) and data datagrams, plus flows per
// data datagram.
func datagrams(proto string) (tpl []byte, data [][]byte, perDatagram int, err error) {
	now := time.Now()
	switch proto {
	case "v9", "ipfix":
		e := &flowgen.Encoder{Version: 9, Boot: now.Add(-time.Hour), SamplingRate: 100}
		if proto == "ipfix" {
			e = &flowgen.Encoder{Version: 10, Time: flowgen.TimeMillis, Boot: now.Add(-time.Hour), SamplingRate: 100}
		}
		// 24 IPv4 records of 73 bytes (v9): ~1.8 KB, a typical router datagram.
		for i := 0; i < 64; i++ {
			data = append(data, e.Data(now, flows(24, i, now)))
		}
		return e.Templates(now), data, 24, nil
	case "sflow":
		for i := 0; i < 64; i++ {
			data = append(data, flowgen.SFlow(flowgen.SFlowHeader{Agent: netip.MustParseAddr("127.0.0.1"), Seq: uint32(i), SamplingRate: 1000}, flows(8, i, now)))
		}
		return nil, data, 8, nil
	}
	return nil, nil, 0, fmt.Errorf("unknown protocol %q", proto)
}

// --- our collector, as a child process ---

type countWriter struct {
	flows atomic.Int64
	kw    *produce.KafkaWriter
}

func (w *countWriter) Write(ctx context.Context, msgs []*produce.Message) error {
	if w.kw != nil {
		if err := w.kw.Write(ctx, msgs); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		w.flows.Add(int64(m.Flows))
	}
	return nil
}
func (w *countWriter) Partitions(ctx context.Context) (int, error) {
	if w.kw != nil {
		return w.kw.Partitions(ctx)
	}
	return 8, nil
}
func (w *countWriter) Close() error { return nil }

func serveOurs(addr, kafkaAddr, topic string) error {
	cfg := config.Default()
	cfg.CollectorID = "bench"
	cfg.Listeners = []config.Listener{{Protocol: "netflow", Addr: addr, Network: "udp", Sockets: 1, ReadBuffer: 32 << 20}}
	cfg.Templates.StateFile = ""
	inv, err := inventory.New(inventory.File{Protected: []string{protectedNet.String()}})
	if err != nil {
		return err
	}
	w := &countWriter{}
	if kafkaAddr != "" {
		kc := cfg.Kafka
		kc.Brokers = []string{kafkaAddr}
		if w.kw, err = produce.NewKafkaWriter(kc, produce.KafkaConfig{Topic: topic, Compression: "lz4", BatchBytes: cfg.Produce.BatchBytes}); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	svc, err := service.New(ctx, cfg, inv, w, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	fmt.Println("ready")
	err = svc.Run(ctx)
	json.NewEncoder(os.Stdout).Encode(map[string]int64{"flows": w.flows.Load()})
	return err
}

// --- measurement ---

type result struct {
	name       string
	flows      int64
	cpu        time.Duration
	sent       int64
	sentFlows  int64
	wall       time.Duration
	flowsPerCS float64
}

func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" of the command name: utime is the 14th field.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clk = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clk, nil
}

func freePort() (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// replay sends datagrams as fast as the socket takes them.
func replay(addr string, tpl []byte, data [][]byte, per int, d time.Duration) (sent, sentFlows int64, err error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	if tpl != nil {
		c.Write(tpl)
		time.Sleep(50 * time.Millisecond)
	}
	end := time.Now().Add(d)
	for i := 0; ; i++ {
		if i%1000 == 0 {
			if time.Now().After(end) {
				return sent, sentFlows, nil
			}
			if tpl != nil {
				c.Write(tpl)
			}
		}
		if _, err := c.Write(data[i%len(data)]); err == nil {
			sent++
			sentFlows += int64(per)
		}
	}
}

func runOurs(addr, kafka, proto string, d time.Duration) (result, error) {
	args := []string{"-serve-ours", addr}
	if kafka != "" {
		args = append(args, "-kafka", kafka, "-topic", fmt.Sprintf("flows-bench-%d", os.Getpid()))
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Process.Kill()
		return result{}, errors.New("our collector did not start")
	}
	r, err := measure(cmd.Process.Pid, addr, proto, d)
	if err != nil {
		cmd.Process.Kill()
		return r, err
	}
	cpu, _ := cpuTime(cmd.Process.Pid)
	cmd.Process.Signal(syscall.SIGTERM)
	var res map[string]int64
	if sc.Scan() {
		json.Unmarshal(sc.Bytes(), &res)
	}
	cmd.Wait()
	r.name, r.flows, r.cpu = "flowsentry", res["flows"], cpu
	if kafka != "" {
		r.name = "flowsentry+kafka"
	}
	return r, nil
}

func measure(pid int, addr, proto string, d time.Duration) (result, error) {
	tpl, data, per, err := datagrams(proto)
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	sent, sentFlows, err := replay(addr, tpl, data, per, d)
	time.Sleep(time.Second) // let the receiver finish what it has
	return result{sent: sent, sentFlows: sentFlows, wall: time.Since(start)}, err
}

func runGoflow2(bin, addr, proto string, d time.Duration) (result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	scheme := "netflow"
	if proto == "sflow" {
		scheme = "sflow"
	}
	cmd := exec.Command(bin, "-listen", fmt.Sprintf("%s://127.0.0.1:%s?count=1&workers=1&blocking=true", scheme, port),
		"-format", "bin", "-transport", "file", "-transport.file", "/dev/null", "-transport.file.sep", "",
		"-addr", httpAddr, "-loglevel", "error")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	for i := 0; i < 100; i++ {
		if _, err := http.Get("http://" + httpAddr + "/metrics"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r, err := measure(cmd.Process.Pid, addr, proto, d)
	if err != nil {
		return r, err
	}
	r.cpu, _ = cpuTime(cmd.Process.Pid)
	r.name = "goflow2"
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if (strings.HasPrefix(l, "goflow2_flow_process_nf_flowset_records_total{") && strings.Contains(l, `type="DataFlowSet"`)) ||
			(strings.HasPrefix(l, "goflow2_flow_process_sf_samples_total{") && strings.Contains(l, `type="FlowSample"`)) {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			r.flows += int64(v)
		}
	}
	return r, nil
}

func bench(d time.Duration, protos []string, dump, gf2, kafka string) error {
	if gf2 == "" {
		dir, err := os.MkdirTemp("", "collector-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		gf2 = filepath.Join(dir, "goflow2")
		b := exec.Command("go", "build", "-o", gf2, "github.com/netsampler/goflow2/v2/cmd/goflow2")
		b.Stderr = os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("building goflow2: %w", err)
		}
	}
	if kafka != "" {
		// A unique topic, deleted at the end, like the integration tests.
		name := fmt.Sprintf("flows-bench-%d", os.Getpid())
		client := &kgo.Client{Addr: kgo.TCP(kafka), Timeout: 20 * time.Second}
		if _, err := client.CreateTopics(context.Background(), &kgo.CreateTopicsRequest{
			Topics: []kgo.TopicConfig{{Topic: name, NumPartitions: 8, ReplicationFactor: 1}}}); err != nil {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
		defer client.DeleteTopics(context.Background(), &kgo.DeleteTopicsRequest{Topics: []string{name}})
		time.Sleep(2 * time.Second) // leaders
	}
	fmt.Printf("collector-bench: %s per run, GOMAXPROCS of receivers = all %d CPUs; flows/s per core = flows / receiver CPU seconds\n", d, runtime.NumCPU())
	fmt.Printf("%-8s %-18s %12s %10s %14s %16s\n", "proto", "collector", "flows", "cpu", "flows/cpu-s", "sent flows/s")
	for _, p := range protos {
		if dump != "" {
			tpl, data, _, err := datagrams(p)
			if err != nil {
				return err
			}
			os.MkdirAll(filepath.Join(dump, p), 0o755)
			if tpl != nil {
				os.WriteFile(filepath.Join(dump, p, "templates.bin"), tpl, 0o644)
			}
			for i, b := range data {
				os.WriteFile(filepath.Join(dump, p, fmt.Sprintf("%03d.bin", i)), b, 0o644)
			}
		}
		var ours, theirs result
		var err error
		addr, _ := freePort()
		if ours, err = runOurs(addr, "", p, d); err != nil {
			return err
		}
		ours = report(p, ours)
		if kafka != "" {
			addr, _ = freePort()
			r, err := runOurs(addr, kafka, p, d)
			if err != nil {
				return err
			}
			report(p, r)
		}
		addr, _ = freePort()
		if theirs, err = runGoflow2(gf2, addr, p, d); err != nil {
			return err
		}
		theirs = report(p, theirs)
		fmt.Printf("%-8s ratio flowsentry/goflow2 (flows per CPU-second): %.2fx\n", p, ours.flowsPerCS/theirs.flowsPerCS)
	}
	return nil
}

// jsonResult is one printed result line, for -json.
type jsonResult struct {
	Protocol           string  `json:"protocol"`
	Collector          string  `json:"collector"`
	Flows              int64   `json:"flows"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	FlowsPerCPUSecond  float64 `json:"flows_per_cpu_second"`
	SentFlowsPerSecond float64 `json:"sent_flows_per_second"`
	WallSeconds        float64 `json:"wall_seconds"`
}

var results []jsonResult

func report(p string, r result) result {
	r.flowsPerCS = float64(r.flows) / r.cpu.Seconds()
	results = append(results, jsonResult{Protocol: p, Collector: r.name, Flows: r.flows, CPUSeconds: r.cpu.Seconds(),
		FlowsPerCPUSecond: r.flowsPerCS, SentFlowsPerSecond: float64(r.sentFlows) / r.wall.Seconds(), WallSeconds: r.wall.Seconds()})
	fmt.Printf("%-8s %-18s %12d %10s %14.0f %16.0f\n", p, r.name, r.flows, r.cpu.Round(10*time.Millisecond), r.flowsPerCS, float64(r.sentFlows)/r.wall.Seconds())
	return r
}
