// Package media owns what Haven does with the bytes of an uploaded file
// before they are sealed: it decides the file's type from its content
// (never the name or the type a client claims), re-encodes photos so that
// no metadata (GPS position, camera, owner, comments) survives, and reads
// DICOM images behind its own bounds, for their study details, a preview
// of the first frame and a de-identified copy.
//
// It works on plaintext and must never store, log or seal anything: the
// service calls it between the gate and the keyring, and keeps its
// results (a cleaned photo, renditions, study details) sealed like any
// other PHI. It imports the domain and the standard library, and the DICOM
// library it wraps; never storage, keys or blobs. Every parser of outside
// bytes here has a fuzz target.
package media

import (
	"bytes"

	"haven"
)

// The types Haven accepts, as the content says they are.
const (
	JPEG  = "image/jpeg"
	PNG   = "image/png"
	PDF   = "application/pdf"
	DICOM = "application/dicom"
)

// SniffLen is how many leading bytes Sniff needs to decide (a DICOM
// file's marker sits after a 128-byte preamble).
const SniffLen = 512

// Sniff returns the type of a file from its first bytes (up to SniffLen),
// or an EINVALID error saying in plain words what is accepted. HEIC
// photos are refused with their own message: no HEIC decoder is among
// Haven's dependencies, so one could be neither cleaned of its metadata
// nor shown.
func Sniff(head []byte) (string, error) {
	switch {
	case len(head) >= 132 && string(head[128:132]) == "DICM":
		return DICOM, nil
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG, nil
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return PDF, nil
	case len(head) >= 12 && string(head[4:8]) == "ftyp" && heifBrands[string(head[8:12])]:
		return "", haven.Errorf(haven.EINVALID, "HEIC photos cannot be read here yet: choose the JPEG format (\"Most Compatible\") in the camera's settings, or share the photo as JPEG")
	case len(head) == 0:
		return "", haven.Errorf(haven.EINVALID, "the file is empty")
	}
	return "", haven.Errorf(haven.EINVALID, "this kind of file is not accepted: add a photo (JPEG or PNG), a PDF or a DICOM image")
}

// heifBrands are the ISO base media brands of HEIF images (HEIC, AVIF).
var heifBrands = map[string]bool{
	"heic": true, "heix": true, "heim": true, "heis": true, "hevc": true, "hevx": true,
	"mif1": true, "msf1": true, "avif": true, "avis": true,
}
