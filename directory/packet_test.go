package directory

import (
	"bytes"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// samePacket compares our decoding with asn1-ber's.
func samePacket(t *testing.T, ours *packet, theirs *ber.Packet) {
	t.Helper()
	if ours.ClassType != theirs.ClassType || ours.TagType != theirs.TagType || ours.Tag != theirs.Tag || len(ours.Children) != len(theirs.Children) {
		t.Fatalf("element differs: ours %v/%v/%v %d children, asn1-ber %v/%v/%v %d children",
			ours.ClassType, ours.TagType, ours.Tag, len(ours.Children), theirs.ClassType, theirs.TagType, theirs.Tag, len(theirs.Children))
	}
	if theirs.TagType == ber.TypePrimitive {
		var want []byte
		if theirs.Data != nil {
			want = theirs.Data.Bytes()
		}
		if !bytes.Equal(ours.data, want) {
			t.Fatalf("content differs: %x vs %x", ours.data, want)
		}
	}
	for i := range ours.Children {
		samePacket(t, ours.Children[i], theirs.Children[i])
	}
}

// FuzzDecodePacket: what scanBER accepts, decodePacket decodes, and the
// same way asn1-ber does.
func FuzzDecodePacket(f *testing.F) {
	for _, seed := range seedRequests(nil) {
		f.Add(seed)
	}
	f.Add([]byte{0x1f, 0x81, 0x01, 0x00})
	f.Add(deepBER(10))
	f.Fuzz(func(t *testing.T, b []byte) {
		if scanBER(b, 1000) != nil {
			if _, err := decodePacket(b, 1000); err == nil {
				t.Fatal("decodePacket accepted what scanBER refused")
			}
			return
		}
		ours, err := decodePacket(b, 1000)
		if len(b) == 0 {
			return
		}
		if err != nil {
			t.Fatalf("decodePacket refused what scanBER accepted: %v", err)
		}
		theirs, err := ber.DecodePacketErr(b)
		if err != nil {
			return // asn1-ber is stricter about some primitive values
		}
		samePacket(t, ours, theirs)
	})
}
