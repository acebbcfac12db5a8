package media_test

import (
	"bytes"
	"image"
	"runtime"
	"testing"

	"github.com/suyashkumar/dicom"

	"haven/media"
	"haven/media/mediatest"
)

// Fuzz targets for the three parsers of uploaded bytes. Run one with,
// for example, go test -run '^$' -fuzz FuzzDICOM -fuzztime 60s
// -fuzzminimizetime 10s ./media (minimising a large DICOM input takes
// long without the last flag). Without -fuzz they run their seeds.

// FuzzSniff: any bytes get a type Haven accepts or a refusal, never a
// panic, and the answer depends on the leading bytes alone.
func FuzzSniff(f *testing.F) {
	f.Add(mediatest.JPEG(mediatest.Pattern(4, 4), mediatest.PhotoMarkers{Comment: "c"}))
	f.Add([]byte("%PDF-1.4"))
	f.Add(mediatest.DICOM(mediatest.DICOMOptions{Marker: "m"})[:200])
	f.Add([]byte("\x00\x00\x00\x18ftypheic"))
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, err := media.Sniff(b)
		if (typ == "") == (err == nil) {
			t.Fatalf("type %q with error %v", typ, err)
		}
		switch typ {
		case "", media.JPEG, media.PNG, media.PDF, media.DICOM:
		default:
			t.Fatalf("type %q", typ)
		}
		if len(b) > media.SniffLen {
			if again, _ := media.Sniff(b[:media.SniffLen]); again != typ {
				t.Fatalf("%q from the whole, %q from the head", typ, again)
			}
		}
	})
}

// FuzzCleanPhoto: whatever a photo's bytes, cleaning it does not panic,
// and what it returns decodes and carries no metadata at all.
func FuzzCleanPhoto(f *testing.F) {
	f.Add(mediatest.JPEG(mediatest.Pattern(16, 8), mediatest.PhotoMarkers{Comment: "c", GPS: true, Orientation: 6}))
	f.Add(mediatest.PNG(mediatest.Pattern(16, 8), "c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		media.Orientation(b)
		media.Metadata(b)
		typ, err := media.Sniff(b)
		if err != nil || (typ != media.JPEG && typ != media.PNG) {
			return
		}
		// Keep each run small: a fuzzed header may claim a large canvas
		// within the limits, which is valid and slow.
		var cfg image.Config
		if c, _, err := image.DecodeConfig(bytes.NewReader(b)); err == nil {
			cfg = c
		}
		if cfg.Width*cfg.Height > 1<<20 {
			return
		}
		p, err := media.CleanPhoto(b, typ)
		if err != nil {
			return
		}
		for _, out := range [][]byte{p.Clean, p.Preview, p.Thumbnail} {
			if found := media.Metadata(out); len(found) > 0 {
				t.Fatalf("cleaned output holds %v", found)
			}
			if _, _, err := image.Decode(bytes.NewReader(out)); err != nil {
				t.Fatalf("cleaned output does not decode: %v", err)
			}
		}
	})
}

// FuzzDICOM: whatever a DICOM file's bytes, reading it does not panic
// (the library's panics are caught), allocates no more than a bounded
// multiple of its size, and a de-identified copy, when one is made, is a
// file both this server and the library read again.
func FuzzDICOM(f *testing.F) {
	for _, o := range []mediatest.DICOMOptions{
		{Marker: "m", Rows: 4, Columns: 4},
		{Marker: "m", Rows: 4, Columns: 4, Implicit: true},
		{Marker: "m", Rows: 4, Columns: 4, BigEndian: true},
		{Marker: "m", Rows: 4, Columns: 4, Frames: 2},
		{Marker: "m", Rows: 8, Columns: 8, Compressed: true},
		{Marker: "m", Rows: 4, Columns: 4, RGB: true},
	} {
		f.Add(mediatest.DICOM(o))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		img, err := media.ReadDICOM(b, testUID)
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(32*len(b))+16<<20 {
			t.Fatalf("reading %d bytes allocated %d", len(b), grew)
		}
		if err != nil || img.Deidentified == nil {
			return
		}
		d := img.Deidentified
		if _, err := media.ReadDICOM(d, testUID); err != nil {
			t.Fatalf("the de-identified copy cannot be read again: %v", err)
		}
		if _, err := dicom.Parse(bytes.NewReader(d), int64(len(d)), nil, dicom.SkipPixelData(), dicom.AllowUnknownSpecificCharacterSet()); err != nil {
			t.Fatalf("the library cannot read the de-identified copy: %v", err)
		}
	})
}
