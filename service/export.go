package service

import (
	"archive/zip"
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"haven"
	"haven/policy"
)

// The right of access (HIPAA 164.524): a patient downloads her whole
// record as one zip holding a FHIR R4 Bundle (record.json), a summary a
// person can read (summary.html), and her files (files/), which the
// Bundle's DocumentReferences name by their path in the zip.
//
// The export passes the gate once (export.patient, which needs a recent
// step-up: a stolen session must not carry the whole record away in one
// request) and is one event in the audit log; what it opens after that
// is the record of that patient and that practice only, each value under
// its own associated data, so a row moved from another patient fails to
// open rather than travel in her zip. Files are decrypted as the zip is
// written, so a large record never sits whole in memory.

// Export is a patient's record opened for export: the Bundle and the
// summary are built; the files are opened as WriteZip writes them.
type Export struct {
	s         *Service
	PatientID string
	// Size is what the zip will weigh, about: the Bundle, the summary and
	// the files' plaintext; the page shows progress against it.
	Size   int64
	Files  int
	bundle []byte
	html   []byte
	files  []exportFile
}

type exportFile struct {
	f    *haven.File
	path string
}

// ExportName is the zip's file name: no name or date of birth, which a
// downloads folder or a browser's history would keep.
const ExportName = "health-record.zip"

// PrepareExport decides and records the export of patientID's record and
// opens everything but the files' content.
func (s *Service) PrepareExport(ctx context.Context, patientID string) (*Export, error) {
	row, _, _, _, err := s.gatePatient(ctx, policy.ExportPatient, policy.KindChart, patientID)
	if err != nil {
		return nil, err
	}
	return s.openExport(ctx, row)
}

// openExport opens row's record for export. Call it only once the export
// is decided and recorded.
func (s *Service) openExport(ctx context.Context, row *haven.Patient) (*Export, error) {
	ctx, err := s.keys.Checked(ctx)
	if err != nil {
		return nil, err
	}
	b := &recordBuilder{s: s, row: row, refs: map[string]string{}}
	if err := b.build(ctx); err != nil {
		return nil, err
	}
	bundle, err := json.MarshalIndent(b.bundle(), "", " ")
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot write the record")
	}
	var h bytes.Buffer
	if err := summaryHTML.Execute(&h, b.sum); err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, err, "cannot write the summary")
	}
	x := &Export{s: s, PatientID: row.ID, bundle: bundle, html: h.Bytes(), files: b.files, Files: len(b.files)}
	x.Size = int64(len(bundle) + h.Len())
	for _, f := range b.files {
		x.Size += f.f.Size + 100
	}
	return x, nil
}

// WriteZip writes the export to w: the Bundle, the summary, then each
// file decrypted as it is copied. progress, if set, is told the bytes
// written so far after each piece.
func (x *Export) WriteZip(ctx context.Context, w io.Writer, progress func(int64)) error {
	cw := &countingWriter{w: w}
	z := zip.NewWriter(cw)
	put := func(name string, method uint16, r io.Reader) error {
		zw, err := z.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: x.s.now().UTC()})
		if err != nil {
			return err
		}
		if _, err := io.Copy(zw, r); err != nil {
			return err
		}
		if err := z.Flush(); err != nil {
			return err
		}
		if progress != nil {
			progress(cw.n)
		}
		return nil
	}
	if err := put("record.json", zip.Deflate, bytes.NewReader(x.bundle)); err != nil {
		return err
	}
	if err := put("summary.html", zip.Deflate, bytes.NewReader(x.html)); err != nil {
		return err
	}
	for _, ef := range x.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := ef.f
		rc, err := x.s.openSealed(ctx, f.BlobKey, fileAD(f.PracticeID, f.PatientID, f.ID, "content"))
		if err != nil {
			return err
		}
		err = put(ef.path, ZipMethod(f.ContentType), rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	if err := z.Close(); err != nil {
		return err
	}
	if progress != nil {
		progress(cw.n)
	}
	return nil
}

