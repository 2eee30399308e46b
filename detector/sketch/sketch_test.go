package sketch

import (
	"encoding/binary"
	"math"
	"net/netip"
	"testing"
)

func addr4(i uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, i)
	return b
}

func TestHLLEstimate(t *testing.T) {
	for _, tc := range []struct {
		n      int
		relErr float64
	}{
		{0, 0}, {1, 0.01}, {10, 0.1}, {100, 0.15}, {256, 0.15}, {1000, 0.2}, {50000, 0.2},
	} {
		var h HLL
		for i := 0; i < tc.n; i++ {
			h.Add(HashAddr(addr4(0xc6336400 + uint32(i))))
			h.Add(HashAddr(addr4(0xc6336400 + uint32(i)))) // duplicates must not count
		}
		got := h.Estimate()
		if tc.n == 0 {
			if got != 0 {
				t.Errorf("empty HLL estimate %v", got)
			}
			continue
		}
		if rel := math.Abs(got-float64(tc.n)) / float64(tc.n); rel > tc.relErr {
			t.Errorf("n=%d: estimate %.1f, relative error %.3f > %.3f", tc.n, got, rel, tc.relErr)
		}
	}
}

func TestHLLMerge(t *testing.T) {
	var a, b HLL
	for i := 0; i < 100; i++ {
		a.Add(HashPort(uint32(i), 1))
		b.Add(HashPort(uint32(i+50), 1))
	}
	a.Merge(&b)
	if got := a.Estimate(); got < 130 || got > 170 {
		t.Fatalf("union of 0..99 and 50..149: estimate %.1f, want about 150", got)
	}
}

func TestTopKHeavyHittersSurvive(t *testing.T) {
	tk := NewTopK[uint32](8)
	// Two heavy keys hidden among 1000 light ones.
	for i := 0; i < 1000; i++ {
		tk.Add(uint32(1000+i), 1, 100, 1)
		if i%10 == 0 {
			tk.Add(53, 50, 50000, 1)
			tk.Add(123, 20, 9000, 1)
		}
	}
	top := tk.Top(2)
	if len(top) != 2 || top[0].Key != 53 || top[1].Key != 123 {
		t.Fatalf("top = %+v, want 53 then 123", top)
	}
	if top[0].Packets-top[0].Err > 5000 || top[0].Packets < 5000 {
		t.Fatalf("count of 53: %v (err %v), true 5000", top[0].Packets, top[0].Err)
	}
	if f, ok := tk.First(); !ok || f.Key != 53 {
		t.Fatalf("First = %+v", f)
	}
	tk.Reset()
	if _, ok := tk.First(); ok {
		t.Fatal("reset sketch not empty")
	}
}

func TestEntropyOrdersSpread(t *testing.T) {
	cases := []struct {
		name     string
		distinct int
		min, max float64
	}{
		{"one source", 1, 0, 0.001},
		{"four sources", 4, 1.5, 2.01},
		{"random sources", 100000, 5.8, 6.01},
	}
	for _, tc := range cases {
		var e Entropy
		for i := 0; i < 100000; i++ {
			e.Add(HashAddr(addr4(uint32(i%tc.distinct)+7)), 1)
		}
		if b := e.Bits(); b < tc.min || b > tc.max {
			t.Errorf("%s: %.3f bits, want %.2f..%.2f", tc.name, b, tc.min, tc.max)
		}
	}
	var empty Entropy
	if empty.Bits() != 0 {
		t.Error("empty entropy not 0")
	}
}

func TestHashAddrOddLengthsDoNotPanic(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {1, 2, 3}, make([]byte, 16), make([]byte, 20)} {
		_ = HashAddr(b)
	}
	if HashAddr(addr4(1)) == HashAddr(addr4(2)) {
		t.Fatal("distinct addresses hash equal")
	}
}

func TestAddrKeyRoundTrip(t *testing.T) {
	for _, s := range []string{"203.0.113.7", "0.0.0.1", "2001:db8::1", "::ffff:1.2.3.4", "::1"} {
		a := netip.MustParseAddr(s)
		k := KeyOf(a.AsSlice())
		if got := k.Addr(); got != a.Unmap() && got != a {
			t.Errorf("%s -> %v -> %s", s, k, got)
		}
	}
	if KeyOf([]byte{1, 2}).Addr().IsValid() {
		t.Error("bad length gave a valid address")
	}
	if KeyOf(netip.MustParseAddr("10.0.0.1").AsSlice()) == KeyOf(netip.MustParseAddr("10.0.0.2").AsSlice()) {
		t.Error("distinct addresses, same key")
	}
}
