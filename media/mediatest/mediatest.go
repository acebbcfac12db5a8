// Package mediatest makes the files media's tests and the server's tests
// upload: photos carrying every kind of metadata a camera or an editor
// writes (GPS position, camera, owner, comments, XMP, ICC, IPTC, PNG text)
// and DICOM images in several encodings, each with markers a test then
// searches for. It holds no PHI and touches no key: it only builds bytes.
package mediatest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"testing"
)

// Pattern is an image a test can tell the orientation of: red on the
// left half, blue on the right, with a green square in the top-left
// corner.
func Pattern(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{200, 30, 30, 255}
			if x >= w/2 {
				c = color.RGBA{30, 30, 200, 255}
			}
			if x < w/4 && y < h/4 {
				c = color.RGBA{30, 200, 30, 255}
			}
			m.Set(x, y, c)
		}
	}
	return m
}

// PhotoMarkers are what a test photo carries, to be looked for after.
type PhotoMarkers struct {
	Comment string // in a JPEG COM segment, an EXIF Artist, XMP, IPTC and an ICC description
	// GPS position written into the EXIF GPS directory: 48° 51' 30" N,
	// 2° 17' 40" E (the Eiffel Tower).
	GPS bool
	// Orientation is the EXIF orientation (1 to 8); 0 writes none.
	Orientation int
}