// ZipMethod is how a file of ctype is stored in the zip: photos and PDFs
// are compressed already, and deflating them again costs time for
// nothing; anything else (DICOM, text) is deflated.
func ZipMethod(ctype string) uint16 {
	switch ctype {
	case "image/jpeg", "image/png", "application/pdf":
		return zip.Store
	}
	return zip.Deflate
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// recordBuilder opens a patient's record into FHIR resources and the
// summary's lines. Every resource is an entry with a urn:uuid fullUrl and
// every reference is to such a fullUrl, so the Bundle stands alone.
type recordBuilder struct {
	s       *Service
	row     *haven.Patient
	entries []fhirEntry
	refs    map[string]string // "Kind/haven id" → fullUrl
	files   []exportFile
	sum     exportSummary
	// relative makes every reference a relative one ("Patient/[id]"), as
	// the FHIR API serves resources apart, instead of the urn:uuid
	// fullUrls of a Bundle that stands alone.
	relative bool
}

// exportSummary is what summary.html shows.
type exportSummary struct {
	Name, DateOfBirth, Sex, MRN, Email, Phone, Address string
	Made                                               string
	Visits                                             []summaryLine
	Notes                                              []summaryNote
	Messages                                           []summaryLine
	Prescriptions                                      []summaryLine
	Allergies                                          []summaryLine
	LabOrders                                          []summaryLine
	Results                                            []summaryResult
	Readings                                           []summaryLine // what she recorded herself, from her apps and devices
	Files                                              []summaryFile
}

type summaryLine struct{ When, What, Detail string }

type summaryNote struct {
	When, Author string
	SOAP         haven.SOAP
	Addenda      []string
}

// summaryResult is one released lab result as the summary says it.
type summaryResult struct {
	When, Test, Lab, Reviewer, Comment string
	Values                             []summaryValue
	Notes                              []string
}

type summaryValue struct {
	Name, Value, Range, Meaning string
	Notes                       []string
}

type summaryFile struct{ When, Name, Path string }

// add appends res as an entry and returns its reference.
func (b *recordBuilder) add(key string, res map[string]any) fhirRef {
	u := urnUUID()
	if id, ok := res["id"].(string); ok && b.relative {
		u = res["resourceType"].(string) + "/" + id
	}
	if key != "" {
		b.refs[key] = u
	}
	b.entries = append(b.entries, fhirEntry{FullURL: u, Resource: res})
	return fhirRef{Reference: u}
}

func (b *recordBuilder) bundle() fhirBundleDoc {
	return fhirBundleDoc{ResourceType: "Bundle", ID: haven.NewID(), Type: "collection",
		Timestamp: b.s.now().UTC().Format(time.RFC3339), Entry: b.entries}
}

// fhirBundleDoc is a Bundle without a signature or identifier.
type fhirBundleDoc struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id"`
	Type         string      `json:"type"`
	Timestamp    string      `json:"timestamp"`
	Entry        []fhirEntry `json:"entry"`
}

func fhirTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func sumTime(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }

// person returns the reference of the Practitioner for a workforce
// member of the patient's practice, adding it the first time; the
// patient's own id is her Patient.
func (b *recordBuilder) person(ctx context.Context, userID string) (fhirRef, string) {
	if userID == b.row.ID {
		return fhirRef{Reference: b.refs["Patient/"+b.row.ID]}, "You"
	}
	name := b.s.workforceName(ctx, b.row.PracticeID, userID)
	if name == "" {
		name = "A member of the practice"
	}
	if u, ok := b.refs["Practitioner/"+userID]; ok {
		return fhirRef{Reference: u}, name
	}
	return b.add("Practitioner/"+userID, map[string]any{"resourceType": "Practitioner", "id": fhirID(userID),
		"identifier": []fhirIdentifier{{System: fhirHavenUser, Value: userID}}, "name": []fhirName{{Text: name}}}), name
}

// fhirID is a Haven id as a FHIR id (both are short and of [a-z0-9]).
func fhirID(id string) string { return id }

