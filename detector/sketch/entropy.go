package sketch

import (
	"math"

	"gonum.org/v1/gonum/stat"
)

// EntropyBuckets is the number of hashed histogram bins: the estimate can
// reach log2(64) = 6 bits, enough to separate "one source" (0), "a few"
// (1-3) and "random spoofed sources" (close to 6).
const EntropyBuckets = 64

// Entropy estimates the Shannon entropy of a weighted item stream from a
// hashed histogram. Collisions merge items, so it underestimates large
// entropies, but it is monotone in how spread the traffic is, which is what
// classification needs, in a fixed 256 B.
type Entropy struct {
	bins  [EntropyBuckets]float32
	total float64
}

// Add adds weight w for a hashed item.
func (e *Entropy) Add(x uint64, w float64) {
	e.bins[x%EntropyBuckets] += float32(w)
	e.total += w
}

// Reset empties the sketch.
func (e *Entropy) Reset() { *e = Entropy{} }

// Bits returns the entropy estimate in bits (0 when empty).
func (e *Entropy) Bits() float64 {
	if e.total <= 0 {
		return 0
	}
	p := make([]float64, EntropyBuckets)
	for i, b := range e.bins {
		p[i] = float64(b) / e.total
	}
	return stat.Entropy(p) / math.Ln2
}
