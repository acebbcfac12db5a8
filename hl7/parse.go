package hl7

import (
	"bytes"
	"fmt"
	"strings"
)

// Limits bound what Parse keeps of a message from outside, so a sender
// cannot make Haven hold more than a lab result could need.
type Limits struct {
	MessageBytes  int // the whole message
	Segments      int // per message
	Fields        int // per segment
	Repetitions   int // per field
	Components    int // per repetition
	SubComponents int // per component
}

// DefaultLimits fit the largest ORU a lab sends (a long panel with notes
// and a small encapsulated report) with room to spare.
var DefaultLimits = Limits{
	MessageBytes:  4 << 20,
	Segments:      5000,
	Fields:        256,
	Repetitions:   100,
	Components:    64,
	SubComponents: 32,
}

// Error codes from HL7 table 0357, carried in an ACK's ERR segment.
const (
	CodeSegmentSequence    = 100
	CodeRequiredMissing    = 101
	CodeDataType           = 102
	CodeTableValue         = 103
	CodeUnsupportedType    = 200
	CodeUnsupportedEvent   = 201
	CodeUnsupportedProcess = 202
	CodeUnsupportedVersion = 203
	CodeUnknownKey         = 204
	CodeDuplicateKey       = 205
	CodeInternal           = 207
)

var codeText = map[int]string{
	CodeSegmentSequence:    "Segment sequence error",
	CodeRequiredMissing:    "Required field missing",
	CodeDataType:           "Data type error",
	CodeTableValue:         "Table value not found",
	CodeUnsupportedType:    "Unsupported message type",
	CodeUnsupportedEvent:   "Unsupported event code",
	CodeUnsupportedProcess: "Unsupported processing id",
	CodeUnsupportedVersion: "Unsupported version id",
	CodeUnknownKey:         "Unknown key identifier",
	CodeDuplicateKey:       "Duplicate key identifier",
	CodeInternal:           "Application internal error",
}

// An Error is what is wrong with a message: where (segment name, its
// position among the message's segments, the field) and an HL7 error
// code. Reason is written by Haven and never holds the message's content.
type Error struct {
	Code     int
	Segment  string // "PID"; "" for the message as a whole
	Sequence int    // 1-based position of the segment in the message
	Field    int    // 0 when the segment as a whole is wrong
	Reason   string
}

func (e *Error) Error() string {
	where := "message"
	if e.Segment != "" {
		where = fmt.Sprintf("%s (segment %d)", e.Segment, e.Sequence)
		if e.Field > 0 {
			where = fmt.Sprintf("%s-%d (segment %d)", e.Segment, e.Field, e.Sequence)
		}
	}
	return fmt.Sprintf("hl7: %s: %s: %s", where, e.CodeText(), e.Reason)
}

// CodeText is the table 0357 text for the error's code.
func (e *Error) CodeText() string {
	if t, ok := codeText[e.Code]; ok {
		return t
	}
	return "Application error"
}

// Versions are the HL7 v2 versions Haven accepts (MSH-12).
var Versions = []string{"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"}

func knownVersion(v string) bool {
	for _, k := range Versions {
		if v == k {
			return true
		}
	}
	return false
}

// Parse reads one ER7 message within DefaultLimits.
func Parse(b []byte) (*Message, error) { return DefaultLimits.Parse(b) }

