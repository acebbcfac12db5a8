package haven

import "time"

// File is a file in a patient's chart as storage holds it: its name and
// what the server read from its content sealed under the patient's data
// key, and where its content, encrypted in chunks under the same key,
// lies in the blob store.
type File struct {
	ID, PracticeID, PatientID, UploadedBy string
	Name                                  Sealed
	ContentType                           string // sniffed from the content, never the client's claim
	Size                                  int64  // bytes of the plaintext
	BlobKey                               string
	// Details is a sealed FileDetails (JSON); nil when there is nothing
	// to say (a PDF).
	Details   Sealed
	CreatedAt time.Time
}

// Rendition kinds: what the server derives from a file, each sealed in
// the blob store like the file itself.
const (
	RenditionThumbnail    = "thumbnail"    // a small JPEG for lists and galleries
	RenditionPreview      = "preview"      // a screen-sized image (a DICOM image's first frame as PNG)
	RenditionDeidentified = "deidentified" // a DICOM file's PS3.15 basic-profile copy, for sharing
)

// Renditions are the kinds there are.
var Renditions = []string{RenditionThumbnail, RenditionPreview, RenditionDeidentified}

// FileRendition is one derived blob of a file as storage holds it.
type FileRendition struct {
	FileID      string
	Kind        string // one of Renditions
	ContentType string
	Size        int64
	BlobKey     string
	CreatedAt   time.Time
}

// FileDetails are what the server read from a file's content: a photo's
// size as shown, or a DICOM image's study. They are PHI (a study names
// its patient and its date) and are sealed with the file.
type FileDetails struct {
	Width  int         `json:"width,omitempty"`
	Height int         `json:"height,omitempty"`
	Study  *DICOMStudy `json:"study,omitempty"`
}

// DICOMStudy is what a DICOM image says about itself, for the people
// allowed to see it: the patient it names (which may not be the chart's:
// shown so a clinician notices), the study and series, and whether the
// server could preview it and make a de-identified copy, with why not.
type DICOMStudy struct {
	PatientName       string `json:"patient_name,omitempty"`
	PatientID         string `json:"patient_id,omitempty"`
	PatientBirthDate  string `json:"patient_birth_date,omitempty"`
	Modality          string `json:"modality,omitempty"`
	StudyDate         string `json:"study_date,omitempty"`
	StudyDescription  string `json:"study_description,omitempty"`
	BodyPart          string `json:"body_part,omitempty"`
	SeriesDescription string `json:"series_description,omitempty"`
	SeriesNumber      string `json:"series_number,omitempty"`
	InstanceNumber    string `json:"instance_number,omitempty"`
	Rows              int    `json:"rows,omitempty"`
	Columns           int    `json:"columns,omitempty"`
	Frames            int    `json:"frames,omitempty"`
	TransferSyntax    string `json:"transfer_syntax,omitempty"`
	Compressed        bool   `json:"compressed"`
	Previewable       bool   `json:"previewable"`
	NotPreviewable    string `json:"not_previewable,omitempty"` // why, in words
	Deidentifiable    bool   `json:"deidentifiable"`
	NotDeidentifiable string `json:"not_deidentifiable,omitempty"` // why, in words
}

// FileView describes a chart's file to a reader policy allowed: its name
// and details in the clear, and which renditions it has. The content is
// streamed apart, opened as it is read.
type FileView struct {
	ID          string       `json:"id"`
	PatientID   string       `json:"patient_id"`
	Name        string       `json:"name"`
	ContentType string       `json:"content_type"`
	Size        int64        `json:"size"`
	UploadedBy  string       `json:"uploaded_by"`
	CreatedAt   time.Time    `json:"created_at"`
	Details     *FileDetails `json:"details,omitempty"`
	Renditions  []string     `json:"renditions"` // the kinds it has, of Renditions
}

// Has reports whether the file has a rendition of kind.
func (f *FileView) Has(kind string) bool {
	for _, k := range f.Renditions {
		if k == kind {
			return true
		}
	}
	return false
}

// IsImage reports whether the file is a photo (shown as itself).
func (f *FileView) IsImage() bool {
	return f.ContentType == "image/jpeg" || f.ContentType == "image/png"
}

// IsDICOM reports whether the file is a DICOM image.
func (f *FileView) IsDICOM() bool { return f.ContentType == "application/dicom" }
