package media

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom/pkg/tag"
	"github.com/suyashkumar/dicom/pkg/uid"

	"haven"
)

// The DICOM library (github.com/suyashkumar/dicom) allocates what an
// element's declared length says before it reads a byte of it, and sizes
// pixel buffers from the image's own header: a 200-byte file can ask for
// gigabytes. So before the library sees a file, walk checks its whole
// structure here, with a grammar the library parses the same way but
// narrower: every length within the bytes that hold it, a bounded count
// of elements and depth of sequences, only value representations and
// transfer syntaxes both sides agree on. A file walk accepts can make the
// library allocate no more than a small multiple of its own size
// (FuzzDICOM checks this).
const (
	maxDICOMElements = 200_000 // elements and items in one file
	maxDICOMDepth    = 12      // sequences within sequences
	maxDICOMText     = 1 << 20 // bytes of one text value (names, dates, descriptions)
)

// Tags the walk and the study read.
const (
	tagGroupLength      = 0x00020000
	tagMediaSOPInstance = 0x00020003
	tagTransferSyntax   = 0x00020010
	tagSourceAETitle    = 0x00020016
	tagItem             = 0xFFFEE000
	tagItemEnd          = 0xFFFEE00D
	tagSequenceEnd      = 0xFFFEE0DD
	tagSamplesPerPixel  = 0x00280002
	tagPhotometric      = 0x00280004
	tagPlanarConfig     = 0x00280006
	tagNumberOfFrames   = 0x00280008
	tagRows             = 0x00280010
	tagColumns          = 0x00280011
	tagBitsAllocated    = 0x00280100
	tagBitsStored       = 0x00280101
	tagPixelRep         = 0x00280103
	tagBurnedIn         = 0x00280301
	tagPixelData        = 0x7FE00010
	undefinedLength     = 0xFFFFFFFF
)

// longVRs are the value representations whose explicit encoding has two
// reserved bytes and a 32-bit length, as the library reads them. OV, SV
// and UV (added to the standard later) are long too, but the library
// reads them short: walk refuses them rather than disagree.
var longVRs = map[string]bool{"OB": true, "OD": true, "OF": true, "OL": true, "OW": true, "SQ": true, "UN": true, "UC": true, "UR": true, "UT": true}

var shortVRs = map[string]bool{"AE": true, "AS": true, "AT": true, "CS": true, "DA": true, "DS": true, "DT": true, "FL": true, "FD": true,
	"IS": true, "LO": true, "LT": true, "PN": true, "SH": true, "SL": true, "SS": true, "ST": true, "TM": true, "UI": true, "UL": true, "US": true}

var textVRs = map[string]bool{"AE": true, "AS": true, "CS": true, "DA": true, "DS": true, "DT": true, "IS": true, "LO": true, "LT": true,
	"PN": true, "SH": true, "ST": true, "TM": true, "UI": true}

// dcmElement is one element of a walked file: where its header and value
// lie in the file's bytes, and for a sequence its items.
type dcmElement struct {
	tag        uint32
	vr         string
	start      int // the header's first byte
	value      int // the value's first byte
	length     uint32
	end        int // past the value (and its delimiter, for an undefined length)
	items      []*dcmItem
	fragmented bool // encapsulated pixel data: fragments, copied whole
}

// dcmItem is one item of a sequence: a nested data set.
type dcmItem struct {
	start, end int
	elements   []*dcmElement
}

// dcmFile is a walked file.
type dcmFile struct {
	buf      []byte
	meta     []*dcmElement // group 0002, always explicit little endian
	body     []*dcmElement
	bodyAt   int
	syntax   string // the transfer syntax UID
	bo       binary.ByteOrder
	implicit bool
}

type walker struct {
	buf      []byte
	bo       binary.ByteOrder
	implicit bool
	count    int
}

func dcmError(format string, args ...any) error {
	return haven.Errorf(haven.EINVALID, "the DICOM file cannot be read: "+format, args...)
}