func (b *recordBuilder) build(ctx context.Context) error {
	pref, err := b.addPatient(ctx)
	if err != nil {
		return err
	}
	// Files first: messages and notes refer to them.
	if err := b.addFiles(ctx, pref); err != nil {
		return err
	}
	if err := b.addVisits(ctx, pref); err != nil {
		return err
	}
	if err := b.addNotes(ctx, pref); err != nil {
		return err
	}
	if err := b.addMessages(ctx, pref); err != nil {
		return err
	}
	if err := b.addPrescriptions(ctx, pref); err != nil {
		return err
	}
	if err := b.addLabs(ctx, pref); err != nil {
		return err
	}
	if err := b.addVitals(ctx, pref); err != nil {
		return err
	}
	return b.addAllergies(ctx, pref)
}

// addAllergies adds her allergy list, each an AllergyIntolerance.
func (b *recordBuilder) addAllergies(ctx context.Context, pref fhirRef) error {
	allergies, err := b.s.openAllergies(ctx, b.row.ID)
	if err != nil {
		return err
	}
	for _, x := range allergies {
		ai := map[string]any{"resourceType": "AllergyIntolerance", "id": fhirID(x.ID),
			"clinicalStatus": map[string]any{"coding": []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", Code: "active"}}},
			"code":           map[string]any{"text": x.Substance}, "patient": pref, "recordedDate": fhirTime(x.Added)}
		if x.Reaction != "" {
			ai["reaction"] = []map[string]any{{"manifestation": []map[string]any{{"text": x.Reaction}}}}
		}
		b.add("AllergyIntolerance/"+x.ID, ai)
		b.sum.Allergies = append(b.sum.Allergies, summaryLine{When: sumTime(x.Added), What: x.Substance, Detail: x.Reaction})
	}
	return nil
}

// addPatient opens the chart and adds the Patient.
func (b *recordBuilder) addPatient(ctx context.Context) (fhirRef, error) {
	s, row := b.s, b.row
	chart, err := s.openChart(ctx, row)
	if err != nil {
		return fhirRef{}, err
	}
	d, c := chart.Demographics, chart.Contact
	b.sum = exportSummary{Name: d.Name, DateOfBirth: d.DateOfBirth, Sex: d.Sex, MRN: chart.MRN, Email: c.Email, Phone: c.Phone,
		Address: c.Address, Made: sumTime(s.now())}
	patient := map[string]any{"resourceType": "Patient", "id": fhirID(row.ID),
		"identifier": []fhirIdentifier{{System: "urn:haven:mrn:" + row.PracticeID, Value: chart.MRN}},
		"name":       []fhirName{{Text: d.Name}}, "gender": fhirGender(d.Sex)}
	if _, err := time.Parse(time.DateOnly, d.DateOfBirth); err == nil {
		patient["birthDate"] = d.DateOfBirth
	}
	var telecom []map[string]string
	if c.Phone != "" {
		telecom = append(telecom, map[string]string{"system": "phone", "value": c.Phone})
	}
	if c.Email != "" {
		telecom = append(telecom, map[string]string{"system": "email", "value": c.Email})
	}
	if telecom != nil {
		patient["telecom"] = telecom
	}
	if c.Address != "" {
		patient["address"] = []map[string]string{{"text": c.Address}}
	}
	return b.add("Patient/"+row.ID, patient), nil
}

// addVisits adds her visits: each an Appointment, and an Encounter once
// it began.
func (b *recordBuilder) addVisits(ctx context.Context, pref fhirRef) error {
	s, row := b.s, b.row
	visits, err := s.db.PatientVisits(ctx, row.ID)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visits")
	}
	for _, v := range visits {
		if v.PracticeID != row.PracticeID || v.PatientID != row.ID {
			continue
		}
		if err := b.addVisit(ctx, pref, v); err != nil {
			return err
		}
	}
	return nil
}

// appointmentStatus maps a visit's state to FHIR's Appointment status.
var appointmentStatus = map[string]string{haven.VisitBooked: "booked", haven.VisitWaiting: "arrived",
	haven.VisitAdmitted: "arrived", haven.VisitEnded: "fulfilled", haven.VisitCancelled: "cancelled"}

