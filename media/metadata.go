package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Metadata names what a JPEG or PNG carries besides its pixels: JPEG
// application segments (EXIF, XMP, ICC, IPTC and the rest) and comments,
// PNG chunks other than the image's own (text, EXIF, ICC, time), and
// bytes after the image's end. An image CleanPhoto made has none; it
// checks every output with this, so a change in an encoder cannot let
// metadata through unnoticed. Bytes that are neither format give nil.
func Metadata(b []byte) []string {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8}):
		return jpegMetadata(b)
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return pngMetadata(b)
	}
	return nil
}

func jpegMetadata(b []byte) []string {
	var found []string
	i := 2
	for i+2 <= len(b) {
		if b[i] != 0xFF {
			return append(found, "unreadable structure")
		}
		m := b[i+1]
		switch {
		case m == 0xFF:
			i++
			continue
		case m == 0xD9: // end of image
			if i+2 < len(b) {
				found = append(found, "trailing data")
			}
			return found
		case m >= 0xD0 && m <= 0xD7, m == 0x01:
			i += 2
			continue
		}
		if i+4 > len(b) {
			return append(found, "unreadable structure")
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return append(found, "unreadable structure")
		}
		data := b[i+4 : i+2+n]
		switch {
		case m == 0xFE:
			found = append(found, "comment")
		case m == 0xE1 && bytes.HasPrefix(data, []byte("Exif\x00")):
			found = append(found, "EXIF")
		case m == 0xE1 && bytes.Contains(data[:min(len(data), 64)], []byte("ns.adobe.com/xap")):
			found = append(found, "XMP")
		case m == 0xE2 && bytes.HasPrefix(data, []byte("ICC_PROFILE")):
			found = append(found, "ICC profile")
		case m == 0xED:
			found = append(found, "IPTC")
		case m >= 0xE0 && m <= 0xEF:
			found = append(found, fmt.Sprintf("APP%d", m-0xE0))
		}
		i += 2 + n
		if m == 0xDA { // a scan: entropy-coded data runs to the next marker
			for i < len(b) {
				if b[i] == 0xFF && i+1 < len(b) && b[i+1] != 0x00 && !(b[i+1] >= 0xD0 && b[i+1] <= 0xD7) {
					break
				}
				i++
			}
		}
	}
	return append(found, "no end of image")
}

// imageChunks are the PNG chunks that describe pixels and nothing else.
var imageChunks = map[string]bool{"IHDR": true, "PLTE": true, "IDAT": true, "IEND": true, "tRNS": true}

func pngMetadata(b []byte) []string {
	var found []string
	for i := 8; ; {
		if i+12 > len(b) {
			return append(found, "no end of image")
		}
		n := int64(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		end := int64(i) + 12 + n
		if end > int64(len(b)) {
			return append(found, "unreadable structure")
		}
		if !imageChunks[typ] {
			found = append(found, fmt.Sprintf("%q chunk", typ))
		}
		i = int(end)
		if typ == "IEND" {
			if i < len(b) {
				found = append(found, "trailing data")
			}
			return found
		}
	}
}