// Parse reads one ER7 message. Segments may end in CR, LF or CRLF (labs
// send all three). When the MSH could be read but something later could
// not, the message is returned with what was read before the fault, so an
// ACK can still name the sender's control id; the error is an *Error.
func (l Limits) Parse(b []byte) (*Message, error) {
	if len(b) > l.MessageBytes {
		return nil, &Error{Code: CodeInternal, Reason: fmt.Sprintf("message of %d bytes is over the limit of %d", len(b), l.MessageBytes)}
	}
	// A trailing MLLP or file artefact is not a segment.
	b = bytes.TrimLeft(b, "\r\n")
	if len(b) < 8 || string(b[:3]) != "MSH" {
		return nil, &Error{Code: CodeSegmentSequence, Reason: "the message does not begin with MSH"}
	}
	d := Delimiters{Field: b[3]}
	end := 4
	for end < len(b) && b[end] != d.Field && b[end] != '\r' && b[end] != '\n' {
		end++
	}
	enc := b[4:end]
	if len(enc) != 4 && len(enc) != 5 {
		return nil, &Error{Code: CodeDataType, Segment: "MSH", Sequence: 1, Field: 2, Reason: "encoding characters must be four or five"}
	}
	d.Component, d.Repetition, d.Escape, d.SubComponent = enc[0], enc[1], enc[2], enc[3]
	if len(enc) == 5 {
		d.Truncation = enc[4]
	}
	all := append([]byte{d.Field}, enc...)
	for i, c := range all {
		if c <= ' ' || c >= 0x7f || ('0' <= c && c <= '9') || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') {
			return nil, &Error{Code: CodeDataType, Segment: "MSH", Sequence: 1, Field: 2, Reason: "an encoding character is not a printable ASCII symbol"}
		}
		if bytes.IndexByte(all[i+1:], c) >= 0 {
			return nil, &Error{Code: CodeDataType, Segment: "MSH", Sequence: 1, Field: 2, Reason: "encoding characters repeat"}
		}
	}

	m := &Message{Delimiters: d}
	lines := splitSegments(b)
	for i, line := range lines {
		seq := len(m.Segments) + 1
		if len(m.Segments) >= l.Segments {
			return m, &Error{Code: CodeInternal, Reason: fmt.Sprintf("more than %d segments", l.Segments)}
		}
		s, err := l.parseSegment(d, line, seq, i == 0)
		if err != nil {
			return m, err
		}
		m.Segments = append(m.Segments, s)
	}
	return m, m.checkHeader()
}

// splitSegments cuts at CR, LF or CRLF and drops empty lines.
func splitSegments(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			out = append(out, b)
			break
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		b = b[i+1:]
	}
	return out
}

func (l Limits) parseSegment(d Delimiters, line []byte, seq int, first bool) (Segment, error) {
	name, rest, _ := bytes.Cut(line, []byte{d.Field})
	if !validName(name) {
		return Segment{}, &Error{Code: CodeSegmentSequence, Sequence: seq, Segment: "", Reason: "a segment name is not three capital letters or digits"}
	}
	s := Segment{Name: string(name)}
	if first != (s.Name == "MSH") {
		return Segment{}, &Error{Code: CodeSegmentSequence, Segment: s.Name, Sequence: seq, Reason: "MSH must come first, and only once"}
	}
	s.Fields = []Field{nil}
	if s.Name == "MSH" {
		enc, after, _ := bytes.Cut(rest, []byte{d.Field})
		s.Fields = append(s.Fields, Text(string(d.Field)), Text(string(enc)))
		rest = after
		if len(after) == 0 {
			return s, nil
		}
	} else if len(line) == len(name) {
		return s, nil
	}
	for n := len(s.Fields); ; n++ {
		if n > l.Fields {
			return s, &Error{Code: CodeInternal, Segment: s.Name, Sequence: seq, Reason: fmt.Sprintf("more than %d fields", l.Fields)}
		}
		raw, after, more := bytes.Cut(rest, []byte{d.Field})
		f, err := l.parseField(d, raw)
		if err != nil {
			return s, &Error{Code: CodeDataType, Segment: s.Name, Sequence: seq, Field: n, Reason: err.Error()}
		}
		s.Fields = append(s.Fields, f)
		if !more {
			break
		}
		rest = after
	}
	return s, nil
}

