// Package config is the collector's YAML configuration: defaults, loading
// (strict: unknown keys are errors) and validation whose errors name the
// offending key.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/packetworks/flowsentry/collector/decode"
	"github.com/packetworks/flowsentry/collector/produce"
	schemacfg "github.com/packetworks/flowsentry/schemas/config"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/packetworks/flowsentry/schemas/topics"
)

// Config is the collector's configuration file.
type Config struct {
	// CollectorID goes into every FlowBatch (default: the hostname).
	CollectorID string `yaml:"collector_id"`
	LogLevel    string `yaml:"log_level"`
	// HTTPAddr serves /metrics, /healthz, /readyz and /debug/pprof.
	HTTPAddr  string     `yaml:"http_addr"`
	Listeners []Listener `yaml:"listeners"`
	// Inventory is the customer inventory file (schemas/inventory).
	Inventory string `yaml:"inventory"`
	// KeepUnprotected keeps flows where neither side is a protected
	// network (direction unknown, empty subnet key, all on one partition).
	// Default false: they are counted and dropped, since the detector only
	// watches protected networks.
	KeepUnprotected bool               `yaml:"keep_unprotected"`
	Templates       Templates          `yaml:"templates"`
	Sampling        Sampling           `yaml:"sampling"`
	Kafka           kafkaclient.Config `yaml:"kafka"`
	Produce         Produce            `yaml:"produce"`
}

// Listener is one UDP port.
type Listener struct {
	// Protocol is informational (metric label) and checked against what
	// arrives only in the metrics: every port decodes every protocol.
	Protocol   string `yaml:"protocol"` // netflow, ipfix or sflow
	Addr       string `yaml:"addr"`     // ":2055" listens on IPv4 and IPv6
	Network    string `yaml:"network"`  // udp (dual-stack), udp4, udp6
	Sockets    int    `yaml:"sockets"`
	ReadBuffer int    `yaml:"read_buffer"`
}

// Templates configures template state.
type Templates struct {
	StateFile    string        `yaml:"state_file"` // "" disables persistence
	SaveInterval time.Duration `yaml:"save_interval"`
	TTL          time.Duration `yaml:"ttl"`
	PendingSets  int           `yaml:"pending_sets"`
	PendingTTL   time.Duration `yaml:"pending_ttl"`
}

// Sampling configures rates for exporters that announce none.
type Sampling struct {
	DefaultRate uint64             `yaml:"default_rate"`
	Exporters   []ExporterSampling `yaml:"exporters"`
}

// ExporterSampling is one exporter's configured rate.
type ExporterSampling struct {
	Address string `yaml:"address"`
	Rate    uint64 `yaml:"rate"`
	Force   bool   `yaml:"force"` // also when the exporter announces a rate
}

// Produce configures the Kafka output.
type Produce struct {
	Topic           string        `yaml:"topic"`
	Compression     string        `yaml:"compression"`
	BatchBytes      int           `yaml:"batch_bytes"`
	Linger          time.Duration `yaml:"linger"`
	BufferBytes     int64         `yaml:"buffer_bytes"`
	Senders         int           `yaml:"senders"`
	Partitions      int           `yaml:"partitions"` // until metadata says otherwise
	MetadataRefresh time.Duration `yaml:"metadata_refresh"`
	WriteTimeout    time.Duration `yaml:"write_timeout"`
	DrainTimeout    time.Duration `yaml:"drain_timeout"`
}

// Default returns the defaults.
func Default() Config {
	host, _ := os.Hostname()
	return Config{
		CollectorID: host,
		LogLevel:    "info",
		HTTPAddr:    ":9102",
		Listeners: []Listener{
			{Protocol: "netflow", Addr: ":2055", Network: "udp", Sockets: 1, ReadBuffer: 8 << 20},
			{Protocol: "ipfix", Addr: ":4739", Network: "udp", Sockets: 1, ReadBuffer: 8 << 20},
			{Protocol: "sflow", Addr: ":6343", Network: "udp", Sockets: 1, ReadBuffer: 8 << 20},
		},
		Inventory: "/etc/flowsentry/inventory.yaml",
		Templates: Templates{StateFile: "/var/lib/flowsentry/collector-state.json", SaveInterval: 30 * time.Second,
			TTL: time.Hour, PendingSets: 64, PendingTTL: 30 * time.Second},
		Kafka: kafkaclient.Default(),
		Produce: Produce{Topic: topics.Flows, Compression: "lz4", BatchBytes: 128 << 10, Linger: 200 * time.Millisecond,
			BufferBytes: 256 << 20, Senders: 2, Partitions: 8, MetadataRefresh: 30 * time.Second,
			WriteTimeout: 10 * time.Second, DrainTimeout: 10 * time.Second},
	}
}

