// Package rows turns the pipeline's protobuf messages into ClickHouse rows
// for flowsentry.flows, alerts and baselines. Every value is checked against
// its column type here, before anything is sent: a value that does not fit
// is an error naming the field (the row goes to the dead-letter topic),
// never a silent truncation or a panic.
package rows

import (
	"fmt"
	"time"

	"github.com/packetworks/flowsentry/schemas/pb"
)

// maxDateTime is the last second a ClickHouse DateTime (UInt32) can hold.
var maxDateTime = time.Unix(1<<32-1, 0).UTC()

// Flow is one row of flowsentry.flows.
type Flow struct {
	TimeReceived        time.Time
	TimeFlowStart       time.Time
	TimeFlowEnd         time.Time
	FlowType            int8
	Exporter            string // 16 bytes, IPv6 form
	ObservationDomainID uint32
	SequenceNum         uint32
	SamplingRate        uint32
	InIf, OutIf         uint32
	SrcAddr, DstAddr    string // 16 bytes, IPv6 form
	SrcPort, DstPort    uint16
	Proto               uint8
	Etype               uint16
	TCPFlags            uint8
	IPTos               uint8
	ICMPType, ICMPCode  uint8
	FragmentOffset      uint16
	SrcAS, DstAS        uint32
	Bytes, Packets      uint64
	Customer, Subnet    string
	Direction           int8
	KafkaPartition      uint16
	KafkaOffset         uint64
	KafkaIndex          uint32
	// ProducerID and Sequence are the FlowBatch's identity (0: none): a
	// re-sent copy of the batch at another offset carries the same.
	ProducerID, Sequence uint64
}

// FlowColumns is the column list of every flows INSERT, in Flow's order.
// ClickHouse 18.16 needs it explicit (see NOTES.md).
const FlowColumns = "time_received, time_flow_start, time_flow_end, flow_type, exporter, observation_domain_id, " +
	"sequence_num, sampling_rate, in_if, out_if, src_addr, dst_addr, src_port, dst_port, proto, etype, tcp_flags, " +
	"ip_tos, icmp_type, icmp_code, fragment_offset, src_as, dst_as, bytes, packets, customer, subnet, direction, " +
	"kafka_partition, kafka_offset, kafka_index, producer_id, sequence"

// Day is the row's day partition (toYYYYMMDD(time_received)).
func (f *Flow) Day() int {
	y, m, d := f.TimeReceived.Date()
	return y*10000 + int(m)*100 + d
}

