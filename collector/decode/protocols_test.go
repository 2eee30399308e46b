package decode

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newDecoder(cfg Config) (*Decoder, *State) {
	st := NewState(cfg, NewMetrics(nil))
	return NewDecoder(st), st
}

func TestNetFlowV5(t *testing.T) {
	flows := testFlows()[:3] // v5 is IPv4 only
	pkt := flowgen.NetFlowV5(flowgen.V5Header{Export: export, Boot: boot, Seq: 42, SamplingRate: 100}, flows)
	d, _ := newDecoder(Config{})
	got, err := collect(t, d, pkt)
	if err != nil {
		t.Fatal(err)
	}
	checkFlows(t, got, flows, time.Millisecond, true, 100)
	if got[0].SequenceNum != 42 || got[0].InIf != 3 || got[0].OutIf != 7 || got[0].SrcAs != 64500 || got[0].SrcNet != 24 {
		t.Errorf("header/record fields: %+v", got[0])
	}
}

func TestSFlow(t *testing.T) {
	for _, expanded := range []bool{false, true} {
		flows := testFlows()
		pkt := flowgen.SFlow(flowgen.SFlowHeader{Agent: exporterAddr, Seq: 9, SamplingRate: 512, Expanded: expanded, Counters: true}, flows)
		d, _ := newDecoder(Config{})
		got, err := collect(t, d, pkt)
		if err != nil {
			t.Fatal(err)
		}
		// One sample is one packet of Bytes/Packets bytes.
		want := make([]flowgen.Flow, len(flows))
		for i, f := range flows {
			f.Bytes, f.Packets = f.Bytes/f.Packets, 1
			want[i] = f
		}
		checkFlows(t, got, want, 0, false, 512)
		for i, g := range got {
			if g.TimeFlowStartNs != uint64(received.UnixNano()) || g.MaxPacketLength != uint32(want[i].Bytes) || g.InIf != flows[i].InIf {
				t.Errorf("flow %d (expanded %v): start %d max len %d in %d", i, expanded, g.TimeFlowStartNs, g.MaxPacketLength, g.InIf)
			}
		}
	}
}

func TestSampling(t *testing.T) {
	other := netip.MustParseAddr("192.0.2.99")
	cases := []struct {
		name string
		enc  flowgen.Encoder
		cfg  Config
		want uint64
	}{
		{"v9 IE34 options", flowgen.Encoder{Version: 9, SamplingRate: 1000}, Config{}, 1000},
		{"v9 sampler id 48/50", flowgen.Encoder{Version: 9, SamplingRate: 64, SamplerID: 3}, Config{}, 0},
		{"ipfix 305/306", flowgen.Encoder{Version: 10, Time: flowgen.TimeMillis, SamplingRate: 256}, Config{}, 256},
		{"none sent, override", flowgen.Encoder{Version: 9}, Config{Sampling: map[netip.Addr]SamplingOverride{exporterAddr: {Rate: 10}}}, 10},
		{"sent, override not forced", flowgen.Encoder{Version: 9, SamplingRate: 1000}, Config{Sampling: map[netip.Addr]SamplingOverride{exporterAddr: {Rate: 10}}}, 1000},
		{"sent, override forced", flowgen.Encoder{Version: 9, SamplingRate: 1000}, Config{Sampling: map[netip.Addr]SamplingOverride{exporterAddr: {Rate: 10, Force: true}}}, 10},
		{"other exporter's override ignored", flowgen.Encoder{Version: 9}, Config{Sampling: map[netip.Addr]SamplingOverride{other: {Rate: 10}}}, 0},
		{"default", flowgen.Encoder{Version: 9}, Config{DefaultRate: 2}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := c.enc
			e.Boot = boot
			d, _ := newDecoder(c.cfg)
			got, err := collect(t, d, e.Datagram(export, testFlows()))
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range got {
				if g.SamplingRate != c.want {
					t.Fatalf("rate %d, want %d", g.SamplingRate, c.want)
				}
			}
			if c.want == 0 {
				if n := testutil.ToFloat64(d.exp.m.noRate); n != float64(len(got)) {
					t.Errorf("no-rate counter %v, want %d", n, len(got))
				}
			}
		})
	}
}

