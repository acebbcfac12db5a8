// Package hl7 reads and writes HL7 version 2 messages in their pipe-and-hat
// (ER7) encoding and carries them over MLLP, for lab orders out and lab
// results in.
//
// It works on the bytes it is handed: it reaches no storage, key, audit log
// or service, and it never logs. Its errors name a segment, a field and an
// HL7 error code, never a field's contents, because every field of a lab
// message may be PHI. Everything it reads from outside is bounded (message
// size, segments, fields, repetitions, components) before it is kept.
package hl7

import (
	"bytes"
	"fmt"
	"strings"
)

// Delimiters are a message's encoding characters, read from MSH-1 and
// MSH-2. Each message names its own, so nothing is assumed.
type Delimiters struct {
	Field, Component, Repetition, Escape, SubComponent byte
	// Truncation is MSH-2's fifth character (v2.7 and later), or 0.
	Truncation byte
}

// Standard is the delimiters nearly every sender uses: |^~\&.
var Standard = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', SubComponent: '&'}

// Encoding is MSH-2 for d.
func (d Delimiters) Encoding() string {
	b := []byte{d.Component, d.Repetition, d.Escape, d.SubComponent}
	if d.Truncation != 0 {
		b = append(b, d.Truncation)
	}
	return string(b)
}

// A Message is a parsed HL7 v2 message: its delimiters and its segments
// in order, MSH first.
type Message struct {
	Delimiters Delimiters
	Segments   []Segment
}

// A Segment is one line of a message. Fields[0] is unused (it stands for
// the segment's name), so Fields[n] is field n as the standard numbers it;
// for MSH, Fields[1] is the field separator and Fields[2] the encoding
// characters, as the standard counts them.
type Segment struct {
	Name   string
	Fields []Field
}

// A Field is a field's repetitions; most fields have one.
type Field []Repetition

// A Repetition is one occurrence of a field, as components.
type Repetition []Component

// A Component is one component, as sub-components, unescaped.
type Component []string

// Text is a field holding one plain value.
func Text(s string) Field { return Field{Repetition{Component{s}}} }

// Components is a field holding one repetition of the given components.
func Components(cs ...string) Field {
	r := make(Repetition, len(cs))
	for i, c := range cs {
		r[i] = Component{c}
	}
	return Field{r}
}

// Field returns field n (1-based), or nil when the segment has no such field.
func (s Segment) Field(n int) Field {
	if n <= 0 || n >= len(s.Fields) {
		return nil
	}
	return s.Fields[n]
}

// Get returns component c (1-based) of the first repetition of field n,
// with its sub-components joined by nothing but the first one kept: the
// common case of reading one simple value. Absent parts read as "".
func (s Segment) Get(n, c int) string {
	return s.Field(n).Rep(0).Get(c)
}

// Value is component 1 of field n's first repetition.
func (s Segment) Value(n int) string { return s.Get(n, 1) }

// Rep returns repetition i (0-based), or nil.
func (f Field) Rep(i int) Repetition {
	if i < 0 || i >= len(f) {
		return nil
	}
	return f[i]
}

// Empty reports whether the field has no value at all.
func (f Field) Empty() bool {
	for _, r := range f {
		for _, c := range r {
			for _, s := range c {
				if s != "" {
					return false
				}
			}
		}
	}
	return true
}

// Component returns component c (1-based), or nil.
func (r Repetition) Component(c int) Component {
	if c <= 0 || c > len(r) {
		return nil
	}
	return r[c-1]
}

// Get returns sub-component 1 of component c.
func (r Repetition) Get(c int) string { return r.Component(c).Sub(1) }

// Sub returns sub-component n (1-based), or "".
func (c Component) Sub(n int) string {
	if n <= 0 || n > len(c) {
		return ""
	}
	return c[n-1]
}