// walk checks a whole DICOM file (Part 10: preamble, "DICM", file meta
// information, data set) and returns its structure.
func walk(buf []byte) (*dcmFile, error) {
	if len(buf) > MaxDecodedBytes {
		return nil, haven.Errorf(haven.EINVALID, "DICOM files may be at most %d MiB", MaxDecodedBytes>>20)
	}
	if len(buf) < 132+12 || string(buf[128:132]) != "DICM" {
		return nil, dcmError("it has no DICOM file header")
	}
	f := &dcmFile{buf: buf}
	w := &walker{buf: buf, bo: binary.LittleEndian}
	// The meta information opens with its own length, which the library
	// reads it by.
	first, err := w.element(132, len(buf), 0)
	if err != nil {
		return nil, err
	}
	if first.tag != tagGroupLength || first.vr != "UL" || first.length != 4 {
		return nil, dcmError("its file meta information has no group length")
	}
	metaEnd := int64(first.end) + int64(binary.LittleEndian.Uint32(buf[first.value:]))
	if metaEnd > int64(len(buf)) {
		return nil, dcmError("its file meta information runs past the end")
	}
	meta, err := w.dataset(first.end, int(metaEnd), 0, false)
	if err != nil {
		return nil, err
	}
	f.meta = append([]*dcmElement{first}, meta...)
	for _, e := range f.meta {
		if e.tag>>16 != 0x0002 {
			return nil, dcmError("its file meta information holds an element of another group")
		}
		if e.tag == tagTransferSyntax {
			f.syntax = f.text(e)
		}
	}
	canonical, err := uid.CanonicalTransferSyntaxUID(f.syntax)
	switch {
	case f.syntax == "":
		return nil, dcmError("it names no transfer syntax")
	case err != nil:
		return nil, dcmError("its transfer syntax is unknown")
	case canonical == uid.DeflatedExplicitVRLittleEndian:
		return nil, haven.Errorf(haven.EINVALID, "deflated DICOM files are not accepted: send the image uncompressed or with an image compression")
	}
	f.bo, f.implicit, _ = uid.ParseTransferSyntaxUID(canonical)
	w.bo, w.implicit = f.bo, f.implicit
	f.bodyAt = int(metaEnd)
	if f.body, err = w.dataset(f.bodyAt, len(buf), 0, false); err != nil {
		return nil, err
	}
	return f, nil
}

// dataset walks elements from pos to end; when delimited (an item of
// undefined length), up to and including the item's delimiter, which it
// returns last.
func (w *walker) dataset(pos, end, depth int, delimited bool) ([]*dcmElement, error) {
	var out []*dcmElement
	for pos < end {
		e, err := w.element(pos, end, depth)
		if err != nil {
			return nil, err
		}
		if e.tag == tagItemEnd {
			if !delimited {
				return nil, dcmError("an item ends where none began")
			}
			out = append(out, e) // the caller takes it off
			return out, nil
		}
		if e.tag == tagItem || e.tag == tagSequenceEnd {
			return nil, dcmError("an item or sequence delimiter stands outside a sequence")
		}
		out = append(out, e)
		pos = e.end
	}
	if delimited {
		return nil, dcmError("an item has no end")
	}
	return out, nil
}

// element walks the element at pos, which must end by end.
func (w *walker) element(pos, end, depth int) (*dcmElement, error) {
	if w.count++; w.count > maxDICOMElements {
		return nil, dcmError("it has more than %d elements", maxDICOMElements)
	}
	if depth > maxDICOMDepth {
		return nil, dcmError("its sequences nest more than %d deep", maxDICOMDepth)
	}
	buf := w.buf[:end]
	if pos+8 > len(buf) {
		return nil, dcmError("an element is cut short")
	}
	bo := w.bo
	e := &dcmElement{start: pos, tag: uint32(bo.Uint16(buf[pos:]))<<16 | uint32(bo.Uint16(buf[pos+2:]))}
	group := e.tag >> 16
	switch {
	case group == 0xFFFE: // items and delimiters: no VR in any syntax
		e.length, e.value = bo.Uint32(buf[pos+4:]), pos+8
		if e.tag == tagItemEnd || e.tag == tagSequenceEnd {
			if e.length != 0 {
				return nil, dcmError("a delimiter has a length")
			}
			e.end = e.value
			return e, nil
		}
		if e.tag != tagItem {
			return nil, dcmError("an unknown delimiter")
		}
		return e, nil // the sequence walks its items
	case w.implicit && group != 0x0002:
		e.vr = implicitVR(e.tag)
		e.length, e.value = bo.Uint32(buf[pos+4:]), pos+8
	default:
		e.vr = string(buf[pos+4 : pos+6])
		switch {
		case longVRs[e.vr]:
			if pos+12 > len(buf) {
				return nil, dcmError("an element is cut short")
			}
			e.length, e.value = bo.Uint32(buf[pos+8:]), pos+12
		case shortVRs[e.vr]:
			e.length, e.value = uint32(bo.Uint16(buf[pos+6:])), pos+8
			if e.length == 0xFFFF { // the library reads this as undefined
				return nil, dcmError("an element has an impossible length")
			}
		default:
			return nil, dcmError("an element has a value representation this server does not read")
		}
	}
	if e.length == undefinedLength {
		switch {
		case e.vr == "SQ", e.vr == "UN" && w.implicit:
			// An undefined length in implicit syntax is a sequence, as the
			// library reads it.
			e.vr = "SQ"
			return e, w.sequence(e, end, depth)
		case e.tag == tagPixelData && (e.vr == "OB" || e.vr == "OW") && !w.implicit:
			e.fragmented = true
			return e, w.fragments(e, end)
		}
		return nil, dcmError("an element has an undefined length it may not have")
	}
	stop := int64(e.value) + int64(e.length)
	if stop > int64(len(buf)) {
		return nil, dcmError("an element runs past the end of what holds it")
	}
	if textVRs[e.vr] && e.length > maxDICOMText {
		return nil, dcmError("a text element is longer than %d KiB", maxDICOMText>>10)
	}
	e.end = int(stop)
	if e.vr == "SQ" {
		return e, w.sequence(e, e.end, depth)
	}
	// Anything else, a defined-length UN too, the library reads as one
	// value: nothing inside to walk.
	return e, nil
}