var visitWords = map[string]string{haven.VisitBooked: "booked", haven.VisitWaiting: "checked in",
	haven.VisitAdmitted: "in progress", haven.VisitEnded: "held", haven.VisitCancelled: "cancelled"}

func (b *recordBuilder) addVisit(ctx context.Context, pref fhirRef, v *haven.Visit) error {
	ov, err := b.s.openVisit(ctx, v)
	if err != nil {
		return err
	}
	cref, cname := b.person(ctx, v.ClinicianID)
	appt := b.add("Appointment/"+v.ID, map[string]any{"resourceType": "Appointment", "id": fhirID(v.ID),
		"status": appointmentStatus[v.State], "description": ov.Reason, "start": fhirTime(v.Start), "end": fhirTime(v.End),
		"participant": []map[string]any{{"actor": pref, "status": "accepted"}, {"actor": cref, "status": "accepted"}}})
	if v.State == haven.VisitAdmitted || v.State == haven.VisitEnded {
		status := "finished"
		if v.State == haven.VisitAdmitted {
			status = "in-progress"
		}
		b.add("Encounter/"+v.ID, map[string]any{"resourceType": "Encounter", "id": fhirID(v.ID), "status": status,
			"class":       fhirCoding{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "VR", Display: "virtual"},
			"subject":     pref,
			"participant": []map[string]any{{"individual": cref}},
			"appointment": []fhirRef{appt},
			"period":      map[string]string{"start": fhirTime(v.Start), "end": fhirTime(v.End)},
			"reasonCode":  []map[string]string{{"text": ov.Reason}}})
	}
	b.sum.Visits = append(b.sum.Visits, summaryLine{When: sumTime(v.Start), What: "Video visit with " + cname + " (" + visitWords[v.State] + ")", Detail: ov.Reason})
	return nil
}

// addNotes adds the signed notes the patient may read: each as a
// DocumentReference holding its text, and a Provenance carrying the
// practice's signature over it, which anyone with the practice's public
// key can check against the note's canonical form.
func (b *recordBuilder) addNotes(ctx context.Context, pref fhirRef) error {
	s, row := b.s, b.row
	notes, err := s.db.PatientNotes(ctx, row.ID, true)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot list notes")
	}
	for _, n := range notes {
		if n.PracticeID != row.PracticeID || n.PatientID != row.ID || !s.released(n) {
			continue
		}
		var c haven.SOAP
		if err := s.openJSON(ctx, noteAD(n), n.Body, &c); err != nil {
			return err
		}
		aref, aname := b.person(ctx, n.AuthorID)
		signed := time.UnixMicro(n.SignedUS).UTC()
		text := "Subjective:\n" + c.Subjective + "\n\nObjective:\n" + c.Objective + "\n\nAssessment:\n" + c.Assessment + "\n\nPlan:\n" + c.Plan + "\n"
		sn := summaryNote{When: sumTime(signed), Author: aname, SOAP: c}
		adds, err := s.db.NoteAddenda(ctx, n.ID)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the note's addenda")
		}
		for _, ad := range adds {
			t, err := s.keys.Open(ctx, addendumAD(ad), ad.Body)
			if err != nil {
				return err
			}
			line := "Addendum (" + sumTime(time.UnixMicro(ad.CreatedUS)) + "): " + string(t)
			text += "\n" + line + "\n"
			sn.Addenda = append(sn.Addenda, line)
		}
		doc := map[string]any{"resourceType": "DocumentReference", "id": fhirID(n.ID), "status": "current", "docStatus": "final",
			"type":    map[string]any{"coding": []fhirCoding{{System: "http://loinc.org", Code: "11506-3", Display: "Progress note"}}},
			"subject": pref, "date": fhirTime(signed), "author": []fhirRef{aref}, "authenticator": aref,
			"description": "Visit note",
			"content":     []map[string]any{{"attachment": map[string]any{"contentType": "text/plain; charset=utf-8", "data": base64.StdEncoding.EncodeToString([]byte(text)), "title": "Visit note"}}}}
		if enc, ok := b.refs["Encounter/"+n.VisitID]; ok {
			doc["context"] = map[string]any{"encounter": []fhirRef{{Reference: enc}}}
		}
		dref := b.add("DocumentReference/"+n.ID, doc)
		b.add("", map[string]any{"resourceType": "Provenance", "target": []fhirRef{dref}, "recorded": fhirTime(signed),
			"activity": map[string]any{"coding": []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/v3-DataOperation", Code: "CREATE"}}},
			"agent":    []map[string]any{{"who": aref}},
			"signature": []map[string]any{{
				"type":         []fhirCoding{{System: fhirSignatureSystem, Code: "1.2.840.10065.1.12.1.1", Display: "Author's Signature"}},
				"when":         fhirTime(signed),
				"who":          aref,
				"targetFormat": "application/octet-stream",
				"sigFormat":    "application/octet-stream",
				"data":         base64.StdEncoding.EncodeToString(n.Signature)}}})
		b.sum.Notes = append(b.sum.Notes, sn)
	}
	return nil
}

