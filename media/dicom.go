package media

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
	"github.com/suyashkumar/dicom/pkg/uid"

	"haven"
)

// Image is what Haven keeps of a DICOM file beside the file itself.
type Image struct {
	Study        haven.DICOMStudy
	Preview      []byte // PNG of the first frame, nil when not previewable
	Thumbnail    []byte // JPEG, nil when not previewable
	Deidentified []byte // the PS3.15 basic-profile copy, nil when none can be made (Study says why)
}

// ReadDICOM reads a DICOM file (at most MaxDecodedBytes, whole in
// memory): its study details, a preview of its first frame when it is a
// single uncompressed frame, and a de-identified copy. mapUID gives the
// copy's replacement for an instance UID; it must give the same answer
// for the same UID (so a study's files still belong together) and must
// not be reversible by someone who knows the original.
//
// The file's structure is checked first (see walk); the library then
// parses it with the checks' conclusions (pixel data skipped when it
// could not be bounded), and a panic inside it is an error like any
// other. Errors never carry the library's own message, which may quote
// element values.
func ReadDICOM(buf []byte, mapUID func(string) string) (*Image, error) {
	f, err := walk(buf)
	if err != nil {
		return nil, err
	}
	img := &Image{}
	st := &img.Study
	st.TransferSyntax = f.syntax
	if e, err := uid.Lookup(f.syntax); err == nil {
		st.TransferSyntax = e.Name
	}
	decode := f.pixelsDecodable(st)
	ds, err := parse(buf, !decode)
	if err != nil && decode {
		// The pixels are what the library could not read: the study is
		// still worth having.
		st.Previewable, st.NotPreviewable = false, "its pixel data could not be read"
		decode = false
		ds, err = parse(buf, true)
	}
	if err != nil {
		return nil, dcmError("its elements could not be read")
	}
	studyOf(ds, st)
	if decode {
		if m, why := firstFrame(ds, f); m != nil {
			preview := Fit(m, PreviewSide)
			var out bytes.Buffer
			if err := png.Encode(&out, preview); err != nil {
				return nil, haven.Wrap(haven.EINTERNAL, err, "the preview could not be encoded")
			}
			img.Preview = out.Bytes()
			if img.Thumbnail, err = EncodeJPEG(Fit(preview, ThumbnailSide), 80); err != nil {
				return nil, err
			}
		} else {
			st.Previewable, st.NotPreviewable = false, why
		}
	}
	img.Deidentified, st.NotDeidentifiable = deidentify(f, mapUID)
	st.Deidentifiable = img.Deidentified != nil
	return img, nil
}

// pixelsDecodable decides, from the walked header alone, whether the
// library may decode the pixels: one uncompressed frame of 8 or 16 bits
// whose size is exactly what its pixel data holds, and no pixel data
// nested anywhere else (an icon) to be decoded unchecked. Otherwise it
// says in st why there is no preview.
func (f *dcmFile) pixelsDecodable(st *haven.DICOMStudy) bool {
	st.Rows, st.Columns = max(0, f.uint16Of(tagRows)), max(0, f.uint16Of(tagColumns))
	st.Frames = f.intOf(tagNumberOfFrames, 1)
	px := find(f.body, tagPixelData)
	no := func(why string) bool { st.Previewable, st.NotPreviewable = false, why; return false }
	switch {
	case px == nil:
		return no("the file holds no image")
	case px.fragmented:
		st.Compressed = true
		return no("compressed images are not previewed here; download the file to view it")
	case st.Frames != 1:
		return no("multi-frame images are not previewed here; download the file to view it")
	case nestedPixels(f.body, 0):
		return no("the file holds more than one image")
	}
	bits, samples := f.uint16Of(tagBitsAllocated), f.uint16Of(tagSamplesPerPixel)
	photometric := f.text(find(f.body, tagPhotometric))
	switch {
	case bits != 8 && bits != 16:
		return no(fmt.Sprintf("%d-bit images are not previewed here", max(bits, 0)))
	case !(samples == 1 && (photometric == "MONOCHROME1" || photometric == "MONOCHROME2")) && !(samples == 3 && bits == 8 && photometric == "RGB"):
		return no("images in this colour model are not previewed here")
	case st.Rows == 0 || st.Columns == 0:
		return no("the image has no size")
	}
	want := int64(st.Rows) * int64(st.Columns) * int64(samples) * int64(bits/8)
	if got := int64(px.length); got != want && !(got == want+1 && got%2 == 0) {
		return no("the image's pixel data does not match its size")
	}
	st.Previewable = true
	return true
}

