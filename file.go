package haven

import "time"

// File is a file in a patient's chart as storage holds it: its name sealed
// under the patient's data key, and where its content, encrypted in chunks
// under the same key, lies in the blob store.
type File struct {
	ID, PracticeID, PatientID, UploadedBy string
	Name                                  Sealed
	ContentType                           string // sniffed from the content, never the client's claim
	Size                                  int64  // bytes of the plaintext
	BlobKey                               string
	CreatedAt                             time.Time
}

// FileView describes a chart's file to a reader policy allowed: its name
// in the clear. The content is streamed apart, opened as it is read.
type FileView struct {
	ID          string    `json:"id"`
	PatientID   string    `json:"patient_id"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	UploadedBy  string    `json:"uploaded_by"`
	CreatedAt   time.Time `json:"created_at"`
}