// FromFlow converts one flow of the Kafka message at (partition, offset),
// index being its position in the message's FlowBatch.
func FromFlow(f *pb.Flow, partition int, offset int64, index int) (Flow, error) {
	var r Flow
	var err error
	if partition < 0 || partition > 0xffff {
		return r, fmt.Errorf("kafka partition %d does not fit UInt16", partition)
	}
	if offset < 0 || index < 0 || uint64(index) > 0xffffffff {
		return r, fmt.Errorf("kafka offset %d / index %d out of range", offset, index)
	}
	r.KafkaPartition, r.KafkaOffset, r.KafkaIndex = uint16(partition), uint64(offset), uint32(index)

	// A flow without a receive time would land in 1970's partition and be
	// dropped by retention at once: refuse it instead.
	if f.GetTimeReceivedNs() == 0 {
		return r, fmt.Errorf("time_received_ns: missing")
	}
	if r.TimeReceived, err = dateTime("time_received_ns", f.GetTimeReceivedNs()); err != nil {
		return r, err
	}
	if r.TimeFlowStart, err = dateTime("time_flow_start_ns", f.GetTimeFlowStartNs()); err != nil {
		return r, err
	}
	if r.TimeFlowEnd, err = dateTime("time_flow_end_ns", f.GetTimeFlowEndNs()); err != nil {
		return r, err
	}
	if t := f.GetType(); t < 0 || t > pb.Flow_IPFIX {
		return r, fmt.Errorf("type: unknown flow type %d", t)
	} else {
		r.FlowType = int8(t)
	}
	if r.Exporter, err = address("sampler_address", f.GetSamplerAddress()); err != nil {
		return r, err
	}
	if r.SrcAddr, err = address("src_addr", f.GetSrcAddr()); err != nil {
		return r, err
	}
	if r.DstAddr, err = address("dst_addr", f.GetDstAddr()); err != nil {
		return r, err
	}
	if f.GetSamplingRate() > 0xffffffff {
		return r, fmt.Errorf("sampling_rate: %d does not fit UInt32", f.GetSamplingRate())
	}
	r.SamplingRate = uint32(f.GetSamplingRate())
	r.ObservationDomainID = f.GetObservationDomainId()
	r.SequenceNum = f.GetSequenceNum()
	r.InIf, r.OutIf = f.GetInIf(), f.GetOutIf()
	r.SrcAS, r.DstAS = f.GetSrcAs(), f.GetDstAs()
	for _, c := range []struct {
		name string
		v    uint32
		max  uint32
	}{
		{"src_port", f.GetSrcPort(), 0xffff}, {"dst_port", f.GetDstPort(), 0xffff},
		{"proto", f.GetProto(), 0xff}, {"etype", f.GetEtype(), 0xffff},
		{"ip_tos", f.GetIpTos(), 0xff}, {"icmp_type", f.GetIcmpType(), 0xff},
		{"icmp_code", f.GetIcmpCode(), 0xff}, {"fragment_offset", f.GetFragmentOffset(), 0xffff},
		// tcp_flags may carry the 9th bit (NS, historic since RFC 8311) from
		// IPFIX; the column keeps the 8 classic flags, so only >9 bits is bad.
		{"tcp_flags", f.GetTcpFlags(), 0x1ff},
	} {
		if c.v > c.max {
			return r, fmt.Errorf("%s: %d out of range (max %d)", c.name, c.v, c.max)
		}
	}
	r.SrcPort, r.DstPort = uint16(f.GetSrcPort()), uint16(f.GetDstPort())
	r.Proto, r.Etype = uint8(f.GetProto()), uint16(f.GetEtype())
	r.IPTos, r.ICMPType, r.ICMPCode = uint8(f.GetIpTos()), uint8(f.GetIcmpType()), uint8(f.GetIcmpCode())
	r.FragmentOffset = uint16(f.GetFragmentOffset())
	r.TCPFlags = uint8(f.GetTcpFlags() & 0xff)
	r.Bytes, r.Packets = f.GetBytes(), f.GetPackets()
	r.Customer, r.Subnet = f.GetCustomer(), f.GetSubnet()
	if d := f.GetDirection(); d < 0 || d > pb.Direction_DIRECTION_OUTBOUND {
		return r, fmt.Errorf("direction: unknown value %d", d)
	} else {
		r.Direction = int8(d)
	}
	return r, nil
}

// dateTime converts nanoseconds since the epoch to a DateTime (seconds).
func dateTime(field string, ns uint64) (time.Time, error) {
	if ns > uint64(maxDateTime.Unix())*1e9 {
		return time.Time{}, fmt.Errorf("%s: %d is beyond DateTime's range (2106)", field, ns)
	}
	return time.Unix(int64(ns/1e9), 0).UTC(), nil
}

// address returns the 16-byte IPv6 form of a 4- or 16-byte address
// (IPv4 as ::ffff:a.b.c.d, as IPv6StringToNum and the migrations expect);
// an absent address is all zeros.
func address(field string, b []byte) (string, error) {
	switch len(b) {
	case 0:
		return "", nil
	case 4:
		return string([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, b[0], b[1], b[2], b[3]}), nil
	case 16:
		return string(b), nil
	}
	return "", fmt.Errorf("%s: %d bytes is neither IPv4 nor IPv6", field, len(b))
}
