package service

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"haven"
	"haven/policy"
)

// People by name, for the pages' pickers: nobody is asked to type an id.
// Who may find whom is policy's (patient.find, audit.search, visit.join),
// and every search is decided and audited like any other access; what was
// typed is never written to the log (a name is PHI).

// MaxPickerResults bounds what one search returns.
const MaxPickerResults = 20

// normalName is a name as searches compare it: lower case, one space
// between words.
func normalName(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }

// FindPatient returns the patients of the actor's practice whose full
// name and date of birth are exactly those given (case and spacing aside),
// as ids and names (patient.find): the administrator building a care team
// and the compliance officer filtering the audit log find a patient the
// way a front desk identifies one, by two identifiers they already hold,
// and learn nothing they did not type. No record is opened for them.
func (s *Service) FindPatient(ctx context.Context, name, dateOfBirth string) ([]haven.Member, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	want := normalName(name)
	if utf8.RuneCountInString(want) < 2 || len(want) > 200 {
		return nil, haven.Errorf(haven.EINVALID, "give the patient's full name")
	}
	if err := (Demographics{Name: want, DateOfBirth: dateOfBirth}).Validate(s.now()); err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.PatientFind, policy.Resource{Kind: policy.KindPatient, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	rows, err := s.db.ListPatients(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list patients")
	}
	out := []haven.Member{}
	for _, row := range rows {
		var d Demographics
		if s.openJSON(ctx, chartAD(row.PracticeID, row.ID, "demographics"), row.Demographics, &d) != nil {
			continue // erased: nobody to find
		}
		if d.DateOfBirth == dateOfBirth && normalName(d.Name) == want {
			out = append(out, haven.Member{UserID: row.ID, Name: d.Name, Role: haven.RolePatient})
		}
		if len(out) == MaxPickerResults {
			break
		}
	}
	return out, nil
}

// Roster returns the active workforce of the actor's practice, by name,
// for the compliance officer's audit search (audit.search, audited):
// "whose accesses" is picked by name, never typed as an id.
func (s *Service) Roster(ctx context.Context) ([]haven.Member, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.AuditSearch, policy.Resource{Kind: policy.KindAudit, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	return s.workforceMatching(ctx, a.PracticeID, "", nil)
}

// workforceMatching returns the practice's active workforce whose names
// contain every word of q (all of it for an empty q), by name, leaving
// out the ids in skip.
func (s *Service) workforceMatching(ctx context.Context, practiceID, q string, skip []string) ([]haven.Member, error) {
	users, err := s.db.ListUsers(ctx, practiceID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list the workforce")
	}
	words := strings.Fields(normalName(q))
	out := []haven.Member{}
	for _, u := range users {
		if !u.Role.Workforce() || u.Disabled || slices.Contains(skip, u.ID) {
			continue
		}
		p, err := s.openUser(ctx, u)
		if err != nil {
			return nil, err
		}
		name := normalName(p.Name)
		if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(name, w) }) {
			out = append(out, haven.Member{UserID: u.ID, Name: p.Name, Role: u.Role})
		}
	}
	slices.SortFunc(out, func(x, y haven.Member) int { return strings.Compare(x.Name, y.Name) })
	if len(out) > MaxPickerResults && q != "" {
		out = out[:MaxPickerResults]
	}
	return out, nil
}

// Invitees returns who the visit's clinician may invite to its call
// (an interpreter, a colleague): the practice's active workforce whose
// names contain every word of q (at least two letters), without the
// clinician and the patient. It passes the gate the invitation itself
// passes (visit.join, audited) and is the clinician's alone.
func (s *Service) Invitees(ctx context.Context, visitID, q string) ([]haven.Member, error) {
	if n := utf8.RuneCountInString(strings.TrimSpace(q)); n < 2 || len(q) > 100 {
		return nil, haven.Errorf(haven.EINVALID, "type at least two letters of the name")
	}
	a, v, err := s.visitFor(ctx, policy.VisitJoin, visitID)
	if err != nil {
		return nil, err
	}
	if a.UserID != v.ClinicianID {
		return nil, haven.Errorf(haven.EFORBIDDEN, "only the visit's clinician may invite")
	}
	return s.workforceMatching(ctx, v.PracticeID, q, []string{v.ClinicianID, v.PatientID})
}

// Names returns the names of the people of the actor's practice among
// ids, workforce and patients alike, for the compliance officer's screens
// (audit.search, one audited decision for the lot): an alert, a
// break-glass use and an audit line say who did what to whom by name,
// which is what reviewing an access needs; no record is opened beyond
// the name. Ids of another practice, of no one, or of an erased patient
// get no name.
func (s *Service) Names(ctx context.Context, ids []string) (map[string]string, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.AuditSearch, policy.Resource{Kind: policy.KindAudit, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, id := range ids {
		if _, done := out[id]; done || !haven.PlausibleID(id) {
			continue
		}
		u, err := s.db.FindUserByID(ctx, id)
		if err != nil || u.PracticeID != a.PracticeID {
			continue
		}
		if u.Role != haven.RolePatient {
			if p, err := s.openUser(ctx, u); err == nil {
				out[id] = p.Name
			}
			continue
		}
		row, err := s.db.FindPatient(ctx, id)
		if err != nil {
			continue
		}
		if name := patientName(ctx, s, row); name != "" {
			out[id] = name
		}
	}
	return out, nil
}

// patientName opens a patient's name for a caller already decided.
func patientName(ctx context.Context, s *Service, row *haven.Patient) string {
	var d Demographics
	if s.openJSON(ctx, chartAD(row.PracticeID, row.ID, "demographics"), row.Demographics, &d) != nil {
		return ""
	}
	return d.Name
}