// Load reads path over the defaults and validates.
func Load(path string) (Config, error) {
	c := Default()
	if err := schemacfg.Load(path, &c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks every key; errors name it.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) { errs = append(errs, fmt.Errorf(key+": "+format, a...)) }
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http_addr", "%v", err)
	}
	if len(c.Listeners) == 0 {
		bad("listeners", "at least one listener is required")
	}
	seen := map[string]bool{}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		switch l.Protocol {
		case "netflow", "ipfix", "sflow":
		default:
			bad(key+".protocol", "%q is not netflow, ipfix or sflow", l.Protocol)
		}
		switch l.Network {
		case "udp", "udp4", "udp6":
		default:
			bad(key+".network", "%q is not udp, udp4 or udp6", l.Network)
		}
		if _, _, err := net.SplitHostPort(l.Addr); err != nil {
			bad(key+".addr", "%v", err)
		}
		if seen[l.Network+l.Addr] {
			bad(key+".addr", "%s is listed twice (use sockets for several sockets)", l.Addr)
		}
		seen[l.Network+l.Addr] = true
		if l.Sockets < 1 || l.Sockets > 64 {
			bad(key+".sockets", "%d is not in 1..64", l.Sockets)
		}
		if l.ReadBuffer < 0 {
			bad(key+".read_buffer", "negative")
		}
	}
	if c.Inventory == "" {
		bad("inventory", "required (the customer inventory file)")
	}
	t := c.Templates
	if t.StateFile != "" && t.SaveInterval <= 0 {
		bad("templates.save_interval", "must be positive")
	}
	if t.TTL < time.Minute {
		bad("templates.ttl", "%v is shorter than 1m (exporters resend templates every few minutes)", t.TTL)
	}
	if t.PendingSets < 1 || t.PendingSets > 10000 {
		bad("templates.pending_sets", "%d is not in 1..10000", t.PendingSets)
	}
	if t.PendingTTL <= 0 {
		bad("templates.pending_ttl", "must be positive")
	}
	for i, e := range c.Sampling.Exporters {
		key := fmt.Sprintf("sampling.exporters[%d]", i)
		if _, err := netip.ParseAddr(e.Address); err != nil {
			bad(key+".address", "%v", err)
		}
		if e.Rate == 0 {
			bad(key+".rate", "must be at least 1")
		}
	}
	if err := c.Kafka.Validate("kafka"); err != nil {
		errs = append(errs, err)
	}
	p := c.Produce
	if p.Topic == "" {
		bad("produce.topic", "required")
	}
	if _, err := produce.Codec(p.Compression); err != nil {
		bad("produce.compression", "%v", err)
	}
	if p.BatchBytes < 1024 || p.BatchBytes > 512<<10 {
		bad("produce.batch_bytes", "%d is not in 1024..524288 (Kafka's default message.max.bytes is 1 MiB)", p.BatchBytes)
	}
	if p.Linger <= 0 || p.Linger > 10*time.Second {
		bad("produce.linger", "%v is not in (0, 10s]", p.Linger)
	}
	if p.BufferBytes < int64(p.BatchBytes) {
		bad("produce.buffer_bytes", "%d is smaller than batch_bytes", p.BufferBytes)
	}
	if p.Senders < 1 || p.Senders > 64 {
		bad("produce.senders", "%d is not in 1..64", p.Senders)
	}
	if p.Partitions < 1 {
		bad("produce.partitions", "must be at least 1")
	}
	if p.MetadataRefresh <= 0 {
		bad("produce.metadata_refresh", "must be positive")
	}
	if p.WriteTimeout <= 0 {
		bad("produce.write_timeout", "must be positive")
	}
	if p.DrainTimeout < 0 {
		bad("produce.drain_timeout", "negative")
	}
	return errors.Join(errs...)
}

// DecodeConfig is the decoder's part.
func (c Config) DecodeConfig() decode.Config {
	dc := decode.Config{TemplateTTL: c.Templates.TTL, PendingSets: c.Templates.PendingSets,
		PendingTTL: c.Templates.PendingTTL, DefaultRate: c.Sampling.DefaultRate,
		Sampling: map[netip.Addr]decode.SamplingOverride{}}
	for _, e := range c.Sampling.Exporters {
		if a, err := netip.ParseAddr(e.Address); err == nil {
			dc.Sampling[a.Unmap()] = decode.SamplingOverride{Rate: e.Rate, Force: e.Force}
		}
	}
	return dc
}
