// Package checkpoint saves and restores a target's detection state (learned
// baseline, hysteresis, open anomalies) on the compacted detector-state
// topic, so a restarted worker, or one handed a partition on rebalance,
// resumes without re-learning.
package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
	"google.golang.org/protobuf/proto"
)

// Key is the record key of a target: "<subnet>|in" or "<subnet>|out". The
// subnet part alone decides the partition (see Balancer).
func Key(subnet string, dir pb.Direction) string {
	if dir == pb.Direction_DIRECTION_OUTBOUND {
		return subnet + "|out"
	}
	return subnet + "|in"
}

// ParseKey splits a record key.
func ParseKey(key string) (subnet string, dir pb.Direction, err error) {
	i := strings.LastIndexByte(key, '|')
	if i <= 0 {
		return "", 0, fmt.Errorf("checkpoint: key %q has no direction", key)
	}
	switch key[i+1:] {
	case "in":
		return key[:i], pb.Direction_DIRECTION_INBOUND, nil
	case "out":
		return key[:i], pb.Direction_DIRECTION_OUTBOUND, nil
	}
	return "", 0, fmt.Errorf("checkpoint: key %q: direction %q is not in or out", key, key[i+1:])
}

// State is what a checkpoint record holds.
type State struct {
	Customer string
	Base     baseline.State
	Track    classify.Tracker
}

const version = 1

// Encode serialises s.
func Encode(s *State) ([]byte, error) {
	base, err := s.Base.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w := &writer{b: make([]byte, 0, len(base)+64)}
	w.u8(version)
	w.str(s.Customer)
	w.bytes(base)
	for _, f := range s.Track.Fam {
		w.u8(f.Above)
		w.u8(f.Below)
		w.i64(f.PendingNs)
		a := f.Active
		if a == nil {
			w.u8(0)
			continue
		}
		w.u8(1)
		w.str(a.ID)
		w.str(a.Class)
		w.u8(uint8(a.Metric))
		w.i64(a.StartNs)
		w.i64(a.LastNs)
		w.u32(a.Seq)
		w.u8(uint8(a.Severity))
		w.u32(a.Windows)
		for _, v := range []float64{a.PeakBps, a.PeakPps, a.PeakScore, a.TotalBytes, a.TotalPackets} {
			w.f64(v)
		}
		var fp []byte
		if a.Fingerprint != nil {
			if fp, err = proto.Marshal(a.Fingerprint); err != nil {
				return nil, err
			}
		}
		w.bytes(fp)
	}
	return w.b, nil
}

// Decode parses Encode's output; corrupt input is an error, never a panic.
func Decode(b []byte) (*State, error) {
	r := &reader{b: b}
	if v := r.u8(); v != version {
		return nil, fmt.Errorf("checkpoint: version %d, want %d", v, version)
	}
	s := &State{Customer: r.str()}
	base := r.bytes()
	if r.err != nil {
		return nil, r.err
	}
	if err := s.Base.UnmarshalBinary(base); err != nil {
		return nil, err
	}
	for i := range s.Track.Fam {
		f := &s.Track.Fam[i]
		f.Above, f.Below, f.PendingNs = r.u8(), r.u8(), r.i64()
		if r.u8() == 0 {
			continue
		}
		a := &classify.Anomaly{ID: r.str(), Class: r.str(), Metric: window.Metric(r.u8()), StartNs: r.i64(),
			LastNs: r.i64(), Seq: r.u32(), Severity: pb.Severity(r.u8()), Windows: r.u32()}
		a.PeakBps, a.PeakPps, a.PeakScore, a.TotalBytes, a.TotalPackets = r.f64(), r.f64(), r.f64(), r.f64(), r.f64()
		a.Last = classify.Verdict{Class: a.Class, Metric: a.Metric}
		if fp := r.bytes(); len(fp) > 0 && r.err == nil {
			a.Fingerprint = &pb.Fingerprint{}
			if err := proto.Unmarshal(fp, a.Fingerprint); err != nil {
				return nil, fmt.Errorf("checkpoint: fingerprint: %w", err)
			}
		}
		if a.Metric >= window.NumMetrics {
			return nil, fmt.Errorf("checkpoint: metric %d out of range", a.Metric)
		}
		f.Active = a
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("checkpoint: %d trailing bytes", len(r.b))
	}
	return s, nil
}

type writer struct{ b []byte }

func (w *writer) u8(v uint8)    { w.b = append(w.b, v) }
func (w *writer) u32(v uint32)  { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *writer) i64(v int64)   { w.b = binary.LittleEndian.AppendUint64(w.b, uint64(v)) }
func (w *writer) f64(v float64) { w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(v)) }
func (w *writer) bytes(v []byte) {
	w.b = binary.AppendUvarint(w.b, uint64(len(v)))
	w.b = append(w.b, v...)
}
func (w *writer) str(s string) { w.bytes([]byte(s)) }

var errShort = errors.New("checkpoint: record truncated")

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.err = errShort
		return make([]byte, max(n, 0))
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *reader) u8() uint8    { return r.take(1)[0] }
func (r *reader) u32() uint32  { return binary.LittleEndian.Uint32(r.take(4)) }
func (r *reader) i64() int64   { return int64(binary.LittleEndian.Uint64(r.take(8))) }
func (r *reader) f64() float64 { return math.Float64frombits(binary.LittleEndian.Uint64(r.take(8))) }
func (r *reader) bytes() []byte {
	if r.err != nil {
		return nil
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) {
		r.err = errShort
		return nil
	}
	r.b = r.b[k:]
	return r.take(int(n))
}
func (r *reader) str() string { return string(r.bytes()) }

// Record is one checkpoint message: Value nil is a tombstone (the target
// was forgotten). Partition is the flows partition the target lives on,
// which is also its detector-state partition.
type Record struct {
	Key       string
	Partition int32
	Value     []byte
}