// sequence walks a sequence's items: up to its delimiter for an
// undefined length, or exactly filling its length.
func (w *walker) sequence(e *dcmElement, end, depth int) error {
	pos := e.value
	limit := end
	for {
		if e.length != undefinedLength && pos == limit {
			e.end = pos
			return nil
		}
		it, err := w.element(pos, limit, depth+1)
		if err != nil {
			return err
		}
		if it.tag == tagSequenceEnd {
			if e.length != undefinedLength {
				return dcmError("a sequence of defined length has a delimiter")
			}
			e.end = it.end
			return nil
		}
		if it.tag != tagItem {
			return dcmError("a sequence holds something other than items")
		}
		item := &dcmItem{start: it.start}
		if it.length == undefinedLength {
			elems, err := w.dataset(it.value, limit, depth+1, true)
			if err != nil {
				return err
			}
			delim := elems[len(elems)-1]
			item.elements, item.end = elems[:len(elems)-1], delim.end
		} else {
			stop := int64(it.value) + int64(it.length)
			if stop > int64(limit) {
				return dcmError("an item runs past the end of its sequence")
			}
			if item.elements, err = w.dataset(it.value, int(stop), depth+1, false); err != nil {
				return err
			}
			item.end = int(stop)
		}
		e.items = append(e.items, item)
		pos = item.end
	}
}

// fragments walks encapsulated (compressed) pixel data: an offset table
// and fragments, each a defined-length item, up to the delimiter.
func (w *walker) fragments(e *dcmElement, end int) error {
	pos := e.value
	for {
		if w.count++; w.count > maxDICOMElements {
			return dcmError("it has more than %d elements", maxDICOMElements)
		}
		if pos+8 > end {
			return dcmError("compressed pixel data is cut short")
		}
		t := uint32(w.bo.Uint16(w.buf[pos:]))<<16 | uint32(w.bo.Uint16(w.buf[pos+2:]))
		n := w.bo.Uint32(w.buf[pos+4:])
		switch {
		case t == tagSequenceEnd && n == 0:
			e.end = pos + 8
			return nil
		case t != tagItem || n == undefinedLength:
			return dcmError("compressed pixel data holds something other than fragments")
		}
		stop := int64(pos) + 8 + int64(n)
		if stop > int64(end) {
			return dcmError("a fragment of compressed pixel data runs past the end")
		}
		pos = int(stop)
	}
}

// implicitVR is the VR the library gives a tag in implicit syntax: the
// dictionary's first, OW for pixel and overlay data, UN when unknown.
func implicitVR(t uint32) string {
	tg := tag.Tag{Group: uint16(t >> 16), Element: uint16(t)}
	if tg == tag.PixelData || tg == tag.OverlayData {
		return "OW"
	}
	if info, err := tag.Find(tg); err == nil && len(info.VRs) > 0 {
		return info.VRs[0]
	}
	return "UN"
}

// find returns the top-level element with tag t, or nil.
func find(elems []*dcmElement, t uint32) *dcmElement {
	for _, e := range elems {
		if e.tag == t {
			return e
		}
	}
	return nil
}

// text returns an element's value as text, without its padding.
func (f *dcmFile) text(e *dcmElement) string {
	if e == nil || e.length == undefinedLength {
		return ""
	}
	return strings.TrimRight(string(f.buf[e.value:e.end]), "\x00 ")
}

// uint16Of returns an US element's first value, or -1.
func (f *dcmFile) uint16Of(t uint32) int {
	e := find(f.body, t)
	if e == nil || e.length < 2 || e.vr != "US" {
		return -1
	}
	return int(f.bo.Uint16(f.buf[e.value:]))
}

// intOf returns an IS element's first value, or def when it has none.
func (f *dcmFile) intOf(t uint32, def int) int {
	s := f.text(find(f.body, t))
	if i := strings.IndexByte(s, '\\'); i >= 0 {
		s = s[:i]
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return n
}

// hasMarker reports whether b holds the DICOM file marker where a Part 10
// file has it.
func hasMarker(b []byte) bool { return len(b) >= 132 && bytes.Equal(b[128:132], []byte("DICM")) }
