// Package topics names the Kafka topics of Flowsentry, their partition
// counts and the partitioning rule every producer must follow.
package topics

// Topic describes one Kafka topic of the pipeline.
type Topic struct {
	Name       string
	Partitions int
	// Compacted topics keep only the last value per key (checkpoints).
	Compacted bool
	// RetentionMs is the time-based retention (-1: forever, for compacted).
	RetentionMs int64
	Doc         string
}

const (
	Flows           = "flows"
	Anomalies       = "anomalies"
	Baselines       = "baselines"
	DetectorState   = "detector-state"
	FlowsDeadLetter = "flows-deadletter"
)

// All lists every topic with its defaults. Partition counts bound the
// parallelism of consumer groups: 8 flow partitions allow up to 8 detector
// workers. DetectorState has as many partitions as Flows so that a worker
// that owns flow partition p restores state from state partition p.
func All() []Topic {
	return []Topic{
		{Name: Flows, Partitions: 8, RetentionMs: 24 * 3600 * 1000,
			Doc: "pb.FlowBatch; key = subnet key of the batch's first flow; all flows of a batch hash to the same partition"},
		{Name: Anomalies, Partitions: 4, RetentionMs: 7 * 24 * 3600 * 1000,
			Doc: "pb.AnomalyEvent; key = anomaly id, so one anomaly's events stay in order"},
		{Name: Baselines, Partitions: 4, RetentionMs: 7 * 24 * 3600 * 1000,
			Doc: "pb.BaselineSnapshot; key = subnet key"},
		{Name: DetectorState, Partitions: 8, Compacted: true, RetentionMs: -1,
			Doc: "detector checkpoint per subnet key and direction; compacted; key = subnet key"},
		{Name: FlowsDeadLetter, Partitions: 1, RetentionMs: 30 * 24 * 3600 * 1000,
			Doc: "flows ClickHouse refused, with the error in header \"error\""},
	}
}

// Partition returns the partition of key among n partitions. It is Kafka's
// default partitioner (murmur2 of the key bytes, sign bit cleared, modulo n),
// the same as the Java client and kafka-go's Murmur2Balancer, so that any
// producer keyed by subnet agrees with ours.
func Partition(key []byte, n int) int {
	if n <= 0 {
		return 0
	}
	return int(murmur2(key)&0x7fffffff) % n
}

// murmur2 is the 32-bit MurmurHash2 variant Kafka uses (seed 0x9747b28c).
func murmur2(data []byte) uint32 {
	const (
		seed = uint32(0x9747b28c)
		m    = uint32(0x5bd1e995)
		r    = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	n := length / 4
	for i := 0; i < n; i++ {
		k := uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n*4:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
