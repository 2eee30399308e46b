package produce

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/packetworks/flowsentry/schemas/pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// randomFlow sets every field of pb.Flow (found by reflection, so new
// fields are included automatically) to a random non-zero value.
func randomFlow(r *rand.Rand) *pb.Flow {
	f := &pb.Flow{}
	m := f.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if r.IntN(5) == 0 {
			continue // leave some at zero to test omission
		}
		var v protoreflect.Value
		switch fd.Kind() {
		case protoreflect.BoolKind:
			v = protoreflect.ValueOfBool(true)
		case protoreflect.EnumKind:
			vals := fd.Enum().Values()
			v = protoreflect.ValueOfEnum(vals.Get(r.IntN(vals.Len())).Number())
		case protoreflect.Uint32Kind:
			v = protoreflect.ValueOfUint32(r.Uint32() >> r.IntN(32))
		case protoreflect.Uint64Kind:
			v = protoreflect.ValueOfUint64(r.Uint64() >> r.IntN(64))
		case protoreflect.BytesKind:
			b := make([]byte, 1+r.IntN(16))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			v = protoreflect.ValueOfBytes(b)
		case protoreflect.StringKind:
			v = protoreflect.ValueOfString("203.0.113.0/24"[:1+r.IntN(14)])
		default:
			panic("pb.Flow has a field kind AppendFlow does not handle: " + fd.Kind().String())
		}
		m.Set(fd, v)
	}
	return f
}

func TestAppendFlowMatchesProto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	all := &pb.Flow{}
	for i := 0; i < 2000; i++ {
		f := randomFlow(r)
		if i == 0 {
			// Every field set at least once.
			fields := f.ProtoReflect().Descriptor().Fields()
			for j := 0; j < fields.Len(); j++ {
				if !f.ProtoReflect().Has(fields.Get(j)) {
					f.ProtoReflect().Set(fields.Get(j), randomFlow(rand.New(rand.NewPCG(uint64(j), 9))).ProtoReflect().Get(fields.Get(j)))
				}
			}
			all = f
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		got := AppendFlow(nil, f)
		if !bytes.Equal(got, want) {
			t.Fatalf("flow %d: AppendFlow differs from proto.Marshal\n got %x\nwant %x", i, got, want)
		}
	}
	back := &pb.Flow{}
	if err := proto.Unmarshal(AppendFlow(nil, all), back); err != nil || !proto.Equal(back, all) {
		t.Fatalf("round trip of a flow with every field set failed: %v", err)
	}
}

func TestBatchEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var b, scratch []byte
	want := &pb.FlowBatch{Collector: "col-1", ProducerId: 0x8000_0000_0000_0001, Sequence: 300}
	for i := 0; i < 50; i++ {
		f := randomFlow(r)
		want.Flows = append(want.Flows, f)
		b, scratch = appendBatchFlow(b, scratch, f)
	}
	b = finishBatch(b, "col-1", want.ProducerId, want.Sequence)
	got := &pb.FlowBatch{}
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatal("batch does not round-trip")
	}
	// Byte for byte what proto.Marshal writes (deterministic: one field order).
	if m, _ := (proto.MarshalOptions{Deterministic: true}).Marshal(want); !bytes.Equal(m, b) {
		t.Fatal("batch encoding differs from proto.Marshal")
	}
}

func BenchmarkAppendFlow(b *testing.B) {
	f := randomFlow(rand.New(rand.NewPCG(5, 6)))
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFlow(buf[:0], f)
	}
}

func BenchmarkProtoMarshal(b *testing.B) {
	f := randomFlow(rand.New(rand.NewPCG(5, 6)))
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = proto.MarshalOptions{}.MarshalAppend(buf[:0], f)
	}
}