// Records that carry their sampler id get that sampler's rate.
func TestSamplerIDInRecord(t *testing.T) {
	e := flowgen.Encoder{Version: 9, SamplingRate: 64, SamplerID: 3, Boot: boot}
	d, st := newDecoder(Config{})
	if _, err := collect(t, d, e.Templates(export)); err != nil {
		t.Fatal(err)
	}
	ex := st.exporter(exporterAddr)
	dm := ex.domains[domainKey{9, 0}]
	if dm == nil || dm.samplers[3] != 64 {
		t.Fatalf("sampler 3 not learned: %+v", dm)
	}
	if got := d.samplerRate(&header{}, dm, 3); got != 64 {
		t.Fatalf("sampler rate %d", got)
	}
}

func TestDataBeforeTemplate(t *testing.T) {
	e := flowgen.Encoder{Version: 10, Domain: 1, Time: flowgen.TimeMillis, Boot: boot}
	d, _ := newDecoder(Config{PendingSets: 2})
	data := e.Data(export, testFlows())
	got, err := collect(t, d, data)
	if err != nil || len(got) != 0 {
		t.Fatalf("before template: %d flows, err %v", len(got), err)
	}
	if m := testutil.ToFloat64(d.exp.m.misses); m != 2 { // v4 and v6 sets
		t.Fatalf("template misses %v, want 2", m)
	}
	// A third set does not fit the hold buffer: counted, not kept.
	_, err = collect(t, d, e.Data(export, testFlows()[:1]))
	var de *Error
	if !errors.As(err, &de) || de.Reason != ReasonPendingDrop {
		t.Fatalf("want pending_full error, got %v", err)
	}
	// The template arrives: the held sets decode exactly as if in order.
	got, err = collect(t, d, e.Templates(export))
	if err != nil {
		t.Fatal(err)
	}
	checkFlows(t, got, testFlows(), 0, true, 0)
}

func TestPendingExpire(t *testing.T) {
	e := flowgen.Encoder{Version: 9, Boot: boot}
	d, st := newDecoder(Config{PendingTTL: time.Second})
	if _, err := collect(t, d, e.Data(export, testFlows())); err != nil {
		t.Fatal(err)
	}
	st.Expire(received.Add(2 * time.Second))
	if n := testutil.ToFloat64(d.exp.m.pendingExpired); n != 2 {
		t.Fatalf("expired %v, want 2", n)
	}
	got, _ := collect(t, d, e.Templates(export))
	if len(got) != 0 {
		t.Fatalf("expired sets decoded: %d flows", len(got))
	}
}

func TestStatePersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	e := flowgen.Encoder{Version: 10, Domain: 5, Time: flowgen.TimeUptime, Boot: boot, SamplingRate: 100}
	d, st := newDecoder(Config{})
	if _, err := collect(t, d, e.Templates(export)); err != nil {
		t.Fatal(err)
	}
	if !st.Dirty() {
		t.Fatal("state not dirty after templates")
	}
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	// "Restart": a fresh state loaded from the file decodes data sets
	// (templates, sampling rate and IE 160 all restored).
	d2, st2 := newDecoder(Config{})
	if err := st2.Load(path, received); err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, d2, e.Data(export, testFlows()))
	if err != nil {
		t.Fatal(err)
	}
	checkFlows(t, got, testFlows(), time.Millisecond, true, 100)
	// Loaded after the TTL: nothing survives.
	_, st3 := newDecoder(Config{TemplateTTL: time.Minute})
	if err := st3.Load(path, received.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if len(st3.exporters[exporterAddr].domains) != 0 {
		t.Errorf("expired state loaded: %+v", st3.exporters[exporterAddr].domains)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := st3.Load(path, received); err == nil {
		t.Error("corrupt state file loaded without error")
	}
}

func TestTemplateExpiry(t *testing.T) {
	e := flowgen.Encoder{Version: 9, Boot: boot}
	d, st := newDecoder(Config{TemplateTTL: time.Minute})
	if _, err := collect(t, d, e.Templates(export)); err != nil {
		t.Fatal(err)
	}
	st.Expire(received.Add(30 * time.Second))
	if got, _ := collect(t, d, e.Data(export, testFlows())); len(got) != 4 {
		t.Fatalf("before TTL: %d flows", len(got))
	}
	st.Expire(received.Add(2 * time.Minute))
	if got, _ := collect(t, d, e.Data(export, testFlows())); len(got) != 0 {
		t.Fatalf("after TTL: %d flows decoded with an expired template", len(got))
	}
}

func TestTemplateWithdrawal(t *testing.T) {
	e := flowgen.Encoder{Version: 10, Time: flowgen.TimeMillis, Boot: boot}
	d, _ := newDecoder(Config{})
	collect(t, d, e.Templates(export))
	// IPFIX withdrawal: template set with template 256 and field count 0.
	w := []byte{0, 10, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 8, 1, 0, 0, 0}
	binary.BigEndian.PutUint32(w[4:], uint32(export.Unix()))
	if _, err := collect(t, d, w); err != nil {
		t.Fatal(err)
	}
	got, _ := collect(t, d, e.Data(export, testFlows()))
	if len(got) != 1 { // only the IPv6 flow (template 257) still decodes
		t.Fatalf("after withdrawal of 256: %d flows, want 1", len(got))
	}
}

func TestMalformed(t *testing.T) {
	e := flowgen.Encoder{Version: 9, Boot: boot}
	good := e.Datagram(export, testFlows())
	v5 := flowgen.NetFlowV5(flowgen.V5Header{Export: export, Boot: boot}, testFlows())
	sf := flowgen.SFlow(flowgen.SFlowHeader{Agent: exporterAddr, SamplingRate: 1, Expanded: true}, testFlows()[:1])
	hugeV5 := append([]byte(nil), v5...)
	binary.BigEndian.PutUint16(hugeV5[2:], 65535)
	hugeSF := append([]byte(nil), sf...)
	// datagram header 28 + sample header 8, then 40 bytes into the sample.
	binary.BigEndian.PutUint32(hugeSF[28+8+40:], 0xffffffff)
	// A template whose fields are all zero-length would loop forever.
	zeroTpl := []byte{0, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 16, 1, 0, 0, 2, 0, 8, 0, 0, 0, 12, 0, 0}
	cases := []struct {
		name   string
		pkt    []byte
		reason string
	}{
		{"empty", nil, ReasonShort},
		{"unknown version", []byte{0, 7, 0, 0, 0, 0}, ReasonVersion},
		{"v9 truncated header", good[:10], ReasonMalformed},
		{"v5 huge count", hugeV5, ReasonCount},
		{"v5 short", v5[:20], ReasonShort},
		{"sflow expanded huge record count", hugeSF, ReasonCount},
		{"sflow truncated", sf[:40], ReasonCount},
		{"zero-length template", zeroTpl, ReasonTemplate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			d := NewDecoder(NewState(Config{}, NewMetrics(reg)))
			_, err := d.Decode(c.pkt, exporterAddr, received, HandlerFunc(func(*pb.Flow) {}))
			var de *Error
			if !errors.As(err, &de) || de.Reason != c.reason {
				t.Fatalf("error %v, want reason %s", err, c.reason)
			}
			if n := testutil.ToFloat64(d.exp.m.errs[c.reason]); n != 1 {
				t.Errorf("counter %s = %v, want 1", c.reason, n)
			}
		})
	}
	// A truncated data set: the records before the cut are still decoded.
	d, _ := newDecoder(Config{})
	got, _ := collect(t, d, good[:len(good)-30])
	if len(got) == 0 || len(got) >= 4 {
		t.Errorf("truncated datagram: %d flows", len(got))
	}
}

// A template of thousands of empty fields must not multiply the work per
// data byte (CPU exhaustion with one datagram).
func TestEmptyFieldsTemplateIsCheap(t *testing.T) {
	empty := 8000
	b := []byte{0, 9, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	tl := 4 + 4 + 4*(empty+1)
	b = append(b, 0, 0, byte(tl>>8), byte(tl), 1, 0, byte((empty+1)>>8), byte(empty+1))
	for i := 0; i < empty; i++ {
		b = append(b, 0, 1, 0, 0) // IN_BYTES of length 0
	}
	b = append(b, 0, 4, 0, 1) // PROTOCOL, 1 byte
	data := make([]byte, 20000)
	b = append(b, 1, 0, byte((len(data)+4)>>8), byte(len(data)+4))
	b = append(b, data...)
	d, st := newDecoder(Config{})
	start := time.Now()
	n, err := d.Decode(b, exporterAddr, received, HandlerFunc(func(*pb.Flow) {}))
	if err != nil || n != len(data) {
		t.Fatalf("%d flows, err %v", n, err)
	}
	if ops := len(st.exporter(exporterAddr).domains[domainKey{9, 0}].templates[256].ops); ops != 1 {
		t.Errorf("compiled template has %d ops, want 1 (empty fields dropped)", ops)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("took %v", el)
	}
}
