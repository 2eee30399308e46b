package decode

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/schemas/pb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite golden files (testdata/golden/*.json, generated *.bin)")

// goldenReceived is the receive time used for every golden datagram, so
// that the expected JSON is stable.
var goldenReceived = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// generated golden datagrams: written by flowgen with -update, then
// frozen. The softflowd-*.bin files were captured from Debian's softflowd
// 1.1.0 exporting a test pcap (see service/pcap_integration_test.go).
func generatedGolden() map[string][]byte {
	g := map[string][]byte{}
	fl := testFlows()
	g["flowgen-v5.bin"] = flowgen.NetFlowV5(flowgen.V5Header{Export: export, Boot: boot, Seq: 1, SamplingRate: 100}, fl)
	v9 := &flowgen.Encoder{Version: 9, Domain: 3, Boot: boot, SamplingRate: 1000}
	g["flowgen-v9.bin"] = v9.Datagram(export, fl)
	ipfix := &flowgen.Encoder{Version: 10, Domain: 4, Time: flowgen.TimeUptime, Boot: boot, SamplingRate: 512}
	g["flowgen-ipfix.bin"] = ipfix.Datagram(export, fl)
	g["flowgen-sflow.bin"] = flowgen.SFlow(flowgen.SFlowHeader{Agent: exporterAddr, Seq: 5, SamplingRate: 2048, Counters: true}, fl)
	return g
}

func TestGolden(t *testing.T) {
	if *update {
		for name, b := range generatedGolden() {
			if err := os.WriteFile(filepath.Join("testdata/golden", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob("testdata/golden/*.bin")
	if len(files) < 9 {
		t.Fatalf("only %d golden datagrams", len(files))
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".bin")
		t.Run(name, func(t *testing.T) {
			pkt, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			d := NewDecoder(NewState(Config{}, NewMetrics(nil)))
			batch := &pb.FlowBatch{Collector: name}
			if _, err := d.Decode(pkt, netip.MustParseAddr("127.0.0.1"), goldenReceived, HandlerFunc(func(f *pb.Flow) {
				batch.Flows = append(batch.Flows, proto.Clone(f).(*pb.Flow))
			})); err != nil {
				t.Fatal(err)
			}
			got, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(batch)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(path, ".bin") + ".json"
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			// protojson output is not byte-stable across versions: compare
			// the messages.
			wb := &pb.FlowBatch{}
			if err := protojson.Unmarshal(want, wb); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(wb, batch) {
				t.Errorf("decoded flows differ from %s (run go test -run TestGolden -update and review the diff)\n got: %s", golden, bytes.TrimSpace(got))
			}
		})
	}
}
