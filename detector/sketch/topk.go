package sketch

// Item is one heavy hitter of a TopK.
type Item[K comparable] struct {
	Key     K
	Packets float64 // weight the ranking uses (overestimate, see Err)
	Bytes   float64
	Flows   float64
	// Err bounds the overestimate of Packets: what the evicted counter held.
	Err float64
}

// TopK is a weighted space-saving sketch (Metwally et al. 2005): k counters;
// a new key takes over the smallest counter and inherits its count as error.
// Every key whose true weight exceeds total/k is guaranteed to be present.
// k is small (8-16), so a linear scan beats a map.
type TopK[K comparable] struct {
	items []Item[K]
	k     int
	minI  int
}

// NewTopK returns an empty sketch of k counters.
func NewTopK[K comparable](k int) *TopK[K] {
	if k < 1 {
		k = 1
	}
	return &TopK[K]{items: make([]Item[K], 0, k), k: k}
}

// Add adds weight (packets) for key with its bytes and flows.
func (t *TopK[K]) Add(key K, packets, bytes, flows float64) {
	for i := range t.items {
		if it := &t.items[i]; it.Key == key {
			it.Packets += packets
			it.Bytes += bytes
			it.Flows += flows
			if i == t.minI {
				t.findMin()
			}
			return
		}
	}
	if len(t.items) < t.k {
		t.items = append(t.items, Item[K]{Key: key, Packets: packets, Bytes: bytes, Flows: flows})
		t.findMin()
		return
	}
	it := &t.items[t.minI]
	*it = Item[K]{Key: key, Packets: it.Packets + packets, Bytes: bytes, Flows: flows, Err: it.Packets}
	t.findMin()
}

// findMin caches the index of the smallest counter: hits on other keys
// (the common case for heavy hitters) then need one pass, not two.
func (t *TopK[K]) findMin() {
	m := 0
	for i := 1; i < len(t.items); i++ {
		if t.items[i].Packets < t.items[m].Packets {
			m = i
		}
	}
	t.minI = m
}

// Reset empties the sketch, keeping its memory.
func (t *TopK[K]) Reset() { t.items, t.minI = t.items[:0], 0 }

// Top returns up to n items, heaviest first (a copy).
func (t *TopK[K]) Top(n int) []Item[K] {
	out := make([]Item[K], len(t.items))
	copy(out, t.items)
	// Insertion sort: k is tiny.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Packets > out[j-1].Packets; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if n >= 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// First returns the heaviest item, ok false when empty.
func (t *TopK[K]) First() (Item[K], bool) {
	var best Item[K]
	ok := false
	for _, it := range t.items {
		if !ok || it.Packets > best.Packets {
			best, ok = it, true
		}
	}
	return best, ok
}
