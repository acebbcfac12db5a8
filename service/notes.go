package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"haven"
	"haven/audit"
	"haven/keyring"
	"haven/policy"
)

// Visit notes: one SOAP note per visit, written by the visit's clinician
// during the call or afterwards, saved as a draft as she types, then
// signed. Signing needs a recent step-up (note.sign) and locks the note:
// its canonical form (noteCanon) is hashed and signed with the practice's
// Ed25519 key, and the row is never written again; later changes are
// addenda, signed the same way. Every read checks the signatures again
// and says what it found, so a row edited in the database shows as such.
//
// The patient reads a signed note once it is released (the practice's
// note_release_days after signing, at once by default); a draft does not
// exist for her. Texts are sealed under the patient's data key, bound to
// their practice, patient and record.

// MaxNotePart is the length of each of a note's four parts, and of an
// addendum, in characters.
const MaxNotePart = 20000

// Record kinds named in the associated data of notes' ciphertexts.
const (
	sealedNote     = "note"
	sealedAddendum = "note_addendum"
)

func noteAD(n *haven.Note) keyring.AD {
	return keyring.AD{PracticeID: n.PracticeID, PatientID: n.PatientID, Kind: sealedNote, RecordID: n.ID, Field: "body"}
}

func addendumAD(a *haven.Addendum) keyring.AD {
	return keyring.AD{PracticeID: a.PracticeID, PatientID: a.PatientID, Kind: sealedAddendum, RecordID: a.ID, Field: "body"}
}

// noteResource is a visit's note as policy sees it: a note of the visit's
// patient, named by the visit.
func noteResource(v *haven.Visit) policy.Resource {
	return policy.Resource{Kind: policy.KindNote, ID: v.ID, PracticeID: v.PracticeID, PatientID: v.PatientID}
}

// canon is a length-prefixed encoding: each field's length (u32) and
// bytes, after a tag naming the record type and version, so no two
// different records encode alike and a signature over one kind of record
// is never one over another.
func canon(tag string, fields ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(tag)))
	b = append(b, tag...)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func us(v int64) string { return time.UnixMicro(v).UTC().Format(time.RFC3339Nano) }

// noteCanon is what a signature covers: whose note of which visit, who
// signed it when, when the patient may read it, and its four parts.
func noteCanon(n *haven.Note, c haven.SOAP) []byte {
	return canon("haven.note.v1", n.PracticeID, n.PatientID, n.VisitID, n.ID, n.AuthorID, n.SignedBy,
		us(n.SignedUS), us(n.ReleaseUS), c.Subjective, c.Objective, c.Assessment, c.Plan)
}

// addendumCanon binds an addendum to the signed note it follows (by the
// note's hash) as well as to its own author, time and text.
func addendumCanon(a *haven.Addendum, noteHash []byte, text string) []byte {
	return canon("haven.note_addendum.v1", a.PracticeID, a.PatientID, a.NoteID, hex.EncodeToString(noteHash), a.ID,
		a.AuthorID, a.AmendmentID, us(a.CreatedUS), text)
}

// checkSignature compares a record's stored hash and signature with its
// canonical form rebuilt from what is stored now.
func (s *Service) checkSignature(ctx context.Context, practiceID, keyID string, hash, sig, canonical []byte) *haven.SignatureCheck {
	sum := sha256.Sum256(canonical)
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 {
		return &haven.SignatureCheck{Message: "Does not match its signature: it was changed after signing."}
	}
	err := s.keys.Verify(ctx, practiceID, keyID, canonical, sig)
	switch {
	case err == nil:
		return &haven.SignatureCheck{Valid: true, Message: "Signature checked: unchanged since signing."}
	case errors.Is(err, keyring.ErrBadSignature) || haven.ErrorCode(err) == haven.ENOTFOUND:
		return &haven.SignatureCheck{Message: "Does not match its signature: it was changed after signing."}
	}
	return &haven.SignatureCheck{Message: "The signature could not be checked just now; try again."}
}

// soapText checks a note's parts and returns them trimmed.
func soapText(c haven.SOAP) (haven.SOAP, error) {
	parts := []*string{&c.Subjective, &c.Objective, &c.Assessment, &c.Plan}
	for _, p := range parts {
		t, err := longText(*p, 0, MaxNotePart)
		if err != nil {
			return c, haven.Errorf(haven.EINVALID, "each part of a note is at most %d characters of plain text", MaxNotePart)
		}
		*p = t
	}
	return c, nil
}