func validName(b []byte) bool {
	if len(b) != 3 {
		return false
	}
	for _, c := range b {
		if !('A' <= c && c <= 'Z') && !('0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func (l Limits) parseField(d Delimiters, raw []byte) (Field, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	reps := bytes.Split(raw, []byte{d.Repetition})
	if len(reps) > l.Repetitions {
		return nil, fmt.Errorf("more than %d repetitions", l.Repetitions)
	}
	f := make(Field, 0, len(reps))
	for _, rep := range reps {
		comps := bytes.Split(rep, []byte{d.Component})
		if len(comps) > l.Components {
			return nil, fmt.Errorf("more than %d components", l.Components)
		}
		r := make(Repetition, 0, len(comps))
		for _, comp := range comps {
			subs := bytes.Split(comp, []byte{d.SubComponent})
			if len(subs) > l.SubComponents {
				return nil, fmt.Errorf("more than %d sub-components", l.SubComponents)
			}
			c := make(Component, 0, len(subs))
			for _, sub := range subs {
				v, err := unescape(d, sub)
				if err != nil {
					return nil, err
				}
				c = append(c, v)
			}
			r = append(r, c)
		}
		f = append(f, r)
	}
	return f, nil
}

// unescape turns escape sequences back into the characters they stand
// for: \F\ \S\ \T\ \R\ \E\ (and \P\, the truncation character), \Xhh..\
// as bytes, \.br\ as a line break. Highlighting (\H\, \N\) and other
// formatting is dropped; an unknown sequence is kept as it was sent. An
// unterminated sequence or bad hex is an error: a value cut in half must
// not be stored as if whole.
func unescape(d Delimiters, b []byte) (string, error) {
	if bytes.IndexByte(b, d.Escape) < 0 {
		return string(b), nil
	}
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != d.Escape {
			out.WriteByte(c)
			continue
		}
		j := bytes.IndexByte(b[i+1:], d.Escape)
		if j < 0 {
			return "", fmt.Errorf("an escape sequence is not closed")
		}
		seq := b[i+1 : i+1+j]
		i += j + 1
		switch {
		case len(seq) == 1 && seq[0] == 'F':
			out.WriteByte(d.Field)
		case len(seq) == 1 && seq[0] == 'S':
			out.WriteByte(d.Component)
		case len(seq) == 1 && seq[0] == 'T':
			out.WriteByte(d.SubComponent)
		case len(seq) == 1 && seq[0] == 'R':
			out.WriteByte(d.Repetition)
		case len(seq) == 1 && seq[0] == 'E':
			out.WriteByte(d.Escape)
		case len(seq) == 1 && seq[0] == 'P' && d.Truncation != 0:
			out.WriteByte(d.Truncation)
		case len(seq) == 1 && (seq[0] == 'H' || seq[0] == 'N'):
		case len(seq) >= 1 && seq[0] == 'X':
			hex := seq[1:]
			if len(hex)%2 != 0 {
				return "", fmt.Errorf("a hexadecimal escape has an odd number of digits")
			}
			for k := 0; k < len(hex); k += 2 {
				hi, ok1 := hexVal(hex[k])
				lo, ok2 := hexVal(hex[k+1])
				if !ok1 || !ok2 {
					return "", fmt.Errorf("a hexadecimal escape has a character that is not a digit")
				}
				out.WriteByte(hi<<4 | lo)
			}
		case string(seq) == ".br":
			out.WriteByte('\n')
		case len(seq) > 0 && seq[0] == '.':
			// Other formatted-text commands (.sp, .in, .fi …) carry no text.
		default:
			out.WriteByte(d.Escape)
			out.Write(seq)
			out.WriteByte(d.Escape)
		}
	}
	return out.String(), nil
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// checkHeader holds MSH to what every message must say: a type and event,
// a control id, a processing id and a version Haven speaks.
func (m *Message) checkHeader() error {
	h := m.Header()
	missing := func(field int, what string) error {
		return &Error{Code: CodeRequiredMissing, Segment: "MSH", Sequence: 1, Field: field, Reason: what + " is missing"}
	}
	switch {
	case h.MessageType == "":
		return missing(9, "the message type")
	case h.ControlID == "":
		return missing(10, "the message control id")
	case h.ProcessingID == "":
		return missing(11, "the processing id")
	case h.Version == "":
		return missing(12, "the version")
	case !knownVersion(h.Version):
		return &Error{Code: CodeUnsupportedVersion, Segment: "MSH", Sequence: 1, Field: 12, Reason: "the version is not one of 2.3 to 2.8"}
	}
	switch h.ProcessingID {
	case "P", "T", "D":
	default:
		return &Error{Code: CodeUnsupportedProcess, Segment: "MSH", Sequence: 1, Field: 11, Reason: "the processing id is not P, T or D"}
	}
	if len(h.ControlID) > 199 {
		return &Error{Code: CodeDataType, Segment: "MSH", Sequence: 1, Field: 10, Reason: "the message control id is over 199 characters"}
	}
	return nil
}
