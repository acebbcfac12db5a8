package media_test

import (
	"bytes"
	"image"
	"image/png"
	"testing"

	"haven/media"
	"haven/media/mediatest"
)

// BenchmarkReadDICOM measures reading a 512×512 16-bit CT-like DICOM
// image (its structure walked, parsed, the study read, the first frame
// rendered to a PNG preview and a JPEG thumbnail, the de-identified copy
// written) against the same run's baseline: encoding a PNG of the same
// pixel count, the least a preview costs. It reports ms per MiB of DICOM.
//
//	go test -run '^$' -bench ReadDICOM ./media
func BenchmarkReadDICOM(b *testing.B) {
	dcm := mediatest.DICOM(mediatest.DICOMOptions{Marker: "bench", Rows: 512, Columns: 512})
	mib := float64(len(dcm)) / (1 << 20)
	uid := func(u string) string { return "2.25.1" }
	b.Run("read", func(b *testing.B) {
		b.SetBytes(int64(len(dcm)))
		for b.Loop() {
			img, err := media.ReadDICOM(dcm, uid)
			if err != nil || img.Preview == nil || img.Deidentified == nil {
				b.Fatalf("%v %+v", err, img.Study)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N)/mib, "ms/MiB")
	})
	b.Run("baseline", func(b *testing.B) {
		m := image.NewGray16(image.Rect(0, 0, 512, 512))
		for i := range m.Pix {
			m.Pix[i] = byte(i * 7)
		}
		b.SetBytes(int64(len(dcm)))
		for b.Loop() {
			var out bytes.Buffer
			if err := png.Encode(&out, m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N)/mib, "ms/MiB")
	})
}
