package service

import (
	"context"

	"haven"
	"haven/policy"
)

// CareTeam returns a patient's care team.
func (s *Service) CareTeam(ctx context.Context, patientID string) ([]haven.Member, error) {
	row, _, _, _, err := s.gatePatient(ctx, policy.CareTeamRead, policy.KindCareTeam, patientID)
	if err != nil {
		return nil, err
	}
	team, err := s.db.CareTeam(ctx, row.ID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the care team")
	}
	out := make([]haven.Member, 0, len(team))
	for _, m := range team {
		u, err := s.db.FindUserByID(ctx, m.UserID)
		if err != nil || u.PracticeID != row.PracticeID {
			continue
		}
		p, err := s.openUser(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, haven.Member{UserID: u.ID, Name: p.Name, Role: u.Role})
	}
	return out, nil
}

// AddToCareTeam puts a clinician or staff member of the patient's practice
// on the patient's care team (practice admin).
func (s *Service) AddToCareTeam(ctx context.Context, patientID, userID string) error {
	return s.changeCareTeam(ctx, patientID, userID, true)
}

// RemoveFromCareTeam takes a member off a patient's care team.
func (s *Service) RemoveFromCareTeam(ctx context.Context, patientID, userID string) error {
	return s.changeCareTeam(ctx, patientID, userID, false)
}

func (s *Service) changeCareTeam(ctx context.Context, patientID, userID string, add bool) error {
	row, a, _, _, err := s.gatePatient(ctx, policy.CareTeamManage, policy.KindCareTeam, patientID)
	if err != nil {
		return err
	}
	if !haven.PlausibleID(userID) {
		return haven.Errorf(haven.EINVALID, "not a user id")
	}
	if !add {
		return s.db.RemoveCareTeamMember(ctx, row.ID, userID)
	}
	u, err := s.db.FindUserByID(ctx, userID)
	if err != nil || u.PracticeID != row.PracticeID {
		return haven.Errorf(haven.EINVALID, "user %s is not a member of this practice", userID)
	}
	if u.Role != haven.RoleClinician && u.Role != haven.RoleStaff {
		return haven.Errorf(haven.EINVALID, "only clinicians and staff can be on a care team")
	}
	return s.db.AddCareTeamMember(ctx, haven.CareTeamMember{PracticeID: row.PracticeID, PatientID: row.ID, UserID: u.ID, AddedBy: a.UserID})
}

// Workforce lists the clinicians and staff of the actor's practice, for the
// admin's care-team picker (user.manage). Workforce names are not PHI.
func (s *Service) Workforce(ctx context.Context) ([]haven.Member, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.UserManage, policy.Resource{Kind: policy.KindUser, PracticeID: a.PracticeID}); err != nil {
		return nil, err
	}
	users, err := s.db.ListUsers(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list users")
	}
	var out []haven.Member
	for _, u := range users {
		if !u.Role.Workforce() {
			continue
		}
		p, err := s.openUser(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, haven.Member{UserID: u.ID, Name: p.Name, Role: u.Role})
	}
	return out, nil
}