// longText checks multi-line plain text and returns it trimmed.
func longText(v string, min, max int) (string, error) {
	t := strings.TrimSpace(strings.ReplaceAll(v, "\r\n", "\n"))
	if n := utf8.RuneCountInString(t); !utf8.ValidString(t) || n < min || n > max {
		return "", haven.Errorf(haven.EINVALID, "write %d to %d characters", min, max)
	}
	if strings.ContainsFunc(t, func(r rune) bool { return hiddenRune(r, true) }) {
		return "", haven.Errorf(haven.EINVALID, "plain text only, without control characters")
	}
	return t, nil
}

// noteVisit loads a visit for a note action. Unknown ids, and ids of
// another practice or patient, get the one ENOTFOUND.
func (s *Service) noteVisit(ctx context.Context, act policy.Action, visitID string) (haven.Actor, *haven.Visit, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return a, nil, err
	}
	if !haven.PlausibleID(visitID) {
		return a, nil, s.refuseUnknown(ctx, a, act, policy.KindNote, visitID)
	}
	v, err := s.db.FindVisit(ctx, visitID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return a, nil, s.refuseUnknown(ctx, a, act, policy.KindNote, visitID)
	}
	if err != nil {
		return a, nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the visit")
	}
	return a, v, nil
}

// authorNote is the gate of writing and signing: policy decides act on
// the visit's note, then only the visit's own clinician may go on. The
// second refusal is recorded as a denial too, so the log never shows a
// write allowed that did not happen.
func (s *Service) authorNote(ctx context.Context, act policy.Action, visitID string) (haven.Actor, *haven.Visit, error) {
	a, v, err := s.noteVisit(ctx, act, visitID)
	if err != nil {
		return a, nil, err
	}
	if a.Role == haven.RoleClinician && a.PracticeID == v.PracticeID && a.UserID != v.ClinicianID {
		ev := audit.ForActor(a, string(act))
		ev.ResourceKind, ev.ResourceID, ev.PatientID = string(policy.KindNote), v.ID, v.PatientID
		ev.Decision, ev.Reason = haven.DecisionDeny, "not_the_visits_clinician"
		if _, err := s.record(ctx, ev); err != nil {
			return a, nil, err
		}
		return a, nil, haven.Errorf(haven.EFORBIDDEN, "only the visit's clinician writes and signs its note; add to it once it is signed")
	}
	if _, _, err := s.authorizeRecord(ctx, act, noteResource(v), visitID); err != nil {
		return a, nil, err
	}
	if v.State == haven.VisitCancelled {
		return a, nil, haven.Errorf(haven.ECONFLICT, "the visit was cancelled; it takes no note")
	}
	return a, v, nil
}

// VisitNote opens a visit's note. The visit's clinician gets an empty
// draft when none is written yet; a patient sees only a signed note once
// released, and anyone else a note that exists.
func (s *Service) VisitNote(ctx context.Context, visitID string) (*haven.NoteView, error) {
	a, v, err := s.noteVisit(ctx, policy.NoteRead, visitID)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.NoteRead, noteResource(v), visitID); err != nil {
		return nil, err
	}
	n, err := s.db.VisitNote(ctx, v.ID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		if a.UserID == v.ClinicianID && v.State != haven.VisitCancelled {
			return &haven.NoteView{VisitID: v.ID, PatientID: v.PatientID, VisitStart: v.Start, AuthorID: a.UserID,
				State: haven.NoteDraft, Editable: true}, nil
		}
		return nil, haven.Errorf(haven.ENOTFOUND, "this visit has no note yet")
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the note")
	}
	if a.Role == haven.RolePatient && !s.released(n) {
		return nil, haven.Errorf(haven.ENOTFOUND, "this visit's note is not in your record yet")
	}
	return s.openNote(ctx, a, v, n)
}

// released reports whether the patient may read n.
func (s *Service) released(n *haven.Note) bool {
	return n.State == haven.NoteSigned && n.ReleaseUS <= s.now().UnixMicro()
}

