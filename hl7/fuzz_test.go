package hl7_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"

	"haven/hl7"
)

// Fuzz targets for the bytes a lab sends. Run one with, for example,
// go test -run '^$' -fuzz FuzzParse -fuzztime 60s ./hl7 (make fuzz runs
// them all). Without -fuzz they run their seeds.

func seeds(f *testing.F) {
	for _, name := range []string{"oru_cmp.hl7"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("MSH#*!%$#LAB#L#H#P#2001##ORU*R01#C1#P#2.3\nPID#1##A1%X41%$y**MR\nOBR#1#P1##T1\nOBX#1#SN#C##<*5\n"))
	f.Add([]byte("MSH|^~\\&#|L|F|H|R|2026||ORU^R01|C1|P|2.8\rPID|1||\\P\\\\H\\x\\N\\\\.sp\\\rZZZ|\\Z1\\\r"))
	f.Add([]byte("MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\rPID|1\rOBR|1|O||T\rOBX|1|ED|C||^a^b^B64^QQ==\rNTE|1||n\r"))
}

// FuzzParse: any bytes are read or refused with an *hl7.Error, never a
// panic; what is read encodes to a message that reads back the same, so
// nothing Haven writes (an ACK, an order) can be re-read differently.
func FuzzParse(f *testing.F) {
	seeds(f)
	limits := hl7.DefaultLimits
	limits.MessageBytes = 64 << 10
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := limits.Parse(b)
		if err != nil {
			var e *hl7.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *hl7.Error", err)
			}
			if m != nil {
				_ = hl7.AckFor(m, hl7.ErrorAck, err, "A", "2026").Encode()
			}
			return
		}
		enc := m.Encode()
		again, err := hl7.DefaultLimits.Parse(enc)
		if err != nil {
			t.Fatalf("re-reading the encoded message: %v", err)
		}
		if !reflect.DeepEqual(normal(m), normal(again)) {
			t.Fatalf("round trip changed the message:\n%q\n%q", b, enc)
		}
		_, _ = hl7.ReadORU(m)
		ack, err := hl7.Parse(hl7.AckFor(m, hl7.Accept, nil, "A", "2026").Encode())
		if err != nil {
			t.Fatalf("the ACK does not parse: %v", err)
		}
		if _, err := hl7.ReadAck(ack); err != nil {
			t.Fatalf("the ACK does not read: %v", err)
		}
	})
}

// normal drops what encoding cannot keep: trailing empty fields,
// repetitions, components and sub-components read back as absent.
func normal(m *hl7.Message) *hl7.Message {
	out := &hl7.Message{Delimiters: m.Delimiters}
	for _, s := range m.Segments {
		n := hl7.Segment{Name: s.Name}
		for _, f := range s.Fields {
			var nf hl7.Field
			for _, r := range f {
				var nr hl7.Repetition
				for _, c := range r {
					nr = append(nr, c)
				}
				nf = append(nf, nr)
			}
			if nf.Empty() {
				nf = nil
			}
			n.Fields = append(n.Fields, nf)
		}
		for len(n.Fields) > 1 && n.Fields[len(n.Fields)-1] == nil {
			n.Fields = n.Fields[:len(n.Fields)-1]
		}
		out.Segments = append(out.Segments, n)
	}
	return out
}

// FuzzReadFrame: any byte stream yields frames within the limit or an
// error, never a panic, and every frame written reads back whole.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("\x0bMSH|a\x1c\r\r\n\x0bb\x1cc\x1c\r"), []byte("MSH"))
	f.Add([]byte("\x0b\x0b\x1c"), []byte("a\x1cb"))
	f.Fuzz(func(t *testing.T, stream, msg []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(stream), 16)
		for i := 0; i < 100; i++ {
			m, err := hl7.ReadFrame(r, 64)
			if err != nil {
				break
			}
			if len(m) > 64 {
				t.Fatalf("a frame of %d bytes passed a limit of 64", len(m))
			}
		}
		if bytes.IndexByte(msg, 0x0b) >= 0 || bytes.Contains(msg, []byte{0x1c, '\r'}) || bytes.HasSuffix(msg, []byte{0x1c}) {
			return // not a message MLLP can carry
		}
		var b bytes.Buffer
		hl7.WriteFrame(&b, msg)
		got, err := hl7.ReadFrame(bufio.NewReaderSize(&b, 16), 1<<20)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("frame %q read back as %q, %v", msg, got, err)
		}
	})
}
