package decode

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/packetworks/flowsentry/collector/flowgen"
)

// TestWriteFuzzSeeds rewrites testdata/fuzz from the golden datagrams
// when run with -update.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the fuzz seeds")
	}
	bins, _ := filepath.Glob("testdata/golden/*.bin")
	write := func(fuzz, name string, args ...any) {
		dir := filepath.Join("testdata/fuzz", fuzz)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := "go test fuzz v1\n"
		for _, a := range args {
			switch a := a.(type) {
			case []byte:
				s += fmt.Sprintf("[]byte(%q)\n", a)
			case uint8:
				s += fmt.Sprintf("uint8(%d)\n", a)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bins {
		pkt, _ := os.ReadFile(b)
		name := filepath.Base(b)
		write("FuzzDecode", name, pkt)
		write("FuzzNetFlowData", name, pkt)
	}
	e := &flowgen.Encoder{Version: 9, Boot: boot, SamplingRate: 10}
	write("FuzzNetFlowData", "v9-data-only", e.Data(export, testFlows()))
	e = &flowgen.Encoder{Version: 10, Time: flowgen.TimeUptime, Boot: boot, SamplingRate: 10}
	write("FuzzNetFlowData", "ipfix-data-only", e.Data(export, testFlows()))
	for i, f := range testFlows() {
		write("FuzzPacketHeader", fmt.Sprintf("flow%d", i), uint8(1), flowgen.PacketHeader(f, 100))
	}
}
