// Package dedup is the consumer side of the collector's application-level
// idempotence: kafka-go has no idempotent producer, so a FlowBatch whose
// acknowledgement was lost is written to Kafka again, byte for byte. Every
// batch carries its producer's random id and a sequence number
// (FlowBatch.producer_id, sequence); a Window remembers, per Kafka partition
// and producer, which sequences it has seen and tells a re-sent copy from a
// new batch, the way a Kafka broker checks (producer id, sequence) for an
// idempotent producer.
//
// Sequences of one partition may arrive out of order (the collector writes
// with several concurrent senders, and a retried batch comes after the
// batches sent meanwhile), so the window is a set of recently seen
// sequences, not "at most the highest seen". It keeps the highest
// Config.Window sequences per (partition, producer); a sequence below them
// cannot be judged (TooOld) and is delivered, counted by the caller: the
// bound errs towards a possible duplicate, never towards losing a batch.
//
// Shared by the sink (alerter/sink) and the detector (detector/worker), so
// both drop the same copies.
package dedup

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Origin identifies a batch: its producer and its sequence.
type Origin struct {
	Producer uint64
	Sequence uint64
}

// FlowBatch field numbers (schemas/proto/flow.proto).
const (
	fieldProducerID = 3
	fieldSequence   = 4
)

// Peek reads a FlowBatch's origin from its encoded bytes without decoding
// its flows (a consumer that only needs the origin skips over them). A
// batch of an older collector has no origin: Producer 0.
func Peek(value []byte) (Origin, error) {
	var o Origin
	for b := value; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Origin{}, fmt.Errorf("FlowBatch: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == fieldProducerID && typ == protowire.Fixed64Type:
			o.Producer, n = protowire.ConsumeFixed64(b)
		case num == fieldSequence && typ == protowire.VarintType:
			o.Sequence, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return Origin{}, fmt.Errorf("FlowBatch field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return o, nil
}

// Config bounds a Window. It is a YAML section of the sink and the detector.
type Config struct {
	// Window is how many sequences are remembered per partition and
	// producer (8 bytes each). It must cover how far behind its original a
	// re-sent copy can land: the batches of that partition the collector
	// delivers while the copy waits to be retried. The default is the
	// collector's default queue length (16384 batches) on one partition.
	Window int `yaml:"window"`
	// Producers is how many producers (collector processes) are remembered
	// per partition; beyond it the longest idle one is forgotten. Every
	// collector restart is a new producer.
	Producers int `yaml:"producers"`
}

// DefaultConfig is the documented default.
func DefaultConfig() Config { return Config{Window: 16384, Producers: 64} }

// Validate names the bad key under prefix (e.g. "consumer.dedup").
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Window < 64 || c.Window > 1<<22 {
		errs = append(errs, fmt.Errorf("%s.window: %d is not in 64..4194304", prefix, c.Window))
	}
	if c.Producers < 1 || c.Producers > 4096 {
		errs = append(errs, fmt.Errorf("%s.producers: %d is not in 1..4096", prefix, c.Producers))
	}
	return errors.Join(errs...)
}

// Verdict is what a Window says about one batch.
type Verdict int

const (
	// New: first copy seen; deliver it.
	New Verdict = iota
	// Duplicate: this (partition, producer, sequence) was seen; drop it.
	Duplicate
	// Unidentified: no producer id (an older collector); deliver, never
	// deduplicated.
	Unidentified
	// TooOld: below the sequences the window still holds for this
	// producer; it may be a copy of a forgotten batch or a late original.
	// Deliver it (and count it): losing a batch is worse than a duplicate.
	TooOld
)

func (v Verdict) String() string {
	switch v {
	case New:
		return "new"
	case Duplicate:
		return "duplicate"
	case Unidentified:
		return "unidentified"
	case TooOld:
		return "too_old"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Window is the set of recently seen batches per (partition, producer).
// Not safe for concurrent use: each consumer goroutine that owns a
// partition (or a pipeline's single batcher) keeps its own.
type Window struct {
	cfg   Config
	parts map[int]map[uint64]*stream
	tick  uint64
}

// stream is one (partition, producer): the highest cfg.Window sequences
// seen, ascending. Every sequence above floor that was seen is in seqs.
type stream struct {
	seqs    []uint64
	floor   uint64 // highest sequence evicted; valid when evicted
	evicted bool
	used    uint64 // Window.tick of the last Observe
}

// NewWindow returns an empty window; a zero field of cfg takes its default.
func NewWindow(cfg Config) *Window {
	def := DefaultConfig()
	if cfg.Window <= 0 {
		cfg.Window = def.Window
	}
	if cfg.Producers <= 0 {
		cfg.Producers = def.Producers
	}
	return &Window{cfg: cfg, parts: map[int]map[uint64]*stream{}}
}

// Observe judges the batch o read from partition and remembers it.
func (w *Window) Observe(partition int, o Origin) Verdict {
	if o.Producer == 0 {
		return Unidentified
	}
	ps := w.parts[partition]
	if ps == nil {
		ps = map[uint64]*stream{}
		w.parts[partition] = ps
	}
	s := ps[o.Producer]
	if s == nil {
		if len(ps) >= w.cfg.Producers {
			w.evictIdlest(ps)
		}
		s = &stream{}
		ps[o.Producer] = s
	}
	w.tick++
	s.used = w.tick
	i, found := slices.BinarySearch(s.seqs, o.Sequence)
	if found {
		return Duplicate
	}
	if s.evicted && o.Sequence <= s.floor {
		return TooOld
	}
	if i == len(s.seqs) {
		s.seqs = append(s.seqs, o.Sequence) // the usual case: in order
	} else {
		s.seqs = slices.Insert(s.seqs, i, o.Sequence)
	}
	if len(s.seqs) > w.cfg.Window {
		s.floor, s.evicted = s.seqs[0], true
		// Reslicing forward: append reallocates once the capacity is used
		// up, which drops the evicted prefix (amortised O(1)).
		s.seqs = s.seqs[1:]
	}
	return New
}

func (w *Window) evictIdlest(ps map[uint64]*stream) {
	var idlest uint64
	oldest := ^uint64(0)
	for p, s := range ps {
		if s.used < oldest {
			idlest, oldest = p, s.used
		}
	}
	delete(ps, idlest)
}

// Forget drops what the window knows about partition (it was revoked: a
// later owner may have delivered batches this one never saw).
func (w *Window) Forget(partition int) { delete(w.parts, partition) }

// Producers is how many producers the window remembers for partition.
func (w *Window) Producers(partition int) int { return len(w.parts[partition]) }
