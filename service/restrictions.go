package service

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"haven"
	"haven/policy"
)

// A patient's restrictions: her own limits on who sees her record
// (haven.Restrictions), which policy applies to every decision about it.
// Only she reads and sets them (restrictions.read, restrictions.write,
// audited); they are sealed under her key with her chart (a restricted
// category can itself be revealing), and opened elsewhere only to be
// handed to policy (facts.go).

// Bounds of a patient's restrictions.
const (
	maxBarred     = 50
	maxCategories = 20
)

// RestrictionsView is a patient's restrictions as she reads them: the
// people she barred by name.
type RestrictionsView struct {
	// StaffFromMessages keeps the front desk out of her messages: the
	// inbox, the threads, the waiting room's lines, even their counts.
	StaffFromMessages bool `json:"staff_from_messages"`
	// Barred are the workforce members she keeps out of her whole record.
	Barred     []haven.Member          `json:"barred"`
	Categories []string                `json:"categories,omitempty"`
	Consents   []haven.CategoryConsent `json:"consents,omitempty"`
	Version    int                     `json:"version"` // the chart's, for a change made on what was read
}

// restrictionsRow loads a patient's chart past the gate for act on her
// restrictions, and opens what she set.
func (s *Service) restrictionsRow(ctx context.Context, act policy.Action, patientID string) (*haven.Patient, haven.Restrictions, error) {
	var r haven.Restrictions
	row, _, _, _, err := s.gatePatient(ctx, act, policy.KindRestrictions, patientID)
	if err != nil {
		return nil, r, err
	}
	if len(row.Restrictions) > 0 {
		if err := s.openJSON(ctx, chartAD(row.PracticeID, row.ID, "restrictions"), row.Restrictions, &r); err != nil {
			return nil, r, err
		}
	}
	return row, r, nil
}

// Restrictions returns a patient's restrictions to herself.
func (s *Service) Restrictions(ctx context.Context, patientID string) (*RestrictionsView, error) {
	row, r, err := s.restrictionsRow(ctx, policy.RestrictionsRead, patientID)
	if err != nil {
		return nil, err
	}
	return s.restrictionsView(ctx, row, r), nil
}

func (s *Service) restrictionsView(ctx context.Context, row *haven.Patient, r haven.Restrictions) *RestrictionsView {
	v := &RestrictionsView{StaffFromMessages: r.StaffFromMessages, Barred: []haven.Member{}, Categories: r.Categories, Consents: r.Consents, Version: row.Version}
	for _, id := range r.BarredUsers {
		m := haven.Member{UserID: id, Name: "Someone no longer at the practice"}
		if u, err := s.db.FindUserByID(ctx, id); err == nil && u.PracticeID == row.PracticeID && u.Role.Workforce() {
			m.Role = u.Role
			if p, err := s.openUser(ctx, u); err == nil {
				m.Name = p.Name
			}
		}
		v.Barred = append(v.Barred, m)
	}
	return v
}

// RestrictionsChange is a patient's new restrictions, whole, made on the
// version she read.
type RestrictionsChange struct {
	Version           int                     `json:"version"`
	StaffFromMessages bool                    `json:"staff_from_messages"`
	BarredUsers       []string                `json:"barred_users"`
	Categories        []string                `json:"categories,omitempty"`
	Consents          []haven.CategoryConsent `json:"consents,omitempty"`
}

// SetRestrictions replaces a patient's restrictions (restrictions.write,
// audited), and policy applies them from the next decision on, on every
// node (they are read afresh for each). A barred person must be a member
// of her practice's workforce; a consent must name a restricted category.
// Made on a version that is no longer the chart's, it is ECONFLICT.
func (s *Service) SetRestrictions(ctx context.Context, patientID string, ch RestrictionsChange) (*RestrictionsView, error) {
	if len(ch.BarredUsers) > maxBarred || len(ch.Categories) > maxCategories || len(ch.Consents) > maxBarred*maxCategories {
		return nil, haven.Errorf(haven.EINVALID, "at most %d people barred and %d categories", maxBarred, maxCategories)
	}
	for _, c := range ch.Categories {
		if !validCategory(c) {
			return nil, haven.Errorf(haven.EINVALID, "a category is 1 to 40 lower-case letters and underscores")
		}
	}
	for _, c := range ch.Consents {
		if !haven.PlausibleID(c.UserID) || !slices.Contains(ch.Categories, c.Category) {
			return nil, haven.Errorf(haven.EINVALID, "a consent names a person and a category you restricted")
		}
	}
	for _, id := range ch.BarredUsers {
		if !haven.PlausibleID(id) {
			return nil, haven.Errorf(haven.EINVALID, "bar people of your practice, by name")
		}
	}
	row, _, err := s.restrictionsRow(ctx, policy.RestrictionsWrite, patientID)
	if err != nil {
		return nil, err
	}
	if ch.Version != row.Version {
		return nil, haven.Errorf(haven.ECONFLICT, "your record changed since you opened this page; reload and try again")
	}
	r := haven.Restrictions{StaffFromMessages: ch.StaffFromMessages, Categories: dedupe(ch.Categories), Consents: ch.Consents}
	for _, id := range dedupe(ch.BarredUsers) {
		u, err := s.db.FindUserByID(ctx, id)
		if err != nil || u.PracticeID != row.PracticeID || !u.Role.Workforce() {
			return nil, haven.Errorf(haven.EINVALID, "bar people of your practice, by name")
		}
		r.BarredUsers = append(r.BarredUsers, id)
	}
	for _, c := range r.Consents {
		if u, err := s.db.FindUserByID(ctx, c.UserID); err != nil || u.PracticeID != row.PracticeID || !u.Role.Workforce() {
			return nil, haven.Errorf(haven.EINVALID, "a consent names a person and a category you restricted")
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if row.Restrictions, err = s.keys.Seal(ctx, chartAD(row.PracticeID, row.ID, "restrictions"), b); err != nil {
		return nil, err
	}
	if err := s.db.UpdatePatient(ctx, row); err != nil {
		return nil, err
	}
	return s.restrictionsView(ctx, row, r), nil
}

// RestrictablePeople returns the practice's clinicians and front desk
// whose names contain every word of q (at least three letters), for a
// patient choosing whom to bar: restrictions.read on her own record,
// audited. She learns names of her practice's workforce, nothing of
// anyone's record.
func (s *Service) RestrictablePeople(ctx context.Context, patientID, q string) ([]haven.Member, error) {
	if len([]rune(strings.TrimSpace(q))) < 3 || len(q) > 100 {
		return nil, haven.Errorf(haven.EINVALID, "type at least three letters of the name")
	}
	row, _, err := s.restrictionsRow(ctx, policy.RestrictionsRead, patientID)
	if err != nil {
		return nil, err
	}
	all, err := s.workforceMatching(ctx, row.PracticeID, q, nil)
	if err != nil {
		return nil, err
	}
	out := []haven.Member{}
	for _, m := range all {
		if m.Role == haven.RoleClinician || m.Role == haven.RoleStaff {
			out = append(out, m)
		}
	}
	return out, nil
}

func validCategory(c string) bool {
	if len(c) < 1 || len(c) > 40 {
		return false
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r == '_') {
			return false
		}
	}
	return true
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
