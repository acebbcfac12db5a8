package mediatest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"sort"
	"strings"
)

// DICOMOptions say what DICOM file to make. The zero value (with a
// marker) is one 64×64 16-bit CT slice in explicit little endian.
type DICOMOptions struct {
	// Marker is written into the patient's name, ID and other names,
	// the institution, descriptions, a private element, a nested
	// sequence and the file meta information (keep it to 10 characters:
	// some of those are short fields).
	Marker        string
	Rows, Columns int // default 64
	Frames        int // default 1; more makes a multi-frame image
	Bits          int // 8 or 16 (default)
	RGB           bool
	Implicit      bool // implicit VR little endian
	BigEndian     bool // explicit VR big endian (retired, still met)
	Compressed    bool // JPEG baseline, encapsulated
	BurnedIn      bool // Burned In Annotation: YES
	StudyUID      string
}

// Transfer syntaxes.
const (
	implicitLE = "1.2.840.10008.1.2"
	explicitLE = "1.2.840.10008.1.2.1"
	explicitBE = "1.2.840.10008.1.2.2"
	jpegBase   = "1.2.840.10008.1.2.4.50"
	ctImage    = "1.2.840.10008.5.1.4.1.1.2"
)

var long = map[string]bool{"OB": true, "OW": true, "SQ": true, "UN": true, "UT": true}

type dcmBuilder struct {
	bo       binary.ByteOrder
	implicit bool
}

type el struct {
	tag uint32
	b   []byte
}

func (d dcmBuilder) el(tag uint32, vr string, val []byte) el {
	var b bytes.Buffer
	binary.Write(&b, d.bo, uint16(tag>>16))
	binary.Write(&b, d.bo, uint16(tag))
	switch {
	case d.implicit:
		binary.Write(&b, d.bo, uint32(len(val)))
	case long[vr]:
		b.WriteString(vr)
		b.Write([]byte{0, 0})
		binary.Write(&b, d.bo, uint32(len(val)))
	default:
		b.WriteString(vr)
		binary.Write(&b, d.bo, uint16(len(val)))
	}
	b.Write(val)
	return el{tag, b.Bytes()}
}

func (d dcmBuilder) str(tag uint32, vr, s string) el {
	v := []byte(s)
	if len(v)%2 == 1 {
		if vr == "UI" {
			v = append(v, 0)
		} else {
			v = append(v, ' ')
		}
	}
	return d.el(tag, vr, v)
}

func (d dcmBuilder) us(tag uint32, n int) el {
	v := make([]byte, 2)
	d.bo.PutUint16(v, uint16(n))
	return d.el(tag, "US", v)
}

// seq is a sequence of one item, of defined or undefined length.
func (d dcmBuilder) seq(tag uint32, defined bool, items ...[]el) el {
	var body bytes.Buffer
	for _, it := range items {
		var ib bytes.Buffer
		for _, e := range sorted(it) {
			ib.Write(e.b)
		}
		binary.Write(&body, d.bo, uint16(0xFFFE))
		binary.Write(&body, d.bo, uint16(0xE000))
		if defined {
			binary.Write(&body, d.bo, uint32(ib.Len()))
			body.Write(ib.Bytes())
		} else {
			binary.Write(&body, d.bo, uint32(0xFFFFFFFF))
			body.Write(ib.Bytes())
			d.delim(&body, 0xE00D)
		}
	}
	if defined {
		return d.el(tag, "SQ", body.Bytes())
	}
	d.delim(&body, 0xE0DD)
	e := d.el(tag, "SQ", nil)
	e.b = e.b[:len(e.b)-4]
	e.b = binary.LittleEndian.AppendUint32(e.b, 0xFFFFFFFF) // the same bytes either way
	e.b = append(e.b, body.Bytes()...)
	return e
}

func (d dcmBuilder) delim(b *bytes.Buffer, elem uint16) {
	binary.Write(b, d.bo, uint16(0xFFFE))
	binary.Write(b, d.bo, elem)
	binary.Write(b, d.bo, uint32(0))
}

