package topics

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

// Our partitioner must agree with kafka-go's Murmur2Balancer (which follows
// the Java client), or a subnet's flows would split across partitions
// depending on who produced them.
func TestPartitionMatchesKafkaGoMurmur2(t *testing.T) {
	b := kafka.Murmur2Balancer{}
	for _, n := range []int{1, 3, 8, 64} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for _, key := range []string{"", "a", "ab", "abc", "abcd", "203.0.113.0/24", "2001:db8:1::/64", "198.51.100.128/25"} {
			want := b.Balance(kafka.Message{Key: []byte(key)}, parts...)
			if got := Partition([]byte(key), n); got != want {
				t.Errorf("Partition(%q, %d) = %d, kafka-go says %d", key, n, got, want)
			}
		}
	}
}

func TestAllTopicsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, tp := range All() {
		if seen[tp.Name] {
			t.Fatalf("duplicate topic %q", tp.Name)
		}
		seen[tp.Name] = true
		if tp.Partitions < 1 {
			t.Fatalf("topic %q has %d partitions", tp.Name, tp.Partitions)
		}
	}
	var flows, state int
	for _, tp := range All() {
		switch tp.Name {
		case Flows:
			flows = tp.Partitions
		case DetectorState:
			state = tp.Partitions
		}
	}
	if flows != state {
		t.Fatalf("detector-state must have as many partitions as flows: %d != %d", state, flows)
	}
}
