package media_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"slices"
	"strings"
	"testing"

	"haven"
	"haven/media"
	"haven/media/mediatest"
)

func TestSniffDecidesFromTheContent(t *testing.T) {
	jpg := mediatest.JPEG(mediatest.Pattern(8, 8), mediatest.PhotoMarkers{Comment: "x"})
	pngb := mediatest.PNG(mediatest.Pattern(8, 8), "x")
	dcm := mediatest.DICOM(mediatest.DICOMOptions{Marker: "x"})
	heic := append([]byte{0, 0, 0, 0x18}, []byte("ftypheic\x00\x00\x00\x00mif1heic")...)
	for _, tc := range []struct {
		name, want, refusal string
		head                []byte
	}{
		{"jpeg", media.JPEG, "", jpg},
		{"png", media.PNG, "", pngb},
		{"pdf", media.PDF, "", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")},
		{"dicom", media.DICOM, "", dcm},
		{"heic", "", "HEIC photos cannot be read here", heic},
		{"text", "", "not accepted", []byte("hello, this is a note")},
		{"html posing as a photo", "", "not accepted", []byte("<html><script>alert(1)</script>")},
		{"executable", "", "not accepted", append([]byte("MZ\x90\x00"), make([]byte, 600)...)},
		{"gif", "", "not accepted", []byte("GIF89a\x01\x00\x01\x00")},
		{"pdf marker too late", "", "not accepted", []byte("  %PDF-1.7")},
		{"empty", "", "empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := media.Sniff(tc.head[:min(len(tc.head), media.SniffLen)])
			if tc.refusal != "" {
				if haven.ErrorCode(err) != haven.EINVALID || !strings.Contains(haven.ErrorMessage(err), tc.refusal) {
					t.Fatalf("got %q, %v; want a refusal saying %q", got, err, tc.refusal)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestCleanPhotoRemovesEveryKindOfMetadata: a JPEG carrying EXIF (camera,
// owner, GPS), XMP, ICC, IPTC, a comment and trailing bytes, and a PNG
// with text, EXIF and time chunks, come out with none of it, as our own
// scanner and exiftool both read them, and the marker is in no byte of
// the photo or its renditions.
func TestCleanPhotoRemovesEveryKindOfMetadata(t *testing.T) {
	const marker = "Zq9Rash"
	jpg := mediatest.JPEG(mediatest.Pattern(120, 80), mediatest.PhotoMarkers{Comment: marker, GPS: true, Orientation: 1})
	pngb := mediatest.PNG(mediatest.Pattern(120, 80), marker)
	for _, in := range []struct {
		typ  string
		b    []byte
		want []string
	}{
		{media.JPEG, jpg, []string{"EXIF", "XMP", "ICC profile", "IPTC", "comment", "trailing data"}},
		{media.PNG, pngb, []string{`"tEXt" chunk`, `"iTXt" chunk`, `"eXIf" chunk`, `"tIME" chunk`, "trailing data"}},
	} {
		t.Run(in.typ, func(t *testing.T) {
			before := media.Metadata(in.b)
			for _, w := range in.want {
				if !slices.Contains(before, w) {
					t.Fatalf("the test photo lacks %s (it has %v): the test would prove nothing", w, before)
				}
			}
			tags := mediatest.ExifTool(t, in.b)
			if _, ok := tags["GPS:GPSLatitude"]; !ok {
				t.Fatalf("exiftool finds no GPS position in the test photo: %v", tags)
			}
			p, err := media.CleanPhoto(in.b, in.typ)
			if err != nil {
				t.Fatal(err)
			}
			if p.Width != 120 || p.Height != 80 || p.Type != in.typ {
				t.Fatalf("photo %+v", p)
			}
			for name, b := range map[string][]byte{"photo": p.Clean, "preview": p.Preview, "thumbnail": p.Thumbnail} {
				if found := media.Metadata(b); len(found) > 0 {
					t.Errorf("the cleaned %s holds %v", name, found)
				}
				if found := mediatest.HasAny(b, marker, "HavenTestCam"); len(found) > 0 {
					t.Errorf("the cleaned %s holds %v", name, found)
				}
				for tag, v := range mediatest.ExifTool(t, b) {
					group, _, _ := strings.Cut(tag, ":")
					switch group {
					case "ExifTool", "System", "File", "JFIF", "PNG", "Composite", "SourceFile":
					default:
						t.Errorf("exiftool finds %s = %v in the cleaned %s", tag, v, name)
					}
					if strings.Contains(strings.ToLower(tag), "gps") || strings.Contains(strings.ToLower(tag), "comment") {
						t.Errorf("exiftool finds %s = %v in the cleaned %s", tag, v, name)
					}
				}
			}
			if _, _, err := image.Decode(bytes.NewReader(p.Clean)); err != nil {
				t.Fatalf("the cleaned photo does not decode: %v", err)
			}
		})
	}
}

// TestCleanPhotoAppliesTheOrientation: a photo stored sideways with an
// EXIF orientation comes out turned as the camera meant, for all eight.
func TestCleanPhotoAppliesTheOrientation(t *testing.T) {
	// Where the source's top-left green square is shown, per orientation.
	corner := map[int]string{1: "top-left", 2: "top-right", 3: "bottom-right", 4: "bottom-left", 5: "top-left", 6: "top-right", 7: "bottom-right", 8: "bottom-left"}
	for o := 1; o <= 8; o++ {
		jpg := mediatest.JPEG(mediatest.Pattern(80, 40), mediatest.PhotoMarkers{Comment: "x", Orientation: o})
		if got := media.Orientation(jpg); got != o {
			t.Fatalf("orientation %d read as %d", o, got)
		}
		p, err := media.CleanPhoto(jpg, media.JPEG)
		if err != nil {
			t.Fatal(err)
		}
		w, h := 80, 40
		if o >= 5 {
			w, h = 40, 80
		}
		m, err := jpeg.Decode(bytes.NewReader(p.Clean))
		if err != nil || m.Bounds().Dx() != w || m.Bounds().Dy() != h || p.Width != w || p.Height != h {
			t.Fatalf("orientation %d: %v, %v (reported %dx%d), want %dx%d", o, err, m.Bounds(), p.Width, p.Height, w, h)
		}
		at := map[string]image.Point{"top-left": {4, 4}, "top-right": {w - 5, 4}, "bottom-right": {w - 5, h - 5}, "bottom-left": {4, h - 5}}
		for where, pt := range at {
			r, g, b, _ := m.At(pt.X, pt.Y).RGBA()
			green := g>>8 > 150 && r>>8 < 100 && b>>8 < 100
			if green != (where == corner[o]) {
				t.Errorf("orientation %d: at the %s the pixel is %v %v %v", o, where, r>>8, g>>8, b>>8)
			}
		}
	}
}

// TestCleanPhotoRefusesHugeCanvases: a small file claiming a canvas of a
// billion pixels is refused from its header, before any decoding.
func TestCleanPhotoRefusesHugeCanvases(t *testing.T) {
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1)))
	huge := bytes.Clone(b.Bytes())
	binary.BigEndian.PutUint32(huge[16:], 40000)
	binary.BigEndian.PutUint32(huge[20:], 40000)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))
	if _, err := media.CleanPhoto(huge, media.PNG); haven.ErrorCode(err) != haven.EINVALID || !strings.Contains(err.Error(), "megapixels") {
		t.Fatalf("a 1.6-gigapixel canvas: %v", err)
	}
	if _, err := media.CleanPhoto([]byte("\xff\xd8\xff\xe0 not really"), media.JPEG); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("a broken JPEG: %v", err)
	}
}

func TestFitKeepsTheShapeAndFlattensTransparency(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 1000, 250))
	m.Set(0, 0, color.NRGBA{0, 0, 0, 0})
	f := media.Fit(m, 320)
	if f.Bounds().Dx() != 320 || f.Bounds().Dy() != 80 {
		t.Fatalf("fit %v", f.Bounds())
	}
	if c := f.RGBAAt(0, 0); c != (color.RGBA{255, 255, 255, 255}) {
		t.Fatalf("transparent is %v, want white", c)
	}
	if small := media.Fit(image.NewGray(image.Rect(0, 0, 10, 5)), 320); small.Bounds().Dx() != 10 {
		t.Fatalf("a small image was scaled up: %v", small.Bounds())
	}
}