// All returns every segment named name, in order.
func (m *Message) All(name string) []Segment {
	var out []Segment
	for _, s := range m.Segments {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// First returns the first segment named name.
func (m *Message) First(name string) (Segment, bool) {
	for _, s := range m.Segments {
		if s.Name == name {
			return s, true
		}
	}
	return Segment{}, false
}

// Header is the MSH fields a receiver acts on.
type Header struct {
	SendingApplication, SendingFacility     string
	ReceivingApplication, ReceivingFacility string
	MessageType, TriggerEvent               string // MSH-9.1, MSH-9.2: "ORU", "R01"
	Structure                               string // MSH-9.3: "ORU_R01", "ACK"
	ControlID                               string // MSH-10
	ProcessingID                            string // MSH-11: P, T or D
	Version                                 string // MSH-12
}

// Header reads the message's MSH.
func (m *Message) Header() Header {
	msh, _ := m.First("MSH")
	return Header{
		SendingApplication:   msh.Value(3),
		SendingFacility:      msh.Value(4),
		ReceivingApplication: msh.Value(5),
		ReceivingFacility:    msh.Value(6),
		MessageType:          msh.Get(9, 1),
		TriggerEvent:         msh.Get(9, 2),
		Structure:            msh.Get(9, 3),
		ControlID:            msh.Value(10),
		ProcessingID:         msh.Value(11),
		Version:              msh.Value(12),
	}
}

// Encode writes the message in ER7 with its own delimiters, segments
// ended by carriage returns, every value escaped.
func (m *Message) Encode() []byte {
	d := m.Delimiters
	var b bytes.Buffer
	for _, s := range m.Segments {
		b.WriteString(s.Name)
		start := 1
		if s.Name == "MSH" {
			b.WriteByte(d.Field)
			b.WriteString(d.Encoding())
			start = 3
		}
		for i := start; i < len(s.Fields); i++ {
			b.WriteByte(d.Field)
			writeField(&b, d, s.Fields[i])
		}
		b.WriteByte('\r')
	}
	return b.Bytes()
}

func writeField(b *bytes.Buffer, d Delimiters, f Field) {
	for ri, r := range f {
		if ri > 0 {
			b.WriteByte(d.Repetition)
		}
		for ci, c := range r {
			if ci > 0 {
				b.WriteByte(d.Component)
			}
			for si, s := range c {
				if si > 0 {
					b.WriteByte(d.SubComponent)
				}
				escape(b, d, s)
			}
		}
	}
}

// escape writes s with every delimiter and line break escaped, so a value
// can never open a new field, component or segment.
func escape(b *bytes.Buffer, d Delimiters, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == d.Escape:
			b.WriteByte(d.Escape)
			b.WriteByte('E')
			b.WriteByte(d.Escape)
		case c == d.Field:
			b.WriteByte(d.Escape)
			b.WriteByte('F')
			b.WriteByte(d.Escape)
		case c == d.Component:
			b.WriteByte(d.Escape)
			b.WriteByte('S')
			b.WriteByte(d.Escape)
		case c == d.SubComponent:
			b.WriteByte(d.Escape)
			b.WriteByte('T')
			b.WriteByte(d.Escape)
		case c == d.Repetition:
			b.WriteByte(d.Escape)
			b.WriteByte('R')
			b.WriteByte(d.Escape)
		case d.Truncation != 0 && c == d.Truncation:
			b.WriteByte(d.Escape)
			b.WriteByte('P')
			b.WriteByte(d.Escape)
		case c == '\r' || c == '\n':
			fmt.Fprintf(b, "%cX%02X%c", d.Escape, c, d.Escape)
		default:
			b.WriteByte(c)
		}
	}
}

// NewMessage starts a message with an MSH built from h and the standard
// delimiters. MSH-7 (the time) is given as at, already formatted.
func NewMessage(h Header, at string) *Message {
	msh := Segment{Name: "MSH", Fields: make([]Field, 13)}
	msh.Fields[1] = Text("|")
	msh.Fields[2] = Text(Standard.Encoding())
	msh.Fields[3] = Text(h.SendingApplication)
	msh.Fields[4] = Text(h.SendingFacility)
	msh.Fields[5] = Text(h.ReceivingApplication)
	msh.Fields[6] = Text(h.ReceivingFacility)
	msh.Fields[7] = Text(at)
	msh.Fields[9] = Components(h.MessageType, h.TriggerEvent, h.Structure)
	msh.Fields[10] = Text(h.ControlID)
	msh.Fields[11] = Text(h.ProcessingID)
	msh.Fields[12] = Text(h.Version)
	return &Message{Delimiters: Standard, Segments: []Segment{msh}}
}

// Add appends a segment whose field n is fields[n-1].
func (m *Message) Add(name string, fields ...Field) {
	m.Segments = append(m.Segments, Segment{Name: name, Fields: append([]Field{nil}, fields...)})
}

// String is the message's shape without its contents (segment names and
// field counts), safe for a log line or a test failure.
func (m *Message) String() string {
	var b strings.Builder
	for i, s := range m.Segments {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s(%d)", s.Name, len(s.Fields)-1)
	}
	return b.String()
}
