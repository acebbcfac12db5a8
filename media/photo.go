package media

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"

	"haven"
)

// Limits of what is read whole into memory to be decoded.
const (
	// MaxDecodedBytes bounds a photo or DICOM file read whole to be
	// cleaned, previewed or de-identified: a photo from a phone is a few
	// MiB, a single DICOM image rarely more than a few tens.
	MaxDecodedBytes = 64 << 20
	// MaxPhotoPixels bounds a photo's decoded size (50 megapixels, about
	// 75 MB as decoded JPEG planes): a small file can claim a huge canvas.
	MaxPhotoPixels = 50_000_000
	// MaxPhotoSide bounds each side of a photo.
	MaxPhotoSide = 20_000
	// PreviewSide and ThumbnailSide bound the longer side of the
	// renditions shown on pages.
	PreviewSide   = 1600
	ThumbnailSide = 320
)

// Photo is a photo after cleaning: its pixels, turned as the camera meant
// them, and nothing else.
type Photo struct {
	Type          string // JPEG or PNG, as uploaded
	Width, Height int    // as shown, after orientation
	Clean         []byte // the re-encoded photo: what is stored
	Preview       []byte // JPEG, at most PreviewSide on its longer side
	Thumbnail     []byte // JPEG, at most ThumbnailSide on its longer side
}

// CleanPhoto decodes a JPEG or PNG and encodes its pixels again, so no
// metadata of the original survives: not EXIF (GPS position, camera and
// its serial number, owner, time), XMP, IPTC, ICC profiles and their
// descriptions, comments, PNG text chunks, nor bytes hidden after the
// image's end. A JPEG's EXIF orientation is applied to the pixels first,
// so the photo still looks the way it was taken. The price is a second
// JPEG compression (quality 90) and the loss of a wide-gamut colour
// profile: colours of such photos look slightly less saturated. Every
// output is checked with Metadata before it is returned.
func CleanPhoto(content []byte, typ string) (*Photo, error) {
	if len(content) > MaxDecodedBytes {
		return nil, haven.Errorf(haven.EINVALID, "photos may be at most %d MiB", MaxDecodedBytes>>20)
	}
	var cfg image.Config
	var err error
	switch typ {
	case JPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(content))
	case PNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(content))
	default:
		return nil, haven.Errorf(haven.EINVALID, "not a photo")
	}
	if err != nil {
		return nil, haven.Errorf(haven.EINVALID, "the photo could not be read: it is damaged or not a %s", formatName(typ))
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > MaxPhotoSide || cfg.Height > MaxPhotoSide || cfg.Width*cfg.Height > MaxPhotoPixels {
		return nil, haven.Errorf(haven.EINVALID, "photos may be at most %d megapixels and %d pixels on a side", MaxPhotoPixels/1_000_000, MaxPhotoSide)
	}
	var src image.Image
	if typ == JPEG {
		src, err = jpeg.Decode(bytes.NewReader(content))
	} else {
		src, err = png.Decode(bytes.NewReader(content))
	}
	if err != nil {
		return nil, haven.Errorf(haven.EINVALID, "the photo could not be read: it is damaged or not a %s", formatName(typ))
	}
	var shown image.Image = src
	if typ == JPEG {
		if o := Orientation(content); o != 1 {
			shown = newOriented(src, o)
		}
	}
	p := &Photo{Type: typ, Width: shown.Bounds().Dx(), Height: shown.Bounds().Dy()}
	var out bytes.Buffer
	if typ == JPEG {
		err = jpeg.Encode(&out, shown, &jpeg.Options{Quality: 90})
	} else {
		err = (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(&out, shown)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "the photo could not be encoded")
	}
	p.Clean = out.Bytes()
	preview := Fit(shown, PreviewSide)
	if p.Preview, err = EncodeJPEG(preview, 85); err != nil {
		return nil, err
	}
	if p.Thumbnail, err = EncodeJPEG(Fit(preview, ThumbnailSide), 80); err != nil {
		return nil, err
	}
	for _, b := range [][]byte{p.Clean, p.Preview, p.Thumbnail} {
		if found := Metadata(b); len(found) > 0 {
			return nil, haven.Errorf(haven.EINTERNAL, "the cleaned photo still holds metadata (%v)", found)
		}
	}
	return p, nil
}

func formatName(typ string) string {
	if typ == PNG {
		return "PNG"
	}
	return "JPEG"
}

// EncodeJPEG encodes m as a JPEG without metadata, flattening any
// transparency onto white.
func EncodeJPEG(m image.Image, quality int) ([]byte, error) {
	var out bytes.Buffer
	if err := jpeg.Encode(&out, m, &jpeg.Options{Quality: quality}); err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "a rendition could not be encoded")
	}
	return out.Bytes(), nil
}