// addFiles adds each file as a DocumentReference whose attachment names
// its path in the zip.
func (b *recordBuilder) addFiles(ctx context.Context, pref fhirRef) error {
	s, row := b.s, b.row
	fs, err := s.db.PatientFiles(ctx, row.ID)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot list files")
	}
	used := map[string]bool{}
	for _, f := range fs {
		if f.PracticeID != row.PracticeID || f.PatientID != row.ID {
			continue
		}
		v, err := s.fileView(ctx, f, nil)
		if err != nil {
			return err
		}
		p := "files/" + zipName(v.Name, f.ID, used)
		who, _ := b.person(ctx, f.UploadedBy)
		att := map[string]any{"contentType": f.ContentType, "url": p, "size": f.Size, "title": v.Name, "creation": fhirTime(f.CreatedAt)}
		if b.relative { // no zip to name a path in
			delete(att, "url")
		}
		b.add("File/"+f.ID, map[string]any{"resourceType": "DocumentReference", "id": fhirID(f.ID), "status": "current",
			"subject": pref, "date": fhirTime(f.CreatedAt), "author": []fhirRef{who}, "description": v.Name,
			"content": []map[string]any{{"attachment": att}}})
		b.files = append(b.files, exportFile{f: f, path: p})
		b.sum.Files = append(b.sum.Files, summaryFile{When: sumTime(f.CreatedAt), Name: v.Name, Path: p})
	}
	return nil
}

// zipName is a file's name as a path inside the zip: its own name, kept
// to safe characters, made unique.
func zipName(name, id string, used map[string]bool) string {
	var sb strings.Builder
	for _, r := range path.Base(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	n := strings.TrimLeft(sb.String(), ".")
	if n == "" {
		n = id
	}
	if len(n) > 100 {
		n = n[len(n)-100:]
	}
	base := n
	if used[n] {
		n = id + "-" + base
	}
	for i := 2; used[n]; i++ {
		n = id + "-" + strconv.Itoa(i) + "-" + base
	}
	used[n] = true
	return n
}

// addMessages adds each message of each of her conversations as a
// Communication; its attached files are references to their
// DocumentReferences.
func (b *recordBuilder) addMessages(ctx context.Context, pref fhirRef) error {
	s, row := b.s, b.row
	ts, err := s.db.PatientThreads(ctx, row.ID)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the conversations")
	}
	for _, t := range ts {
		if t.PracticeID != row.PracticeID || t.PatientID != row.ID {
			continue
		}
		subject := "Visit waiting room"
		if len(t.Subject) > 0 {
			sub, err := s.keys.Open(ctx, subjectAD(t), t.Subject)
			if err != nil {
				return err
			}
			subject = string(sub)
		}
		msgs, err := s.db.ThreadMessages(ctx, t.ID)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the messages")
		}
		for _, m := range msgs {
			ad, err := messageAD(m)
			if err != nil {
				return err
			}
			body, err := s.keys.Open(ctx, ad, m.Body)
			if err != nil {
				return err
			}
			from, fromName := b.person(ctx, m.SenderID)
			sent := time.UnixMicro(m.CreatedUS).UTC()
			payload := []map[string]any{{"contentString": string(body)}}
			for _, fid := range m.FileIDs {
				if u, ok := b.refs["File/"+fid]; ok {
					payload = append(payload, map[string]any{"contentReference": fhirRef{Reference: u}})
				} else if b.relative { // the file's own read decides who sees it
					payload = append(payload, map[string]any{"contentReference": fhirRef{Reference: "DocumentReference/" + fhirID(fid)}})
				}
			}
			comm := map[string]any{"resourceType": "Communication", "id": fhirID(m.ID), "status": "completed",
				"subject": pref, "topic": map[string]any{"text": subject}, "sent": fhirTime(sent),
				"sender": from, "payload": payload}
			if m.SenderID != row.ID {
				comm["recipient"] = []fhirRef{pref}
			}
			b.add("Communication/"+m.ID, comm)
			b.sum.Messages = append(b.sum.Messages, summaryLine{When: sumTime(sent), What: subject + " — from " + fromName, Detail: string(body)})
		}
	}
	return nil
}

