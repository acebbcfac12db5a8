package media_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"image/jpeg"
	"image/png"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"haven"
	"haven/internal/testkit"
	"haven/media"
	"haven/media/mediatest"
)

// testUID maps a UID as the service's keyed mapping does: the same
// answer for the same UID, under 2.25.
func testUID(u string) string {
	h := sha256.Sum256([]byte("test key " + u))
	return "2.25." + new(big.Int).SetBytes(h[:16]).String()
}

func strOf(t *testing.T, ds dicom.Dataset, tg tag.Tag) (string, bool) {
	t.Helper()
	e, err := ds.FindElementByTag(tg)
	if err != nil {
		return "", false
	}
	vs, _ := e.Value.GetValue().([]string)
	return strings.Join(vs, `\`), true
}

// TestReadDICOMStudyPreviewAndDeidentifiedCopy reads the same CT slice in
// each encoding: its study, a preview that shows the image the right way
// up, and a de-identified copy that names no one, keeps the pixels and
// the body part, and replaces instance UIDs consistently.
func TestReadDICOMStudyPreviewAndDeidentifiedCopy(t *testing.T) {
	const mk = "Qz5Dcm"
	for _, o := range []mediatest.DICOMOptions{
		{Marker: mk},
		{Marker: mk, Implicit: true},
		{Marker: mk, BigEndian: true},
		{Marker: mk, Bits: 8, Rows: 48, Columns: 80},
		{Marker: mk, RGB: true},
	} {
		name := fmt.Sprintf("implicit=%v bigendian=%v bits=%d rgb=%v", o.Implicit, o.BigEndian, o.Bits, o.RGB)
		t.Run(name, func(t *testing.T) {
			in := mediatest.DICOM(o)
			img, err := media.ReadDICOM(in, testUID)
			if err != nil {
				t.Fatal(err)
			}
			st := img.Study
			want := haven.DICOMStudy{PatientName: "Jane " + mk, PatientID: "ID" + mk, PatientBirthDate: "1980-02-03", Modality: "CT",
				StudyDate: "2024-11-12", StudyDescription: "Chest " + mk, BodyPart: "CHEST", SeriesDescription: "Axial lung", SeriesNumber: "3", InstanceNumber: "1"}
			if st.PatientName != want.PatientName || st.PatientID != want.PatientID || st.PatientBirthDate != want.PatientBirthDate ||
				st.Modality != want.Modality || st.StudyDate != want.StudyDate || st.StudyDescription != want.StudyDescription ||
				st.BodyPart != want.BodyPart || st.SeriesDescription != want.SeriesDescription || st.SeriesNumber != want.SeriesNumber {
				t.Errorf("study %+v", st)
			}
			if !st.Previewable || st.Compressed || st.Frames != 1 || !st.Deidentifiable {
				t.Fatalf("study %+v", st)
			}
			m, err := png.Decode(bytes.NewReader(img.Preview))
			if err != nil {
				t.Fatal(err)
			}
			w, h := o.Columns, o.Rows
			if w == 0 {
				w, h = 64, 64
			}
			if m.Bounds().Dx() != w || m.Bounds().Dy() != h {
				t.Fatalf("preview %v", m.Bounds())
			}
			lum := func(x, y int) uint32 { r, g, b, _ := m.At(x, y).RGBA(); return (r + g + b) / 3 >> 8 }
			if lum(2, 2) < 200 || lum(w-2, h-2) <= lum(w/2, h-2) || lum(w/3, h-2) >= lum(w/2, h-2) {
				t.Errorf("the preview does not show the test image: corner %d, ramp %d < %d < %d", lum(2, 2), lum(w/3, h-2), lum(w/2, h-2), lum(w-2, h-2))
			}
			if _, err := jpeg.Decode(bytes.NewReader(img.Thumbnail)); err != nil {
				t.Fatalf("thumbnail: %v", err)
			}

			out := img.Deidentified
			if found := mediatest.HasAny(out, mk, "19800203", "20241112", "Institution", "Referrer", "Operator", "HAVENTEST"[:9]+"\x00"); len(found) > 0 {
				t.Errorf("the de-identified copy holds %v", found)
			}
			ds, err := dicom.Parse(bytes.NewReader(out), int64(len(out)), nil)
			if err != nil {
				t.Fatalf("the library cannot read the copy: %v", err)
			}
			for tg, want := range map[tag.Tag]string{
				tag.PatientIdentityRemoved:     "YES",
				tag.Modality:                   "CT",
				tag.BodyPartExamined:           "CHEST",
				tag.SOPClassUID:                "1.2.840.10008.5.1.4.1.1.2",
				tag.StudyInstanceUID:           testUID(mediatest.UID("1001")),
				tag.SOPInstanceUID:             testUID(mediatest.UID("2001")),
				tag.MediaStorageSOPInstanceUID: testUID(mediatest.UID("2001")),
				tag.PatientName:                "",
				tag.PatientID:                  "",
			} {
				if got, ok := strOf(t, ds, tg); !ok || strings.TrimRight(got, "\x00 ") != want {
					t.Errorf("%s in the copy: %q (present %v), want %q", tg, got, ok, want)
				}
			}
			for _, gone := range []tag.Tag{tag.InstitutionName, tag.StudyDescription, tag.OtherPatientIDsSequence, tag.PatientAge, {Group: 0x0029, Element: 0x1010}} {
				if _, err := ds.FindElementByTag(gone); err == nil {
					t.Errorf("%s is still in the copy", gone)
				}
			}
			// The UIDs inside a kept sequence are replaced too, and a name
			// inside a sequence is emptied.
			ref, err := ds.FindElementByTagNested(tag.ReferencedSOPInstanceUID)
			if err != nil || strings.TrimRight(strings.Join(ref.Value.GetValue().([]string), ""), "\x00") != testUID(mediatest.UID("2002")) {
				t.Errorf("referenced instance in the copy: %v %v", ref, err)
			}
			// The pixels are the original's, byte for byte.
			if px := pixelBytes(in); !bytes.Contains(out, px) {
				t.Error("the copy's pixel data differs from the original's")
			}
			dcmdump(t, out)
		})
	}
}

// pixelBytes returns a test file's pixel data value (the file's tail
// after the pixel data header).
func pixelBytes(b []byte) []byte {
	for _, hdr := range [][]byte{{0xE0, 0x7F, 0x10, 0x00}, {0x7F, 0xE0, 0x00, 0x10}} {
		if i := bytes.LastIndex(b, hdr); i >= 0 {
			return b[i+12:]
		}
	}
	return nil
}

// dcmdump has DCMTK (Debian's dcmtk), an independent DICOM reader, read
// a de-identified copy: it must parse it without complaint and find no
// patient name in it.
func dcmdump(t *testing.T, b []byte) {
	t.Helper()
	path, err := exec.LookPath("dcmdump")
	if err != nil {
		if testkit.InCI() {
			t.Fatal("dcmdump is not installed: .ci/run installs dcmtk")
		}
		t.Log("dcmdump is not installed (apt-get install dcmtk): the copy is not checked by an independent reader")
		return
	}
	f := filepath.Join(t.TempDir(), "copy.dcm")
	os.WriteFile(f, b, 0o600)
	out, err := exec.Command(path, "-dc", "+E", f).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("W: ")) || bytes.Contains(out, []byte("E: ")) {
		t.Fatalf("dcmdump: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("(0012,0062) CS [YES")) {
		t.Errorf("dcmdump does not see Patient Identity Removed:\n%s", out)
	}
}

func TestReadDICOMMarksWhatItCannotPreview(t *testing.T) {
	for _, tc := range []struct {
		o   mediatest.DICOMOptions
		why string
	}{
		{mediatest.DICOMOptions{Marker: "m", Frames: 3}, "multi-frame"},
		{mediatest.DICOMOptions{Marker: "m", Compressed: true}, "compressed"},
	} {
		in := mediatest.DICOM(tc.o)
		img, err := media.ReadDICOM(in, testUID)
		if err != nil {
			t.Fatal(err)
		}
		st := img.Study
		if st.Previewable || img.Preview != nil || img.Thumbnail != nil || !strings.Contains(st.NotPreviewable, tc.why) {
			t.Errorf("%s: %+v", tc.why, st)
		}
		if tc.o.Compressed != st.Compressed || st.Modality != "CT" || !st.Deidentifiable {
			t.Errorf("%s: %+v", tc.why, st)
		}
		if tc.o.Compressed && !bytes.Contains(img.Deidentified, pixelBytes(in)) {
			t.Errorf("%s: the compressed fragments are not copied whole", tc.why)
		}
		dcmdump(t, img.Deidentified)
	}
	img, err := media.ReadDICOM(mediatest.DICOM(mediatest.DICOMOptions{Marker: "m", BurnedIn: true}), testUID)
	if err != nil {
		t.Fatal(err)
	}
	if img.Deidentified != nil || img.Study.Deidentifiable || !strings.Contains(img.Study.NotDeidentifiable, "drawn into its pixels") || !img.Study.Previewable {
		t.Fatalf("burned-in annotation: %+v", img.Study)
	}
}

// TestReadDICOMHoldsItsBounds feeds files built to make a parser allocate
// or recurse without end: each is refused, or read without decoding the
// pixels it lies about, using memory of the order of its own size.
func TestReadDICOMHoldsItsBounds(t *testing.T) {
	base := mediatest.DICOM(mediatest.DICOMOptions{Marker: "m"})
	patch := func(tg uint32, vr string, v []byte) []byte {
		// Rewrites the value of a 2-byte element of the test file.
		hdr := binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, uint16(tg>>16)), uint16(tg))
		hdr = append(hdr, vr...)
		i := bytes.Index(base, hdr)
		out := bytes.Clone(base)
		copy(out[i+8:], v)
		return out
	}
	// A patient name claiming 4 GiB (as an UN element, with a 32-bit length).
	hugeName := bytes.Clone(base)
	i := bytes.Index(hugeName, []byte{0x10, 0x00, 0x10, 0x00, 'P', 'N'})
	hugeName = append(hugeName[:i:i], append([]byte{0x10, 0x00, 0x10, 0x00, 'U', 'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFE}, hugeName[i+8:]...)...)
	// Sequences nested 1000 deep.
	var deep bytes.Buffer
	deep.Write(base[:bytes.Index(base, []byte{0x08, 0x00, 0x16, 0x00})])
	for range 1000 {
		deep.Write([]byte{0x08, 0x00, 0x40, 0x11, 'S', 'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF})
	}
	// A million empty elements.
	var many bytes.Buffer
	many.Write(deep.Bytes()[:bytes.Index(base, []byte{0x08, 0x00, 0x16, 0x00})])
	for range 1_000_000 {
		many.Write([]byte{0x09, 0x00, 0x10, 0x00, 'L', 'O', 0, 0})
	}
	for _, tc := range []struct {
		name    string
		b       []byte
		refused string // or "" for read, without a preview
	}{
		{"a 4 GiB name", hugeName, "runs past the end"},
		{"sequences 1000 deep", deep.Bytes(), "nest more than"},
		{"a million elements", many.Bytes(), "more than 200000 elements"},
		{"a 65535×65535 image in 8 KiB", patch(0x00280010, "US", []byte{0xFF, 0xFF}), ""},
		{"8 GiB of 32-bit pixels", patch(0x00280100, "US", []byte{32, 0}), ""},
		{"a cut-off file", base[:len(base)-100], "runs past the end"},
		{"no header", base[132:], "no DICOM file header"},
		{"deflated", deflated(base), "deflated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			img, err := media.ReadDICOM(tc.b, testUID)
			runtime.ReadMemStats(&after)
			if tc.refused != "" {
				if haven.ErrorCode(err) != haven.EINVALID || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("got %v, want a refusal saying %q", err, tc.refused)
				}
			} else if err != nil || img.Study.Previewable {
				t.Fatalf("got %v %+v, want the study without a preview", err, img)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(16*len(tc.b))+8<<20 {
				t.Errorf("reading %d bytes allocated %d", len(tc.b), grew)
			}
		})
	}
}

// deflated rewrites a test file's transfer syntax to deflated explicit VR
// little endian (its data set left as it is: refused before it is read).
func deflated(b []byte) []byte {
	ts := []byte("\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00")
	i := bytes.Index(b, ts)
	out := append(bytes.Clone(b[:i]), []byte("\x02\x00\x10\x00UI\x16\x001.2.840.10008.1.2.1.99")...)
	out = append(out, b[i+len(ts):]...)
	gl := binary.LittleEndian.Uint32(out[140:])
	binary.LittleEndian.PutUint32(out[140:], gl+2)
	return out
}