// openNote opens a note, its addenda and the amendments about it for a
// reader already allowed note.read, checking every signature. The
// amendments are part of the note's record: a statement of disagreement
// travels with the note wherever it is read.
func (s *Service) openNote(ctx context.Context, a haven.Actor, v *haven.Visit, n *haven.Note) (*haven.NoteView, error) {
	ctx, err := s.keys.Checked(ctx)
	if err != nil {
		return nil, err
	}
	var c haven.SOAP
	if err := s.openJSON(ctx, noteAD(n), n.Body, &c); err != nil {
		return nil, err
	}
	nv := &haven.NoteView{ID: n.ID, VisitID: n.VisitID, PatientID: n.PatientID, VisitStart: v.Start, AuthorID: n.AuthorID,
		AuthorName: s.workforceName(ctx, n.PracticeID, n.AuthorID), SOAP: c, State: n.State,
		UpdatedAt: time.UnixMicro(n.UpdatedUS).UTC()}
	if n.State == haven.NoteDraft {
		nv.Editable = a.UserID == v.ClinicianID
		return nv, nil
	}
	signed, release := time.UnixMicro(n.SignedUS).UTC(), time.UnixMicro(n.ReleaseUS).UTC()
	nv.SignedAt, nv.ReleaseAt = &signed, &release
	nv.Hash, nv.KeyID = hex.EncodeToString(n.Hash), n.KeyID
	nv.Signature = s.checkSignature(ctx, n.PracticeID, n.KeyID, n.Hash, n.Signature, noteCanon(n, c))
	adds, err := s.db.NoteAddenda(ctx, n.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the note's addenda")
	}
	for _, ad := range adds {
		text, err := s.keys.Open(ctx, addendumAD(ad), ad.Body)
		if err != nil {
			return nil, err
		}
		nv.Addenda = append(nv.Addenda, haven.AddendumView{ID: ad.ID, AuthorName: s.workforceName(ctx, ad.PracticeID, ad.AuthorID),
			Text: string(text), AmendmentID: ad.AmendmentID, At: time.UnixMicro(ad.CreatedUS).UTC(),
			Signature: s.checkSignature(ctx, ad.PracticeID, ad.KeyID, ad.Hash, ad.Signature, addendumCanon(ad, n.Hash, string(text)))})
	}
	ams, err := s.db.RecordAmendments(ctx, n.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the note's amendment requests")
	}
	for _, am := range ams {
		if am.PatientID != n.PatientID || am.PracticeID != n.PracticeID {
			continue
		}
		av, err := s.openAmendment(ctx, a, am, "")
		if err != nil {
			return nil, err
		}
		nv.Amendments = append(nv.Amendments, *av)
	}
	nv.CanAmend = a.Role == haven.RolePatient && a.UserID == n.PatientID
	return nv, nil
}

// SaveNoteDraft stores the visit's note as a draft (the page calls it as
// its clinician types). A signed note is refused: add an addendum.
func (s *Service) SaveNoteDraft(ctx context.Context, visitID string, c haven.SOAP) (*haven.NoteView, error) {
	c, err := soapText(c)
	if err != nil {
		return nil, err
	}
	a, v, err := s.authorNote(ctx, policy.NoteWrite, visitID)
	if err != nil {
		return nil, err
	}
	n, err := s.db.VisitNote(ctx, v.ID)
	switch haven.ErrorCode(err) {
	case haven.ENOTFOUND:
		n = &haven.Note{ID: haven.NewID(), PracticeID: v.PracticeID, PatientID: v.PatientID, VisitID: v.ID, AuthorID: a.UserID, State: haven.NoteDraft}
	case "":
		if n.State != haven.NoteDraft {
			return nil, errNoteSigned
		}
	default:
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the note")
	}
	if n.Body, err = s.sealJSON(ctx, noteAD(n), c); err != nil {
		return nil, err
	}
	if err := s.db.SaveDraft(ctx, n); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			return nil, err // signed or first saved elsewhere in the moment before
		}
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot save the note")
	}
	return &haven.NoteView{ID: n.ID, VisitID: v.ID, PatientID: v.PatientID, VisitStart: v.Start, AuthorID: n.AuthorID, SOAP: c,
		State: haven.NoteDraft, UpdatedAt: time.UnixMicro(n.UpdatedUS).UTC(), Editable: true}, nil
}

var errNoteSigned = haven.Errorf(haven.ECONFLICT, "this note is signed and cannot be edited; add an addendum instead")

// SignNote locks the visit's note under the practice's signature. It needs
// a recent step-up (ESTEPUP otherwise) and a note with something in it.
func (s *Service) SignNote(ctx context.Context, visitID string) (*haven.NoteView, error) {
	a, v, err := s.authorNote(ctx, policy.NoteSign, visitID)
	if err != nil {
		return nil, err
	}
	n, err := s.db.VisitNote(ctx, v.ID)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, haven.Errorf(haven.EINVALID, "write the note before signing it")
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the note")
	}
	if n.State != haven.NoteDraft {
		return nil, haven.Errorf(haven.ECONFLICT, "this note is signed already")
	}
	var c haven.SOAP
	if err := s.openJSON(ctx, noteAD(n), n.Body, &c); err != nil {
		return nil, err
	}
	if c.Subjective == "" && c.Objective == "" && c.Assessment == "" && c.Plan == "" {
		return nil, haven.Errorf(haven.EINVALID, "write the note before signing it")
	}
	ps, err := s.settings(ctx, v.PracticeID)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	n.SignedBy, n.SignedUS = a.UserID, now.UnixMicro()
	n.ReleaseUS = now.AddDate(0, 0, ps.NoteReleaseDays).UnixMicro()
	canonical := noteCanon(n, c)
	sum := sha256.Sum256(canonical)
	n.Hash = sum[:]
	if n.Signature, n.KeyID, err = s.keys.Sign(ctx, v.PracticeID, canonical); err != nil {
		return nil, err
	}
	if err := s.db.SignNote(ctx, n); err != nil {
		if haven.ErrorCode(err) == haven.ECONFLICT {
			return nil, err
		}
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the signed note")
	}
	return s.openNote(ctx, a, v, n)
}

