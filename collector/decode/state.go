package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// State holds what exporters told us and must be remembered between
// datagrams: templates, sampling rates, system init times and data sets
// waiting for their template, per exporter address and observation domain.
// It is shared by every decoder (one per socket) and safe for concurrent
// use. Persisted to a JSON file so that a restart does not lose the
// templates, which some exporters resend only every few minutes.
type State struct {
	cfg     Config
	metrics *Metrics

	mu        sync.RWMutex
	exporters map[netip.Addr]*exporter
	dirty     atomic.Bool
}

type domainKey struct {
	version uint16 // 9 or 10
	id      uint32
}

type exporter struct {
	addr netip.Addr
	m    *exporterMetrics

	mu      sync.RWMutex
	domains map[domainKey]*domain
}

type domain struct {
	templates map[uint16]*template
	// Sampling learned from options records: rate is the exporter-wide
	// 1-in-N rate; samplers maps a sampler/selector id to its rate.
	rate      uint64
	samplers  map[uint64]uint64
	sysInitMs uint64 // IPFIX systemInitTimeMilliseconds (IE 160)
	lastSeen  int64
	pending   []pendingSet
}

// pendingSet is a data set that arrived before its template.
type pendingSet struct {
	templateID uint16
	data       []byte
	hdr        header
}

// NewState returns an empty state.
func NewState(cfg Config, m *Metrics) *State {
	return &State{cfg: cfg.withDefaults(), metrics: m, exporters: map[netip.Addr]*exporter{}}
}

func (s *State) exporter(addr netip.Addr) *exporter {
	s.mu.RLock()
	e := s.exporters[addr]
	s.mu.RUnlock()
	if e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e = s.exporters[addr]; e == nil {
		e = &exporter{addr: addr, domains: map[domainKey]*domain{}, m: s.metrics.exporter(addr, len(s.exporters) >= s.cfg.MaxExporters)}
		s.exporters[addr] = e
	}
	return e
}

// domain returns the domain, creating it; the caller holds e.mu for writing.
func (e *exporter) domainLocked(k domainKey) *domain {
	d := e.domains[k]
	if d == nil {
		d = &domain{templates: map[uint16]*template{}, samplers: map[uint64]uint64{}}
		e.domains[k] = d
	}
	return d
}

// Expire forgets templates, sampling and domains unseen for the TTL and
// pending data sets older than PendingTTL. Run it periodically.
func (s *State) Expire(now time.Time) {
	cut := now.Add(-s.cfg.TemplateTTL).UnixNano()
	pcut := now.Add(-s.cfg.PendingTTL).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, e := range s.exporters {
		e.mu.Lock()
		for k, d := range e.domains {
			for id, t := range d.templates {
				if t.LastSeen < cut {
					delete(d.templates, id)
					s.dirty.Store(true)
				}
			}
			kept := d.pending[:0]
			for _, p := range d.pending {
				if p.hdr.received >= pcut {
					kept = append(kept, p)
				} else {
					e.m.pendingExpired.Inc()
				}
			}
			d.pending = kept
			if d.lastSeen < cut {
				delete(e.domains, k)
				s.dirty.Store(true)
			}
		}
		empty := len(e.domains) == 0
		e.mu.Unlock()
		if empty {
			delete(s.exporters, addr)
		}
	}
}

// stateFile is the JSON layout of the persisted state.
type stateFile struct {
	Version   int              `json:"version"`
	Exporters []exporterRecord `json:"exporters"`
}

type exporterRecord struct {
	Address string         `json:"address"`
	Domains []domainRecord `json:"domains"`
}

type domainRecord struct {
	NetFlowVersion uint16            `json:"netflow_version"`
	Domain         uint32            `json:"domain"`
	Rate           uint64            `json:"sampling_rate,omitempty"`
	Samplers       map[string]uint64 `json:"samplers,omitempty"`
	SysInitMs      uint64            `json:"system_init_ms,omitempty"`
	LastSeen       int64             `json:"last_seen"`
	Templates      []*template       `json:"templates"`
}

// Dirty reports whether the state changed since the last Save.
func (s *State) Dirty() bool { return s.dirty.Load() }

// Save writes the state to path atomically (temp file + rename), mode 0600:
// templates reveal the network's layout.
func (s *State) Save(path string) error {
	s.dirty.Store(false)
	f := stateFile{Version: 1}
	s.mu.RLock()
	for addr, e := range s.exporters {
		er := exporterRecord{Address: addr.String()}
		e.mu.RLock()
		for k, d := range e.domains {
			dr := domainRecord{NetFlowVersion: k.version, Domain: k.id, Rate: d.rate, SysInitMs: d.sysInitMs, LastSeen: d.lastSeen}
			if len(d.samplers) > 0 {
				dr.Samplers = map[string]uint64{}
				for id, r := range d.samplers {
					dr.Samplers[fmt.Sprint(id)] = r
				}
			}
			for _, t := range d.templates {
				dr.Templates = append(dr.Templates, t)
			}
			sort.Slice(dr.Templates, func(i, j int) bool { return dr.Templates[i].ID < dr.Templates[j].ID })
			er.Domains = append(er.Domains, dr)
		}
		e.mu.RUnlock()
		sort.Slice(er.Domains, func(i, j int) bool {
			a, b := er.Domains[i], er.Domains[j]
			return a.NetFlowVersion < b.NetFlowVersion || (a.NetFlowVersion == b.NetFlowVersion && a.Domain < b.Domain)
		})
		f.Exporters = append(f.Exporters, er)
	}
	s.mu.RUnlock()
	sort.Slice(f.Exporters, func(i, j int) bool { return f.Exporters[i].Address < f.Exporters[j].Address })
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// Load reads a state file written by Save. A missing file is not an error
// (first start). Expired entries and templates that do not compile are
// skipped.
func (s *State) Load(path string, now time.Time) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if f.Version != 1 {
		return fmt.Errorf("state file %s: unknown version %d", path, f.Version)
	}
	cut := now.Add(-s.cfg.TemplateTTL).UnixNano()
	for _, er := range f.Exporters {
		addr, err := netip.ParseAddr(er.Address)
		if err != nil {
			return fmt.Errorf("state file %s: exporter %q: %w", path, er.Address, err)
		}
		e := s.exporter(addr)
		e.mu.Lock()
		for _, dr := range er.Domains {
			if dr.LastSeen < cut {
				continue
			}
			d := e.domainLocked(domainKey{dr.NetFlowVersion, dr.Domain})
			d.rate, d.sysInitMs, d.lastSeen = dr.Rate, dr.SysInitMs, dr.LastSeen
			for id, r := range dr.Samplers {
				var n uint64
				if _, err := fmt.Sscan(id, &n); err == nil {
					d.samplers[n] = r
				}
			}
			for _, t := range dr.Templates {
				if t == nil || t.LastSeen < cut || compile(t) != nil {
					continue
				}
				d.templates[t.ID] = t
			}
		}
		e.mu.Unlock()
	}
	return nil
}
