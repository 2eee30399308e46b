package dispatch

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/route"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// BenchmarkHandleUpdate: applying an UPDATE to one of 1000 open incidents
// (the steady state: detectors update every window).
func BenchmarkHandleUpdate(b *testing.B) {
	tree, _ := route.Compile(route.Config{Receiver: "r", GroupBy: []string{"customer"},
		Routes: []route.Config{{Matchers: []string{"severity=critical"}, Receiver: "r", Continue: true}}}, []string{"r"})
	e, err := New(Options{Config: DefaultConfig(), Tree: tree,
		Receivers: []*notify.Receiver{{Name: "r", Notifier: &notify.Slack{URL: "http://127.0.0.1:1/"}}},
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	const n = 1000
	for i := range n {
		e.Handle(&pb.AnomalyEvent{Id: fmt.Sprint("inc-", i), Kind: pb.AnomalyEvent_START, Customer: fmt.Sprint("c", i%50),
			Subnet: "10.0.0.0/24", Class: "syn_flood", Severity: pb.Severity_SEVERITY_CRITICAL})
	}
	b.ResetTimer()
	for i := range b.N {
		e.Handle(&pb.AnomalyEvent{Id: fmt.Sprint("inc-", i%n), Kind: pb.AnomalyEvent_UPDATE, Seq: uint32(i/n + 1),
			Customer: fmt.Sprint("c", i%n%50), Subnet: "10.0.0.0/24", Class: "syn_flood", Severity: pb.Severity_SEVERITY_CRITICAL,
			UpdatedAtNs: uint64(time.Now().UnixNano())})
	}
}
