// Package service wires the collector together: sockets -> decode ->
// normalise -> produce, one pipeline per socket goroutine sharing the
// template state and the Kafka producer; plus the background jobs (state
// persistence, template expiry, partition metadata).
package service

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/packetworks/flowsentry/collector/config"
	"github.com/packetworks/flowsentry/collector/decode"
	"github.com/packetworks/flowsentry/collector/listen"
	"github.com/packetworks/flowsentry/collector/normalise"
	"github.com/packetworks/flowsentry/collector/produce"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/prometheus/client_golang/prometheus"
)

// Service is a running collector.
type Service struct {
	cfg      config.Config
	log      *slog.Logger
	state    *decode.State
	producer *produce.Producer
	writer   produce.Writer
	sockets  []*listen.Socket
	workers  []*worker
	decM     *decode.Metrics
	normM    *normalise.Metrics
	inv      *inventory.Inventory
}

// New builds the service and opens its sockets (so that Addrs is known
// before Run). w is the Kafka writer (tests may pass a fake).
func New(ctx context.Context, cfg config.Config, inv *inventory.Inventory, w produce.Writer, reg prometheus.Registerer, log *slog.Logger) (*Service, error) {
	s := &Service{cfg: cfg, log: log, writer: w, inv: inv,
		decM: decode.NewMetrics(reg), normM: normalise.NewMetrics(reg)}
	s.state = decode.NewState(cfg.DecodeConfig(), s.decM)
	if cfg.Templates.StateFile != "" {
		if err := s.state.Load(cfg.Templates.StateFile, time.Now()); err != nil {
			// A damaged state file costs templates, not the collector.
			log.Warn("template state not loaded", "err", err)
		}
	}
	p := cfg.Produce
	s.producer = produce.New(produce.Config{Collector: cfg.CollectorID, BatchBytes: p.BatchBytes, Linger: p.Linger,
		BufferBytes: p.BufferBytes, Senders: p.Senders, Partitions: p.Partitions}, w, produce.NewMetrics(reg), log)
	lm := listen.NewMetrics(reg)
	for _, l := range cfg.Listeners {
		socks, err := listen.Open(ctx, listen.Config{Name: l.Protocol, Network: l.Network, Addr: l.Addr,
			Sockets: l.Sockets, ReadBuffer: l.ReadBuffer}, lm)
		if err != nil {
			s.closeSockets()
			return nil, err
		}
		s.sockets = append(s.sockets, socks...)
	}
	return s, nil
}

// Addrs returns the local address of every socket.
func (s *Service) Addrs() []netip.AddrPort {
	var a []netip.AddrPort
	for _, so := range s.sockets {
		a = append(a, so.Addr())
	}
	return a
}

// Ready is the readiness check.
func (s *Service) Ready() error { return s.producer.Healthy() }

// Producer exposes the producer (backlog, for tests and metrics).
func (s *Service) Producer() *produce.Producer { return s.producer }

func (s *Service) closeSockets() {
	for _, so := range s.sockets {
		so.Conn.Close()
	}
}

// worker is one socket's pipeline.
type worker struct {
	dec   *decode.Decoder
	norm  *normalise.Normaliser
	batch *produce.Batcher
}

func (w *worker) Datagram(pkt []byte, src netip.Addr, now time.Time) {
	// Errors are counted by the decoder, per exporter and reason.
	_, _ = w.dec.Decode(pkt, src, now, w.norm)
}

func (w *worker) Tick(now time.Time) time.Duration {
	w.batch.FlushOld(now)
	if w.batch.Pending() {
		return w.batch.Linger() / 2
	}
	return 0
}

// Run serves until ctx ends, then stops reading, flushes batches, drains
// the Kafka backlog (up to produce.drain_timeout) and saves the state.
func (s *Service) Run(ctx context.Context) error {
	prodCtx, stopProducer := context.WithCancel(context.Background())
	defer stopProducer()
	var prodDone sync.WaitGroup
	prodDone.Add(1)
	go func() { defer prodDone.Done(); s.producer.Run(prodCtx, s.cfg.Produce.DrainTimeout) }()
	go s.producer.RefreshPartitions(ctx, s.cfg.Produce.MetadataRefresh)

	var readers sync.WaitGroup
	for _, so := range s.sockets {
		w := &worker{dec: decode.NewDecoder(s.state), batch: s.producer.NewBatcher()}
		w.norm = normalise.New(s.inv, s.cfg.KeepUnprotected, s.normM, w.batch)
		s.workers = append(s.workers, w)
		readers.Add(1)
		go func(so *listen.Socket) {
			defer readers.Done()
			_ = so.Serve(w)
			w.batch.FlushAll() // same goroutine as Flow: no lock needed
		}(so)
		s.log.Info("listening", "addr", so.Addr().String())
	}
	go s.housekeeping(ctx)

	<-ctx.Done()
	s.closeSockets()
	readers.Wait()
	stopProducer()
	prodDone.Wait()
	var err error
	if s.cfg.Templates.StateFile != "" {
		err = s.state.Save(s.cfg.Templates.StateFile)
	}
	return errors.Join(err, s.writer.Close())
}

func (s *Service) housekeeping(ctx context.Context) {
	save := s.cfg.Templates.SaveInterval
	if save <= 0 {
		save = time.Minute
	}
	saveT := time.NewTicker(save)
	expireT := time.NewTicker(time.Minute / 4)
	defer saveT.Stop()
	defer expireT.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-expireT.C:
			s.state.Expire(now)
		case <-saveT.C:
			if s.cfg.Templates.StateFile != "" && s.state.Dirty() {
				if err := s.state.Save(s.cfg.Templates.StateFile); err != nil {
					s.log.Error("saving template state", "err", err)
				}
			}
		}
	}
}