// nestedPixels reports whether pixel data lies inside a sequence.
func nestedPixels(elems []*dcmElement, depth int) bool {
	for _, e := range elems {
		if depth > 0 && e.tag == tagPixelData {
			return true
		}
		for _, it := range e.items {
			if nestedPixels(it.elements, depth+1) {
				return true
			}
		}
	}
	return false
}

// parse runs the library over a walked file, turning a panic into an
// error.
func parse(buf []byte, skipPixels bool) (ds dicom.Dataset, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the DICOM library panicked")
		}
	}()
	opts := []dicom.ParseOption{dicom.AllowUnknownSpecificCharacterSet()}
	if skipPixels {
		opts = append(opts, dicom.SkipPixelData())
	}
	return dicom.Parse(bytes.NewReader(buf), int64(len(buf)), nil, opts...)
}

// studyOf fills the study's details from the parsed data set.
func studyOf(ds dicom.Dataset, st *haven.DICOMStudy) {
	get := func(t tag.Tag) string {
		e, err := ds.FindElementByTag(t)
		if err != nil || e.Value == nil || e.Value.ValueType() != dicom.Strings {
			return ""
		}
		vs, _ := e.Value.GetValue().([]string)
		return clean(strings.Join(vs, `\`))
	}
	st.PatientName = personName(get(tag.PatientName))
	st.PatientID = get(tag.PatientID)
	st.PatientBirthDate = date(get(tag.PatientBirthDate))
	st.Modality = get(tag.Modality)
	st.StudyDate = date(get(tag.StudyDate))
	st.StudyDescription = get(tag.StudyDescription)
	st.BodyPart = get(tag.BodyPartExamined)
	st.SeriesDescription = get(tag.SeriesDescription)
	st.SeriesNumber = get(tag.SeriesNumber)
	st.InstanceNumber = get(tag.InstanceNumber)
}

// clean keeps text printable and short: it is shown on pages.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200])
	}
	return s
}

// personName turns DICOM's "Family^Given^Middle^Prefix^Suffix" into how
// a name is read.
func personName(pn string) string {
	if i := strings.IndexByte(pn, '='); i >= 0 { // ideographic and phonetic forms follow
		pn = pn[:i]
	}
	p := strings.Split(pn, "^")
	for len(p) < 5 {
		p = append(p, "")
	}
	var parts []string
	for _, s := range []string{p[3], p[1], p[2], p[0], p[4]} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// date turns DICOM's YYYYMMDD into YYYY-MM-DD; anything else is kept.
func date(s string) string {
	if len(s) == 8 && strings.Trim(s, "0123456789") == "" {
		return s[:4] + "-" + s[4:6] + "-" + s[6:]
	}
	return s
}

// firstFrame renders the first frame of a decoded image for display:
// monochrome through the image's own window (or its full range), colour
// as it is. It returns nil and why when it cannot.
func firstFrame(ds dicom.Dataset, f *dcmFile) (image.Image, string) {
	e, err := ds.FindElementByTag(tag.PixelData)
	if err != nil || e.Value == nil || e.Value.ValueType() != dicom.PixelData {
		return nil, "its pixel data could not be read"
	}
	info, _ := e.Value.GetValue().(dicom.PixelDataInfo)
	if len(info.Frames) == 0 || info.Frames[0] == nil || info.Frames[0].Encapsulated || info.ParseErr != nil {
		return nil, "its pixel data could not be read"
	}
	nf, err := info.Frames[0].GetNativeFrame()
	if err != nil {
		return nil, "its pixel data could not be read"
	}
	rows, cols, samples := nf.Rows(), nf.Cols(), nf.SamplesPerPixel()
	// at reads stored value i without widening the frame: a large image
	// is held once, as the library decoded it.
	var at func(i int) int64
	var n int
	switch d := nf.RawDataSlice().(type) {
	case []uint8:
		at, n = func(i int) int64 { return int64(d[i]) }, len(d)
	case []uint16:
		at, n = func(i int) int64 { return int64(d[i]) }, len(d)
	default:
		return nil, "images of this depth are not previewed here"
	}
	if n != rows*cols*samples || rows == 0 || cols == 0 {
		return nil, "its pixel data could not be read"
	}
	if samples == 3 {
		planar := f.uint16Of(tagPlanarConfig) == 1
		m := image.NewRGBA(image.Rect(0, 0, cols, rows))
		px := rows * cols
		for i := 0; i < px; i++ {
			var r, g, b int64
			if planar {
				r, g, b = at(i), at(px+i), at(2*px+i)
			} else {
				r, g, b = at(3*i), at(3*i+1), at(3*i+2)
			}
			m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = uint8(r), uint8(g), uint8(b), 0xff
		}
		return m, ""
	}
	return monochrome(ds, f, at, rows, cols), ""
}

// monochrome maps stored values through the modality rescale and the
// image's window (PS3.3 C.11.2) to 8-bit grey.
func monochrome(ds dicom.Dataset, f *dcmFile, at func(int) int64, rows, cols int) image.Image {
	stored := f.uint16Of(tagBitsStored)
	if stored <= 0 || stored > 16 {
		stored = f.uint16Of(tagBitsAllocated)
	}
	signed := f.uint16Of(tagPixelRep) == 1
	slope, intercept := number(ds, tag.RescaleSlope, 1), number(ds, tag.RescaleIntercept, 0)
	if slope == 0 {
		slope = 1
	}
	mask := int64(1)<<stored - 1
	value := func(i int) float64 {
		v := at(i) & mask
		if signed && v&(1<<(stored-1)) != 0 {
			v -= 1 << stored
		}
		return float64(v)*slope + intercept
	}
	center, width := number(ds, tag.WindowCenter, math.NaN()), number(ds, tag.WindowWidth, math.NaN())
	if math.IsNaN(center) || math.IsNaN(width) || width < 1 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := 0; i < rows*cols; i++ {
			x := value(i)
			lo, hi = min(lo, x), max(hi, x)
		}
		center, width = (lo+hi)/2, max(hi-lo, 1)
	}
	invert := f.text(find(f.body, tagPhotometric)) == "MONOCHROME1"
	m := image.NewGray(image.Rect(0, 0, cols, rows))
	for i := range m.Pix {
		y := ((value(i)-(center-0.5))/(width-1+1e-9) + 0.5) * 255
		y = min(max(y, 0), 255)
		if invert {
			y = 255 - y
		}
		m.Pix[i] = uint8(y)
	}
	return m
}

// number returns the first value of a decimal string element, or def.
func number(ds dicom.Dataset, t tag.Tag, def float64) float64 {
	e, err := ds.FindElementByTag(t)
	if err != nil || e.Value == nil || e.Value.ValueType() != dicom.Strings {
		return def
	}
	vs, _ := e.Value.GetValue().([]string)
	if len(vs) == 0 {
		return def
	}
	var x float64
	if _, err := fmt.Sscan(strings.TrimSpace(vs[0]), &x); err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
		return def
	}
	return x
}