// AddAddendum appends text to the visit's signed note, signed like the
// note (note.sign: a related clinician, with a recent step-up).
func (s *Service) AddAddendum(ctx context.Context, visitID, text string) (*haven.NoteView, error) {
	text, err := longText(text, 1, MaxNotePart)
	if err != nil {
		return nil, haven.Errorf(haven.EINVALID, "an addendum is 1 to %d characters of plain text", MaxNotePart)
	}
	a, v, err := s.noteVisit(ctx, policy.NoteSign, visitID)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeRecord(ctx, policy.NoteSign, noteResource(v), visitID); err != nil {
		return nil, err
	}
	n, err := s.db.VisitNote(ctx, v.ID)
	if haven.ErrorCode(err) == haven.ENOTFOUND || err == nil && n.State != haven.NoteSigned {
		return nil, haven.Errorf(haven.ECONFLICT, "only a signed note takes addenda; edit the draft instead")
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the note")
	}
	if _, err := s.appendAddendum(ctx, a, n, text, nil); err != nil {
		return nil, err
	}
	return s.openNote(ctx, a, v, n)
}

// appendAddendum seals, signs and stores an addendum to n, accepting am in
// the same transaction when it is set.
func (s *Service) appendAddendum(ctx context.Context, a haven.Actor, n *haven.Note, text string, am *haven.Amendment) (*haven.Addendum, error) {
	ad := &haven.Addendum{ID: haven.NewID(), NoteID: n.ID, PracticeID: n.PracticeID, PatientID: n.PatientID, AuthorID: a.UserID,
		CreatedUS: s.now().UTC().UnixMicro()}
	if am != nil {
		ad.AmendmentID = am.ID
		am.AddendumID = ad.ID
	}
	var err error
	if ad.Body, err = s.keys.Seal(ctx, addendumAD(ad), []byte(text)); err != nil {
		return nil, err
	}
	canonical := addendumCanon(ad, n.Hash, text)
	sum := sha256.Sum256(canonical)
	ad.Hash = sum[:]
	if ad.Signature, ad.KeyID, err = s.keys.Sign(ctx, n.PracticeID, canonical); err != nil {
		return nil, err
	}
	if err := s.db.AddAddendum(ctx, ad, am); err != nil {
		if c := haven.ErrorCode(err); c == haven.ECONFLICT || c == haven.ENOTFOUND {
			return nil, err
		}
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the addendum")
	}
	return ad, nil
}

// NoteSummary is one note in a record's list.
type NoteSummary struct {
	ID         string     `json:"id"`
	VisitID    string     `json:"visit_id"`
	VisitStart time.Time  `json:"visit_start"`
	AuthorName string     `json:"author_name,omitempty"`
	State      string     `json:"state"`
	SignedAt   *time.Time `json:"signed_at,omitempty"`
}

// PatientNotes lists a patient's notes (note.read on her record): to her,
// her signed and released notes; to the workforce policy allows, drafts
// too.
func (s *Service) PatientNotes(ctx context.Context, patientID string) ([]NoteSummary, error) {
	row, err := s.patientRow(ctx, policy.NoteRead, policy.KindNote, patientID)
	if err != nil {
		return nil, err
	}
	a, _, err := s.authorizeRecord(ctx, policy.NoteRead, chartResource(policy.KindNote, row), patientID)
	if err != nil {
		return nil, err
	}
	notes, err := s.db.PatientNotes(ctx, row.ID, a.Role == haven.RolePatient)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list notes")
	}
	out := []NoteSummary{}
	for _, n := range notes {
		if n.PracticeID != row.PracticeID || a.Role == haven.RolePatient && !s.released(n) {
			continue
		}
		ns := NoteSummary{ID: n.ID, VisitID: n.VisitID, AuthorName: s.workforceName(ctx, n.PracticeID, n.AuthorID), State: n.State}
		if v, err := s.db.FindVisit(ctx, n.VisitID); err == nil {
			ns.VisitStart = v.Start
		}
		if n.State == haven.NoteSigned {
			t := time.UnixMicro(n.SignedUS).UTC()
			ns.SignedAt = &t
		}
		out = append(out, ns)
	}
	return out, nil
}
