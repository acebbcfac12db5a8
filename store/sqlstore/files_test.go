package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"haven"
	"haven/store/sqlstore"
)

// The blob sweep asks which of a batch of blob keys a file or rendition row
// names; a file's renditions and details are kept with it; and
// the erasure records when a patient was erased.
func TestBlobKeysInUseAndErasureDates(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		u := newMember(t, db, haven.RoleClinician)
		pat := &haven.User{ID: haven.NewID(), PracticeID: u.PracticeID, Role: haven.RolePatient, EmailIndex: []byte(haven.NewID()),
			Email: haven.Sealed{1}, Name: haven.Sealed{2}}
		if err := db.CreatePatient(ctx, pat, &haven.Patient{ID: pat.ID, PracticeID: u.PracticeID, MRNIndex: []byte(haven.NewID()),
			MRN: haven.Sealed{3}, Demographics: haven.Sealed{4}, Contact: haven.Sealed{5}}, nil); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for i := range 3 {
			f := &haven.File{ID: haven.NewID(), PracticeID: u.PracticeID, PatientID: pat.ID, UploadedBy: pat.ID,
				Name: haven.Sealed{byte(i)}, ContentType: "text/plain", Size: 1}
			f.BlobKey = "files/" + f.ID
			if err := db.CreateFile(ctx, f); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, f.BlobKey)
		}
		in, err := db.BlobKeysInUse(ctx, append([]string{"files/orphan", "files/other"}, keys[0], keys[2]))
		if err != nil || len(in) != 2 || !in[keys[0]] || !in[keys[2]] {
			t.Fatalf("in use: %v %v", in, err)
		}
		if in, err := db.BlobKeysInUse(ctx, nil); err != nil || len(in) != 0 {
			t.Fatalf("no keys: %v %v", in, err)
		}

		// A file's renditions are stored with it; their blobs are in use
		// too, and its details come back as stored.
		photo := &haven.File{ID: haven.NewID(), PracticeID: u.PracticeID, PatientID: pat.ID, UploadedBy: pat.ID,
			Name: haven.Sealed{9}, ContentType: "image/jpeg", Size: 1, Details: haven.Sealed{7, 7}}
		photo.BlobKey = "files/" + photo.ID
		thumb := &haven.FileRendition{Kind: haven.RenditionThumbnail, ContentType: "image/jpeg", Size: 2, BlobKey: photo.BlobKey + "-thumbnail"}
		preview := &haven.FileRendition{Kind: haven.RenditionPreview, ContentType: "image/jpeg", Size: 3, BlobKey: photo.BlobKey + "-preview"}
		if err := db.CreateFile(ctx, photo, thumb, preview); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindFile(ctx, photo.ID)
		if err != nil || string(got.Details) != string(photo.Details) {
			t.Fatalf("details %v %v", got, err)
		}
		if plain, _ := db.FindFile(ctx, keys[0][len("files/"):]); plain == nil || plain.Details != nil {
			t.Fatalf("a file without details: %+v", plain)
		}
		rs, err := db.FileRenditions(ctx, photo.ID, keys[0][len("files/"):])
		if err != nil || len(rs) != 1 || len(rs[photo.ID]) != 2 {
			t.Fatalf("renditions %v %v", rs, err)
		}
		if r, err := db.FindRendition(ctx, photo.ID, haven.RenditionPreview); err != nil || r.BlobKey != preview.BlobKey || r.Size != 3 {
			t.Fatalf("preview %+v %v", r, err)
		}
		if _, err := db.FindRendition(ctx, photo.ID, haven.RenditionDeidentified); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("a rendition it has not: %v", err)
		}
		in, err = db.BlobKeysInUse(ctx, []string{thumb.BlobKey, preview.BlobKey, "files/orphan-thumbnail"})
		if err != nil || len(in) != 2 || !in[thumb.BlobKey] || !in[preview.BlobKey] {
			t.Fatalf("renditions in use: %v %v", in, err)
		}
		// A file id is stored once.
		if err := db.CreateFile(ctx, &haven.File{ID: photo.ID, PracticeID: u.PracticeID, PatientID: pat.ID, UploadedBy: pat.ID,
			Name: haven.Sealed{9}, ContentType: "image/jpeg", BlobKey: "files/dup"}); err == nil {
			t.Fatal("a second file with the same id was stored")
		}

		if erased, err := db.ErasedPatients(ctx, u.PracticeID); err != nil || len(erased) != 0 {
			t.Fatalf("erased before any erasure: %v %v", erased, err)
		}
		at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
		if err := db.MarkPatientErased(ctx, pat.ID, at); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkPatientErased(ctx, pat.ID, at.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		erased, err := db.ErasedPatients(ctx, u.PracticeID)
		if err != nil || len(erased) != 1 || !erased[pat.ID].Equal(at) {
			t.Fatalf("erased: %v %v (want the first date kept)", erased, err)
		}
	})
}