// medicationStatus maps a signed prescription's status to FHIR's.
var medicationStatus = map[haven.PrescriptionStatus]string{haven.RxQueued: "active", haven.RxSent: "active",
	haven.RxAccepted: "active", haven.RxRejected: "stopped", haven.RxCancelled: "cancelled"}

// addPrescriptions adds her signed prescriptions (drafts are not yet
// part of her record), each with the pharmacy it was sent to.
func (b *recordBuilder) addPrescriptions(ctx context.Context, pref fhirRef) error {
	s, row := b.s, b.row
	rows, err := s.db.PatientPrescriptions(ctx, row.ID)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot load prescriptions")
	}
	for _, p := range rows {
		if p.PracticeID != row.PracticeID || p.PatientID != row.ID || p.Status == haven.RxDraft {
			continue
		}
		var c haven.PrescriptionContent
		if err := s.openJSON(ctx, rxAD(p), p.Content, &c); err != nil {
			return err
		}
		pres, pname := b.person(ctx, p.PrescriberID)
		med := map[string]any{"resourceType": "MedicationRequest", "id": fhirID(p.ID),
			"identifier": []fhirIdentifier{{System: fhirHavenRx, Value: p.ID}},
			"status":     medicationStatus[p.Status], "intent": "order",
			"medicationCodeableConcept": map[string]any{
				"coding": []fhirCoding{{System: fhirRxNorm, Code: c.RxNorm, Display: c.Drug}},
				"text":   strings.TrimSpace(c.Drug + " " + c.Strength + " " + c.Form)},
			"subject": pref, "authoredOn": fhirTime(p.Signed), "requester": pres,
			"dosageInstruction": []map[string]any{{"text": c.Directions}},
			"substitution":      map[string]any{"allowedBoolean": c.Substitution}}
		dispense := map[string]any{"numberOfRepeatsAllowed": c.Refills,
			"quantity":               map[string]any{"value": c.Quantity, "unit": c.Form},
			"expectedSupplyDuration": map[string]any{"value": c.DaysSupply, "unit": "days", "system": fhirUCUM, "code": "d"}}
		oref, pharmacy, ok := b.organization(ctx, p.PharmacyID, "Pharmacy")
		if ok {
			dispense["performer"] = oref
		}
		med["dispenseRequest"] = dispense
		b.add("MedicationRequest/"+p.ID, med)
		detail := c.Directions
		if pharmacy != "" {
			detail += " — sent to " + pharmacy
		}
		b.sum.Prescriptions = append(b.sum.Prescriptions, summaryLine{When: sumTime(p.Signed),
			What: strings.TrimSpace(c.Drug+" "+c.Strength+" "+c.Form) + " — prescribed by " + pname, Detail: detail})
	}
	return nil
}

//go:embed export_summary.html
var summaryTemplate string

// summaryHTML is the readable summary: plain HTML with its style inline
// and no script, so it opens anywhere, offline, for years.
var summaryHTML = template.Must(template.New("summary").Parse(summaryTemplate))
