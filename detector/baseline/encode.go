package baseline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/packetworks/flowsentry/detector/window"
)

// encodingVersion changes whenever the layout below does; a checkpoint of
// another version is rejected (and the target re-learns) rather than
// misread.
const encodingVersion = 1

// EncodedSize is the size of MarshalBinary's output.
const EncodedSize = 1 + 1 + 4 + int(window.NumMetrics)*8 + NumSeasonal*Slots*8 + Slots

// MarshalBinary encodes the state: version, metric count, N, cells, slot counts.
func (s *State) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, EncodedSize)
	b = append(b, encodingVersion, byte(window.NumMetrics))
	b = binary.LittleEndian.AppendUint32(b, s.N)
	put := func(c Cell) {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(c.Level))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(c.Spread))
	}
	for _, c := range s.Global {
		put(c)
	}
	for i := range s.Season {
		for _, c := range s.Season[i] {
			put(c)
		}
	}
	b = append(b, s.SlotN[:]...)
	return b, nil
}

// UnmarshalBinary decodes MarshalBinary's output; bad input is an error.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) != EncodedSize {
		return fmt.Errorf("baseline: state is %d bytes, want %d", len(b), EncodedSize)
	}
	if b[0] != encodingVersion || b[1] != byte(window.NumMetrics) {
		return fmt.Errorf("baseline: state version %d with %d metrics, want %d with %d", b[0], b[1], encodingVersion, window.NumMetrics)
	}
	var out State
	out.N = binary.LittleEndian.Uint32(b[2:])
	off := 6
	get := func() (Cell, error) {
		l := math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
		sp := math.Float32frombits(binary.LittleEndian.Uint32(b[off+4:]))
		off += 8
		if isBad(l) || isBad(sp) {
			return Cell{}, errors.New("baseline: state holds NaN or Inf")
		}
		return Cell{Level: l, Spread: sp}, nil
	}
	var err error
	for i := range out.Global {
		if out.Global[i], err = get(); err != nil {
			return err
		}
	}
	for i := range out.Season {
		for j := range out.Season[i] {
			if out.Season[i][j], err = get(); err != nil {
				return err
			}
		}
	}
	copy(out.SlotN[:], b[off:])
	*s = out
	return nil
}

func isBad(f float32) bool { return math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) }
