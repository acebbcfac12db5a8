package service

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"haven"
	"haven/keyring"
	"haven/policy"
	"haven/store/sqlstore"
)

// sessionPatientKey marks a context that carries the facts of a patient's
// record as the request's session check read them (WithSessionPatient).
type sessionPatientKey struct{}

type sessionPatient struct {
	practiceID, patientID string
	facts                 *sqlstore.PatientFacts
	taken                 atomic.Bool
}

// WithSessionPatient returns ctx carrying pf, the facts of patient
// patientID's record that a member of practiceID's decision needs without
// relations, as the request's session check read them in the session's
// own statement (identity's ResumeReading). The gate takes them instead
// of reading them again, once: a second decision in the same request, or
// one on another record, another practice's behalf or with relations,
// reads afresh, and so does the next request, whichever node changed them.
func WithSessionPatient(ctx context.Context, practiceID, patientID string, pf *sqlstore.PatientFacts) context.Context {
	if pf == nil {
		return ctx
	}
	return context.WithValue(ctx, sessionPatientKey{}, &sessionPatient{practiceID: practiceID, patientID: patientID, facts: pf})
}

// takeSessionPatient returns the facts WithSessionPatient put in ctx if
// they are what deciding on patientID for a with rel needs and nobody
// took them yet; nil otherwise.
func takeSessionPatient(ctx context.Context, a haven.Actor, patientID string, rel sqlstore.Relations) *sqlstore.PatientFacts {
	sp, ok := ctx.Value(sessionPatientKey{}).(*sessionPatient)
	if !ok || rel != sqlstore.WithoutRelations || a.PracticeID == "" || sp.practiceID != a.PracticeID || sp.patientID != patientID {
		return nil
	}
	if !sp.taken.CompareAndSwap(false, true) {
		return nil
	}
	return sp.facts
}

// loadFacts establishes what policy.Decide needs, from storage, for actor a
// and resource res, with the actor's practice's settings (detection reads
// its thresholds from them). Facts are loaded only for the actor's own
// practice and for a patient of that practice: facts about another tenant
// are never loaded, so none can be used to cross the boundary. A patient's
// facts and the settings are one statement (sqlstore's PatientFacts);
// without a patient the settings are those the request's session check
// read with the session, when it did (WithSessionSettings).
//
// Nothing here is cached: every decision is taken on what the database
// holds when the request asks, whichever node changed it.
func (s *Service) loadFacts(ctx context.Context, a haven.Actor, res policy.Resource) (policy.Facts, PracticeSettings, error) {
	if res.PatientID == "" || res.PracticeID != a.PracticeID {
		ps, err := s.decisionSettings(ctx, a.PracticeID)
		if err != nil {
			return policy.Facts{Now: s.now()}, ps, err
		}
		return s.factsOf(ctx, a, res, ps, nil)
	}
	pf, err := s.db.PatientFacts(ctx, a.PracticeID, res.PatientID, sqlstore.WithRelations)
	if err != nil {
		return policy.Facts{Now: s.now()}, DefaultSettings(), haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the facts of the decision")
	}
	return s.patientFacts(ctx, a, res, pf)
}

// patientFacts is loadFacts from a PatientFacts already read.
func (s *Service) patientFacts(ctx context.Context, a haven.Actor, res policy.Resource, pf *sqlstore.PatientFacts) (policy.Facts, PracticeSettings, error) {
	ps := DefaultSettings()
	if a.PracticeID != "" {
		var err error
		if ps, err = ParseSettings(pf.Settings); err != nil {
			return policy.Facts{Now: s.now()}, ps, err
		}
	}
	return s.factsOf(ctx, a, res, ps, pf)
}

// factsOf builds the facts from settings ps and, for a patient of the
// actor's practice, pf.
func (s *Service) factsOf(ctx context.Context, a haven.Actor, res policy.Resource, ps PracticeSettings, pf *sqlstore.PatientFacts) (policy.Facts, PracticeSettings, error) {
	f := policy.Facts{Now: s.now()}
	f.Practice = policy.PracticeFacts{
		PracticeID:         a.PracticeID,
		PatientsRequireMFA: ps.PatientsRequireMFA,
		StepUpMaxAge:       time.Duration(ps.StepUpMaxAge),
		ClinicalAccess:     ps.ClinicalAccess,
		TrainingRequired:   ps.TrainingRequired,
		TrainingGrace:      time.Duration(ps.TrainingGrace),
		WorkforceNetworks:  ps.workforceNetworks(),
	}
	if ps.TrainingRequired && a.Role.Workforce() && a.PracticeID != "" {
		until, err := s.trainingCurrentUntil(ctx, a.PracticeID, a.UserID, ps)
		if err != nil {
			return f, ps, err
		}
		f.Training = policy.TrainingFacts{UserID: a.UserID, CurrentUntil: until}
	}
	if pf == nil || res.PatientID == "" || res.PracticeID != a.PracticeID {
		return f, ps, nil
	}
	p := policy.PatientFacts{PracticeID: res.PracticeID, PatientID: res.PatientID}
	for _, m := range pf.CareTeam {
		if m.PracticeID == res.PracticeID {
			p.CareTeam = append(p.CareTeam, m.UserID)
		}
	}
	for _, g := range pf.Grants {
		if g.PracticeID == res.PracticeID {
			p.BreakGlass = append(p.BreakGlass, *g)
		}
	}
	for _, v := range pf.Visits {
		if v.PracticeID == res.PracticeID {
			p.Visits = append(p.Visits, *v)
		}
	}
	row := pf.Patient
	if row != nil && row.ID == res.PatientID && row.PracticeID == res.PracticeID && len(row.Restrictions) > 0 {
		// Opened to decide, never shown: restrictions protect the patient.
		b, err := s.keys.Open(ctx, chartAD(row.PracticeID, row.ID, "restrictions"), row.Restrictions)
		if err != nil {
			return f, ps, err
		}
		if err := json.Unmarshal(b, &p.Restrictions); err != nil {
			return f, ps, haven.Wrap(haven.EINTERNAL, err, "patient restrictions are unreadable")
		}
	}
	f.Patient = p
	return f, ps, nil
}

// chartAD binds a chart field's ciphertext to its practice, patient, record
// and field: moved anywhere else, it fails to open.
func chartAD(practiceID, patientID, field string) keyring.AD {
	return keyring.AD{PracticeID: practiceID, PatientID: patientID, Kind: "chart", RecordID: patientID, Field: field}
}