func sorted(es []el) []el {
	sort.SliceStable(es, func(i, j int) bool { return es[i].tag < es[j].tag })
	return es
}

// UID returns a test instance UID (under a root for examples) ending in n.
func UID(n string) string { return "1.2.826.0.1.3680043.8.498." + n }

// DICOM makes a DICOM Part 10 file.
func DICOM(o DICOMOptions) []byte {
	if o.Rows == 0 {
		o.Rows = 64
	}
	if o.Columns == 0 {
		o.Columns = 64
	}
	if o.Frames == 0 {
		o.Frames = 1
	}
	if o.Bits == 0 {
		o.Bits = 16
	}
	if o.RGB || o.Compressed {
		o.Bits = 8
	}
	if o.StudyUID == "" {
		o.StudyUID = UID("1001")
	}
	ts := explicitLE
	d := dcmBuilder{bo: binary.LittleEndian}
	switch {
	case o.Implicit:
		ts, d.implicit = implicitLE, true
	case o.BigEndian:
		ts, d.bo = explicitBE, binary.BigEndian
	case o.Compressed:
		ts = jpegBase
	}
	mk := o.Marker
	meta := dcmBuilder{bo: binary.LittleEndian}
	metaEls := []el{
		meta.el(0x00020001, "OB", []byte{0, 1}),
		meta.str(0x00020002, "UI", ctImage),
		meta.str(0x00020003, "UI", UID("2001")),
		meta.str(0x00020010, "UI", ts),
		meta.str(0x00020012, "UI", UID("1")),
		meta.str(0x00020013, "SH", "HAVENTEST"),
		meta.str(0x00020016, "AE", "AE"+mk),
	}
	var metaBody bytes.Buffer
	for _, e := range metaEls {
		metaBody.Write(e.b)
	}
	samples, photometric := 1, "MONOCHROME2"
	if o.RGB {
		samples, photometric = 3, "RGB"
	}
	burned := "NO"
	if o.BurnedIn {
		burned = "YES"
	}
	els := []el{
		d.str(0x00080016, "UI", ctImage),
		d.str(0x00080018, "UI", UID("2001")),
		d.str(0x00080020, "DA", "20241112"),
		d.str(0x00080030, "TM", "101500"),
		d.str(0x00080050, "SH", "ACC"+mk),
		d.str(0x00080060, "CS", "CT"),
		d.str(0x00080080, "LO", "Institution "+mk),
		d.str(0x00080090, "PN", "Referrer^"+mk),
		d.str(0x00081030, "LO", "Chest "+mk),
		d.str(0x0008103E, "LO", "Axial lung"),
		d.str(0x00081070, "PN", "Operator^"+mk),
		// A kept sequence with instance UIDs and, against the rules but
		// met in practice, a name inside it.
		d.seq(0x00081140, false, []el{
			d.str(0x00081150, "UI", ctImage),
			d.str(0x00081155, "UI", UID("2002")),
		}),
		d.str(0x00100010, "PN", mk+"^Jane"),
		d.str(0x00100020, "LO", "ID"+mk),
		d.str(0x00100030, "DA", "19800203"),
		d.str(0x00100040, "CS", "F"),
		d.str(0x00101010, "AS", "044Y"),
		d.seq(0x00101002, true, []el{d.str(0x00100020, "LO", "OtherID"+mk)}),
		d.str(0x00180015, "CS", "CHEST"),
		d.str(0x0020000D, "UI", o.StudyUID),
		d.str(0x0020000E, "UI", UID("3001")),
		d.str(0x00200010, "SH", "S"+mk),
		d.str(0x00200011, "IS", "3"),
		d.str(0x00200013, "IS", "1"),
		d.str(0x00200052, "UI", UID("4001")),
		d.us(0x00280002, samples),
		d.str(0x00280004, "CS", photometric),
		d.us(0x00280010, o.Rows),
		d.us(0x00280011, o.Columns),
		d.us(0x00280100, o.Bits),
		d.us(0x00280101, o.Bits),
		d.us(0x00280102, o.Bits-1),
		d.us(0x00280103, 0),
		d.str(0x00280301, "CS", burned),
		d.seq(0x00400260, true, []el{
			d.str(0x00080100, "SH", "TEST"),
			d.str(0x00080104, "LO", "Scan"),
			d.str(0x00100010, "PN", "Nested^"+mk),
		}),
		d.str(0x00291010, "LO", "Private "+mk),
		d.str(0x00290010, "LO", "HAVENTEST"),
	}
	if o.RGB {
		els = append(els, d.us(0x00280006, 0))
	}
	if o.Frames > 1 {
		els = append(els, d.str(0x00280008, "IS", fmt.Sprint(o.Frames)))
	}
	if o.Bits == 16 {
		els = append(els, d.str(0x00281050, "DS", "16384"), d.str(0x00281051, "DS", "32768"))
	}
	els = append(els, pixels(d, o))

	var out bytes.Buffer
	out.Write(make([]byte, 128))
	out.WriteString("DICM")
	gl := meta.el(0x00020000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(metaBody.Len())))
	out.Write(gl.b)
	out.Write(metaBody.Bytes())
	for _, e := range sorted(els) {
		out.Write(e.b)
	}
	return out.Bytes()
}