// JPEG encodes m as a JPEG carrying EXIF (camera, owner, GPS position,
// orientation), XMP, an ICC profile, IPTC, a comment, and bytes after the
// image's end, each holding the marker.
func JPEG(m image.Image, mk PhotoMarkers) []byte {
	var plain bytes.Buffer
	if err := jpeg.Encode(&plain, m, &jpeg.Options{Quality: 92}); err != nil {
		panic(err)
	}
	b := plain.Bytes()
	var out bytes.Buffer
	out.Write(b[:2]) // SOI
	segment(&out, 0xE1, append([]byte("Exif\x00\x00"), exif(mk)...))
	segment(&out, 0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:creator><rdf:Seq><rdf:li>"+mk.Comment+"</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"))
	segment(&out, 0xE2, append([]byte("ICC_PROFILE\x00\x01\x01"), icc(mk.Comment)...))
	segment(&out, 0xED, iptc(mk.Comment))
	segment(&out, 0xFE, []byte(mk.Comment))
	out.Write(b[2:])
	out.WriteString("trailing " + mk.Comment)
	return out.Bytes()
}

func segment(out *bytes.Buffer, marker byte, data []byte) {
	out.Write([]byte{0xFF, marker})
	binary.Write(out, binary.BigEndian, uint16(len(data)+2))
	out.Write(data)
}

// tiffEntry is one IFD entry before layout.
type tiffEntry struct {
	tag, typ uint16
	count    uint32
	data     []byte // the value's bytes; inline when at most 4
}

func ascii(tag uint16, s string) tiffEntry {
	return tiffEntry{tag, 2, uint32(len(s) + 1), append([]byte(s), 0)}
}

func rationals(tag uint16, vs ...uint32) tiffEntry {
	var b []byte
	for i := 0; i < len(vs); i += 2 {
		b = binary.LittleEndian.AppendUint32(b, vs[i])
		b = binary.LittleEndian.AppendUint32(b, vs[i+1])
	}
	return tiffEntry{tag, 5, uint32(len(vs) / 2), b}
}

// ifd lays out a directory at offset at, its out-of-line values after
// it, and returns its bytes.
func ifd(at uint32, es []tiffEntry) []byte {
	var dir, data bytes.Buffer
	binary.Write(&dir, binary.LittleEndian, uint16(len(es)))
	dataAt := at + 2 + 12*uint32(len(es)) + 4
	for _, e := range es {
		binary.Write(&dir, binary.LittleEndian, e.tag)
		binary.Write(&dir, binary.LittleEndian, e.typ)
		binary.Write(&dir, binary.LittleEndian, e.count)
		if len(e.data) <= 4 {
			v := make([]byte, 4)
			copy(v, e.data)
			dir.Write(v)
			continue
		}
		binary.Write(&dir, binary.LittleEndian, dataAt+uint32(data.Len()))
		data.Write(e.data)
		if data.Len()%2 == 1 {
			data.WriteByte(0)
		}
	}
	binary.Write(&dir, binary.LittleEndian, uint32(0)) // no next directory
	return append(dir.Bytes(), data.Bytes()...)
}

// exif is a little-endian TIFF structure: the camera, its owner, the
// orientation, and a GPS directory.
func exif(mk PhotoMarkers) []byte {
	ifd0 := []tiffEntry{ascii(0x010F, "HavenTestCam"), ascii(0x0110, "Model "+mk.Comment)}
	if mk.Orientation > 0 {
		ifd0 = append(ifd0, tiffEntry{0x0112, 3, 1, binary.LittleEndian.AppendUint16(nil, uint16(mk.Orientation))})
	}
	ifd0 = append(ifd0, ascii(0x013B, "Artist "+mk.Comment))
	gps := []tiffEntry{
		{0x0000, 1, 4, []byte{2, 2, 0, 0}},
		ascii(0x0001, "N"), rationals(0x0002, 48, 1, 51, 1, 30, 1),
		ascii(0x0003, "E"), rationals(0x0004, 2, 1, 17, 1, 40, 1),
	}
	if mk.GPS {
		ifd0 = append(ifd0, tiffEntry{0x8825, 4, 1, nil}) // its offset is set below
	}
	// IFD0's size does not depend on the GPS offset's value.
	size0 := len(ifd(8, ifd0))
	gpsAt := uint32(8 + size0)
	if size0%2 == 1 {
		gpsAt++
	}
	if mk.GPS {
		ifd0[len(ifd0)-1].data = binary.LittleEndian.AppendUint32(nil, gpsAt)
	}
	out := []byte("II*\x00\x08\x00\x00\x00")
	out = append(out, ifd(8, ifd0)...)
	if mk.GPS {
		for uint32(len(out)) < gpsAt {
			out = append(out, 0)
		}
		out = append(out, ifd(gpsAt, gps)...)
	}
	return out
}

// icc is a minimal ICC profile header and a description tag holding s.
func icc(s string) []byte {
	desc := append([]byte("desc\x00\x00\x00\x00"), binary.BigEndian.AppendUint32(nil, uint32(len(s)+1))...)
	desc = append(desc, s...)
	desc = append(desc, 0)
	p := make([]byte, 128)
	copy(p[36:], "acsp")
	p = binary.BigEndian.AppendUint32(p, 1)        // one tag
	p = append(p, "desc"...)                       // its signature
	p = binary.BigEndian.AppendUint32(p, 128+4+12) // its offset
	p = binary.BigEndian.AppendUint32(p, uint32(len(desc)))
	p = append(p, desc...)
	binary.BigEndian.PutUint32(p, uint32(len(p)))
	return p
}

// iptc is a Photoshop image resource block with an IPTC caption.
func iptc(s string) []byte {
	rec := append([]byte{0x1C, 0x02, 0x78}, binary.BigEndian.AppendUint16(nil, uint16(len(s)))...)
	rec = append(rec, s...)
	b := []byte("Photoshop 3.0\x008BIM\x04\x04\x00\x00")
	b = binary.BigEndian.AppendUint32(b, uint32(len(rec)))
	b = append(b, rec...)
	if len(rec)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// PNG encodes m as a PNG carrying text chunks (tEXt, zTXt-free iTXt), an
// eXIf chunk, a tIME chunk and bytes after its end, each with the marker.
func PNG(m image.Image, marker string) []byte {
	var plain bytes.Buffer
	if err := png.Encode(&plain, m); err != nil {
		panic(err)
	}
	b := plain.Bytes()
	ihdrEnd := 8 + 12 + int(binary.BigEndian.Uint32(b[8:]))
	var out bytes.Buffer
	out.Write(b[:ihdrEnd])
	chunk(&out, "tEXt", []byte("Author\x00"+marker))
	chunk(&out, "iTXt", []byte("Description\x00\x00\x00\x00\x00"+marker))
	chunk(&out, "eXIf", exif(PhotoMarkers{Comment: marker, GPS: true}))
	chunk(&out, "tIME", []byte{0x07, 0xEA, 11, 25, 12, 0, 0})
	out.Write(b[ihdrEnd:])
	out.WriteString("trailing " + marker)
	return out.Bytes()
}

func chunk(out *bytes.Buffer, typ string, data []byte) {
	binary.Write(out, binary.BigEndian, uint32(len(data)))
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	out.WriteString(typ)
	out.Write(data)
	binary.Write(out, binary.BigEndian, crc.Sum32())
}

// ExifTool runs exiftool (Debian's libimage-exiftool-perl), an
// independent reader of every kind of image metadata, over b and returns
// every tag it finds, by group and name ("GPS:GPSLatitude",
// "File:Comment"). Without exiftool the test is skipped, and fails in CI,
// which installs it.
func ExifTool(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	path, err := exec.LookPath("exiftool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("exiftool is not installed: .ci/run installs libimage-exiftool-perl")
		}
		tb.Skip("exiftool is not installed (apt-get install libimage-exiftool-perl)")
	}
	cmd := exec.Command(path, "-j", "-a", "-G1", "-b", "-")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("exiftool: %v", err)
	}
	var res []map[string]any
	if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 {
		tb.Fatalf("exiftool's answer: %v\n%s", err, out)
	}
	return res[0]
}
