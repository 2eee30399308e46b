package produce

import (
	"encoding/binary"

	"github.com/packetworks/flowsentry/schemas/pb"
)

// AppendFlow appends f in protobuf wire format, byte for byte what
// proto.Marshal produces (fields in number order, zero values omitted),
// without reflection or allocation. TestAppendFlowMatchesProto fills every
// field of pb.Flow through reflection, so a field added to flow.proto and
// not here fails the build's tests instead of silently vanishing.
func AppendFlow(b []byte, f *pb.Flow) []byte {
	b = vint(b, 1, uint64(int64(f.Type)))
	b = vint(b, 2, f.TimeReceivedNs)
	b = vint(b, 3, f.TimeFlowStartNs)
	b = vint(b, 4, f.TimeFlowEndNs)
	b = vint(b, 5, uint64(f.SequenceNum))
	b = vint(b, 6, f.SamplingRate)
	if f.SamplingApplied {
		b = append(b, 7<<3, 1)
	}
	b = bytesField(b, 8, f.SamplerAddress)
	b = vint(b, 9, uint64(f.ObservationDomainId))
	b = vint(b, 10, f.Bytes)
	b = vint(b, 11, f.Packets)
	b = bytesField(b, 12, f.SrcAddr)
	b = bytesField(b, 13, f.DstAddr)
	b = bytesField(b, 14, f.NextHop)
	b = vint(b, 15, uint64(f.Etype))
	b = vint(b, 16, uint64(f.Proto))
	b = vint(b, 17, uint64(f.SrcPort))
	b = vint(b, 18, uint64(f.DstPort))
	b = vint(b, 19, uint64(f.InIf))
	b = vint(b, 20, uint64(f.OutIf))
	b = vint(b, 21, uint64(f.SrcAs))
	b = vint(b, 22, uint64(f.DstAs))
	b = vint(b, 23, uint64(f.SrcNet))
	b = vint(b, 24, uint64(f.DstNet))
	b = vint(b, 25, uint64(f.IpTos))
	b = vint(b, 26, uint64(f.IpTtl))
	b = vint(b, 27, uint64(f.IpFlags))
	b = vint(b, 28, uint64(f.TcpFlags))
	b = vint(b, 29, uint64(f.IcmpType))
	b = vint(b, 30, uint64(f.IcmpCode))
	b = vint(b, 31, uint64(f.Ipv6FlowLabel))
	b = vint(b, 32, uint64(f.FragmentId))
	b = vint(b, 33, uint64(f.FragmentOffset))
	b = vint(b, 34, uint64(f.ForwardingStatus))
	b = vint(b, 35, uint64(f.SrcVlan))
	b = vint(b, 36, uint64(f.DstVlan))
	b = vint(b, 37, f.SrcMac)
	b = vint(b, 38, f.DstMac)
	b = stringField(b, 50, f.Customer)
	b = stringField(b, 51, f.Subnet)
	b = vint(b, 52, uint64(int64(f.Direction)))
	b = vint(b, 53, uint64(f.MinPacketLength))
	b = vint(b, 54, uint64(f.MaxPacketLength))
	return b
}

// The helpers below inline what protowire does generically: field numbers
// here are < 2048, so a tag is one byte (< 16) or two; this is the hot
// path of the collector (one call per field per flow).

func appendTag(b []byte, num int, wt byte) []byte {
	t := uint(num)<<3 | uint(wt)
	if t < 0x80 {
		return append(b, byte(t))
	}
	return append(b, byte(t)|0x80, byte(t>>7))
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func vint(b []byte, num int, v uint64) []byte {
	if v == 0 {
		return b
	}
	return appendVarint(appendTag(b, num, 0), v)
}

func bytesField(b []byte, num int, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = appendVarint(appendTag(b, num, 2), uint64(len(v)))
	return append(b, v...)
}

func stringField(b []byte, num int, v string) []byte {
	if len(v) == 0 {
		return b
	}
	b = appendVarint(appendTag(b, num, 2), uint64(len(v)))
	return append(b, v...)
}

// appendBatchFlow appends f as one element of FlowBatch.flows (field 1),
// using scratch to learn its length first.
func appendBatchFlow(b, scratch []byte, f *pb.Flow) ([]byte, []byte) {
	scratch = AppendFlow(scratch[:0], f)
	b = appendVarint(append(b, 1<<3|2), uint64(len(scratch)))
	return append(b, scratch...), scratch
}

// finishBatch appends FlowBatch.collector (field 2), producer_id (3,
// fixed64) and sequence (4): the fields after flows, in number order as
// proto.Marshal writes them.
func finishBatch(b []byte, collector string, producer, seq uint64) []byte {
	b = stringField(b, 2, collector)
	if producer != 0 {
		b = binary.LittleEndian.AppendUint64(appendTag(b, 3, 1), producer)
	}
	return vint(b, 4, seq)
}