// Value is the stored value of pixel (x, y) of a test image: a ramp
// from left to right, bright in the top-left quarter.
func Value(x, y, w, h, bits int) int {
	top := 1<<bits - 1
	v := x * top / max(w-1, 1) / 2
	if x < w/4 && y < h/4 {
		v = top
	}
	return v
}

func pixels(d dcmBuilder, o DICOMOptions) el {
	samples := 1
	if o.RGB {
		samples = 3
	}
	if o.Compressed {
		g := image.NewGray(image.Rect(0, 0, o.Columns, o.Rows))
		for y := 0; y < o.Rows; y++ {
			for x := 0; x < o.Columns; x++ {
				g.SetGray(x, y, color.Gray{uint8(Value(x, y, o.Columns, o.Rows, 8))})
			}
		}
		var j bytes.Buffer
		jpeg.Encode(&j, g, nil)
		frag := j.Bytes()
		if len(frag)%2 == 1 {
			frag = append(frag, 0)
		}
		var body bytes.Buffer
		for f := 0; f < o.Frames+1; f++ { // the offset table, then a fragment per frame
			binary.Write(&body, d.bo, uint16(0xFFFE))
			binary.Write(&body, d.bo, uint16(0xE000))
			if f == 0 {
				binary.Write(&body, d.bo, uint32(0))
				continue
			}
			binary.Write(&body, d.bo, uint32(len(frag)))
			body.Write(frag)
		}
		d.delim(&body, 0xE0DD)
		e := d.el(0x7FE00010, "OB", nil)
		e.b = append(e.b[:len(e.b)-4], 0xFF, 0xFF, 0xFF, 0xFF)
		e.b = append(e.b, body.Bytes()...)
		return e
	}
	var px bytes.Buffer
	for f := 0; f < o.Frames; f++ {
		for y := 0; y < o.Rows; y++ {
			for x := 0; x < o.Columns; x++ {
				v := Value(x, y, o.Columns, o.Rows, o.Bits)
				for s := 0; s < samples; s++ {
					if o.Bits == 8 {
						px.WriteByte(uint8(v))
					} else {
						binary.Write(&px, d.bo, uint16(v))
					}
				}
			}
		}
	}
	b := px.Bytes()
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	vr := "OW"
	if o.Bits == 8 {
		vr = "OB"
	}
	return d.el(0x7FE00010, vr, b)
}

// HasAny reports which of the markers b holds, ignoring case.
func HasAny(b []byte, markers ...string) []string {
	var found []string
	lower := bytes.ToLower(b)
	for _, m := range markers {
		if bytes.Contains(lower, []byte(strings.ToLower(m))) {
			found = append(found, m)
		}
	}
	return found
}
