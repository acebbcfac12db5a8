package service

import (
	"context"
	"encoding/json"
	"time"

	"haven"
	"haven/keyring"
	"haven/policy"
)

// loadFacts establishes what policy.Decide needs, from storage, for actor a
// and resource res. Facts are loaded only for the actor's own practice and
// for a patient of that practice: facts about another tenant are never
// loaded, so none can be used to cross the boundary.
func (s *Service) loadFacts(ctx context.Context, a haven.Actor, res policy.Resource) (policy.Facts, error) {
	f := policy.Facts{Now: s.now()}
	ps, err := s.settings(ctx, a.PracticeID)
	if err != nil {
		return f, err
	}
	f.Practice = policy.PracticeFacts{
		PracticeID:         a.PracticeID,
		PatientsRequireMFA: ps.PatientsRequireMFA,
		StepUpMaxAge:       time.Duration(ps.StepUpMaxAge),
		ClinicalAccess:     ps.ClinicalAccess,
	}
	if res.PatientID == "" || res.PracticeID != a.PracticeID {
		return f, nil
	}
	pf := policy.PatientFacts{PracticeID: res.PracticeID, PatientID: res.PatientID}
	team, err := s.db.CareTeam(ctx, res.PatientID)
	if err != nil {
		return f, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the care team")
	}
	for _, m := range team {
		if m.PracticeID == res.PracticeID {
			pf.CareTeam = append(pf.CareTeam, m.UserID)
		}
	}
	grants, err := s.db.BreakGlassGrants(ctx, res.PatientID)
	if err != nil {
		return f, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load break-glass grants")
	}
	for _, g := range grants {
		if g.PracticeID == res.PracticeID {
			pf.BreakGlass = append(pf.BreakGlass, *g)
		}
	}
	visits, err := s.db.PatientVisits(ctx, res.PatientID)
	if err != nil {
		return f, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load visits")
	}
	for _, v := range visits {
		if v.PracticeID == res.PracticeID {
			pf.Visits = append(pf.Visits, *v)
		}
	}
	row, err := s.db.FindPatient(ctx, res.PatientID)
	if err != nil && haven.ErrorCode(err) != haven.ENOTFOUND {
		return f, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the patient's restrictions")
	}
	if row != nil && row.PracticeID == res.PracticeID && len(row.Restrictions) > 0 {
		// Opened to decide, never shown: restrictions protect the patient.
		b, err := s.keys.Open(ctx, chartAD(row.PracticeID, row.ID, "restrictions"), row.Restrictions)
		if err != nil {
			return f, err
		}
		if err := json.Unmarshal(b, &pf.Restrictions); err != nil {
			return f, haven.Wrap(haven.EINTERNAL, err, "patient restrictions are unreadable")
		}
	}
	f.Patient = pf
	return f, nil
}

// chartAD binds a chart field's ciphertext to its practice, patient, record
// and field: moved anywhere else, it fails to open.
func chartAD(practiceID, patientID, field string) keyring.AD {
	return keyring.AD{PracticeID: practiceID, PatientID: patientID, Kind: "chart", RecordID: patientID, Field: field}
}