// Fit returns m scaled down (never up) to at most side pixels on its
// longer side, each output pixel the average of the source pixels it
// covers, any transparency flattened onto white.
func Fit(m image.Image, side int) *image.RGBA {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if w > side || h > side {
		if w >= h {
			dw, dh = side, max(1, int(int64(h)*int64(side)/int64(w)))
		} else {
			dw, dh = max(1, int(int64(w)*int64(side)/int64(h))), side
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	// Sums per output pixel of one output row, filled source row by
	// source row: each source pixel is read once.
	type acc struct{ r, g, b, n uint64 }
	row := make([]acc, dw)
	sy0 := 0
	for dy := 0; dy < dh; dy++ {
		sy1 := int(int64(dy+1) * int64(h) / int64(dh))
		clear(row)
		for sy := sy0; sy < max(sy1, sy0+1) && sy < h; sy++ {
			for sx := 0; sx < w; sx++ {
				dx := int(int64(sx) * int64(dw) / int64(w))
				r, g, bl, a := m.At(b.Min.X+sx, b.Min.Y+sy).RGBA()
				// Premultiplied: over white is c + (1 - a).
				white := uint64(0xffff - a)
				row[dx].r += uint64(r) + white
				row[dx].g += uint64(g) + white
				row[dx].b += uint64(bl) + white
				row[dx].n++
			}
		}
		for dx := range row {
			if n := row[dx].n; n > 0 {
				dst.SetRGBA(dx, dy, color.RGBA{uint8(row[dx].r / n >> 8), uint8(row[dx].g / n >> 8), uint8(row[dx].b / n >> 8), 0xff})
			}
		}
		sy0 = sy1
	}
	return dst
}

// Orientation returns the EXIF orientation (1 to 8) a JPEG's APP1 segment
// records, or 1 when it records none or anything unreadable. It reads
// only the first image directory's orientation entry, checking every
// offset against the segment's bounds.
func Orientation(jpg []byte) int {
	o := 1
	eachSegment(jpg, func(marker byte, data []byte) bool {
		if marker != 0xE1 || !bytes.HasPrefix(data, []byte("Exif\x00\x00")) {
			return true
		}
		o = tiffOrientation(data[6:])
		return false
	})
	return o
}

func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	ifd := int64(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 1
	}
	n := int64(bo.Uint16(t[ifd:]))
	for i := int64(0); i < n; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 1
		}
		// Orientation: tag 0x0112, type SHORT, one value, held in place.
		if bo.Uint16(t[e:]) == 0x0112 {
			if bo.Uint16(t[e+2:]) != 3 || bo.Uint32(t[e+4:]) != 1 {
				return 1
			}
			if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
				return v
			}
			return 1
		}
	}
	return 1
}

// eachSegment calls fn with each marker segment of a JPEG before its
// first scan (where APPn and COM segments live), until fn returns false
// or the bytes end or stop making sense.
func eachSegment(jpg []byte, fn func(marker byte, data []byte) bool) {
	if len(jpg) < 2 || jpg[0] != 0xFF || jpg[1] != 0xD8 {
		return
	}
	for i := 2; i+4 <= len(jpg); {
		if jpg[i] != 0xFF {
			return
		}
		m := jpg[i+1]
		if m == 0xFF { // fill byte
			i++
			continue
		}
		if m == 0xD8 || m == 0xD9 || m == 0xDA || (m >= 0xD0 && m <= 0xD7) || m == 0x01 {
			return
		}
		n := int(binary.BigEndian.Uint16(jpg[i+2:]))
		if n < 2 || i+2+n > len(jpg) {
			return
		}
		if !fn(m, jpg[i+4:i+2+n]) {
			return
		}
		i += 2 + n
	}
}

// oriented shows an image turned by an EXIF orientation without copying
// its pixels: a 50-megapixel photo is not held twice.
type oriented struct {
	src  image.Image
	o    int
	w, h int // the source's size
}

func newOriented(src image.Image, o int) image.Image {
	b := src.Bounds()
	return &oriented{src: src, o: o, w: b.Dx(), h: b.Dy()}
}

func (m *oriented) ColorModel() color.Model { return m.src.ColorModel() }

func (m *oriented) Bounds() image.Rectangle {
	if m.o >= 5 {
		return image.Rect(0, 0, m.h, m.w)
	}
	return image.Rect(0, 0, m.w, m.h)
}

func (m *oriented) At(x, y int) color.Color {
	var sx, sy int
	switch m.o {
	case 2: // mirrored
		sx, sy = m.w-1-x, y
	case 3: // turned 180°
		sx, sy = m.w-1-x, m.h-1-y
	case 4: // flipped
		sx, sy = x, m.h-1-y
	case 5: // transposed
		sx, sy = y, x
	case 6: // turned 90° clockwise
		sx, sy = y, m.h-1-x
	case 7: // transversed
		sx, sy = m.w-1-y, m.h-1-x
	case 8: // turned 90° anticlockwise
		sx, sy = m.w-1-y, x
	default:
		sx, sy = x, y
	}
	b := m.src.Bounds()
	return m.src.At(b.Min.X+sx, b.Min.Y+sy)
}
