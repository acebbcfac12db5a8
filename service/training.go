package service

import (
	"context"
	"slices"
	"strings"
	"time"

	"haven"
	"haven/policy"
)

// Workforce security training (164.308(a)(5)): each member takes the
// modules (haven.TrainingModules) and their quizzes from their own page;
// a passed module is current for haven.TrainingValidity. The administrator
// and the compliance officer see who is current, due or overdue, by name.
// When the practice requires training (PracticeSettings.TrainingRequired),
// policy refuses a member's PHI actions once their training has lapsed for
// longer than the grace period (policy.TrainingFacts, loaded in facts.go
// for every decision: nothing is cached, so a completion counts on every
// node from the next request on).

// TrainingDueSoon is how long before its expiry a module shows as due.
const TrainingDueSoon = 30 * 24 * time.Hour

// Training states, per module and per person.
const (
	TrainingCurrent = "current"
	TrainingDue     = "due"     // expires within TrainingDueSoon, or lapsed but within the grace period
	TrainingOverdue = "overdue" // lapsed (past the grace period, when training is required)
	TrainingNever   = "never"   // never passed
)

// ModuleStatus is one member's standing in one module.
type ModuleStatus struct {
	Module    haven.TrainingModule
	Completed time.Time // zero: never passed
	Expires   time.Time
	State     string
}

// TrainingStatus is one member's training.
type TrainingStatus struct {
	UserID, Name string
	Role         haven.Role
	Modules      []ModuleStatus
	// CurrentUntil is when the member's training stops being current
	// (see policy.TrainingFacts); State sums the modules up.
	CurrentUntil time.Time
	State        string
	// Required and Grace are the practice's rule; Blocked is true when it
	// refuses this member PHI access now.
	Required bool
	Grace    time.Duration
	Blocked  bool
	// Lapsed is true once CurrentUntil has passed; GraceEnds is when a
	// lapsed member is refused PHI, when training is required.
	Lapsed    bool
	GraceEnds time.Time
}

// TrainingResult is the outcome of one quiz.
type TrainingResult struct {
	Module   haven.TrainingModule
	Score    int
	Total    int
	Passed   bool
	Wrong    []int // indexes of the questions answered wrongly
	Expires  time.Time
	Required bool
}

// trainingCurrentUntil is policy.TrainingFacts.CurrentUntil for a member.
func (s *Service) trainingCurrentUntil(ctx context.Context, practiceID, userID string, ps PracticeSettings) (time.Time, error) {
	created, latest, err := s.db.TrainingFacts(ctx, practiceID, userID)
	if err != nil {
		return time.Time{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load the security training of the decision")
	}
	return currentUntil(created, latest, ps), nil
}

// currentUntil is when training stops being current: the earliest module
// expiry, a never-passed module counting from when it became due (the
// later of the account's creation and the practice's requirement).
func currentUntil(created time.Time, latest map[string]time.Time, ps PracticeSettings) time.Time {
	since := created
	if ps.TrainingRequiredSince.After(since) {
		since = ps.TrainingRequiredSince
	}
	var until time.Time
	for i, m := range haven.TrainingModules {
		exp := since
		if t, ok := latest[m.ID]; ok {
			exp = t.Add(haven.TrainingValidity)
		}
		if i == 0 || exp.Before(until) {
			until = exp
		}
	}
	return until
}

// memberFacts returns, for facts loaded for one actor about a record,
// the facts to ask policy what another member of the practice could do
// with it (whom a message notifies, who may be given a thread): the same,
// with that member's own training when the practice requires it. A
// member whose training cannot be loaded counts as lapsed (fail closed).
func (s *Service) memberFacts(ctx context.Context, practiceID string, facts policy.Facts) func(userID string) policy.Facts {
	var ps *PracticeSettings
	return func(userID string) policy.Facts {
		f := facts
		if !f.Practice.TrainingRequired {
			return f
		}
		f.Training = policy.TrainingFacts{UserID: userID}
		if ps == nil {
			p, err := s.settings(ctx, practiceID)
			if err != nil {
				return f
			}
			ps = &p
		}
		if until, err := s.trainingCurrentUntil(ctx, practiceID, userID, *ps); err == nil {
			f.Training.CurrentUntil = until
		}
		return f
	}
}

// trainingResource is the signed-in member's own training: always their
// own practice's (the gate refuses a request without a session).
func (s *Service) trainingResource(ctx context.Context, id string) policy.Resource {
	a, _ := haven.ActorFromContext(ctx)
	return policy.Resource{Kind: policy.KindTraining, ID: id, PracticeID: a.PracticeID}
}

// MyTraining returns the signed-in member's own training.
func (s *Service) MyTraining(ctx context.Context) (*TrainingStatus, error) {
	a, _, err := s.authorize(ctx, policy.TrainingTake, s.trainingResource(ctx, "self"))
	if err != nil {
		return nil, err
	}
	ps, err := s.settings(ctx, a.PracticeID)
	if err != nil {
		return nil, err
	}
	u, err := s.db.FindUserByID(ctx, a.UserID)
	if err != nil || u.PracticeID != a.PracticeID {
		return nil, haven.Errorf(haven.ENOTFOUND, "not found")
	}
	done, err := s.db.LatestTraining(ctx, a.PracticeID, a.UserID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load training")
	}
	st := s.trainingStatus(u, done, ps)
	return &st, nil
}

// trainingStatus sums up u's completions done under the practice's rule.
func (s *Service) trainingStatus(u *haven.User, done []haven.TrainingCompletion, ps PracticeSettings) TrainingStatus {
	now := s.now()
	grace := time.Duration(ps.TrainingGrace)
	latest := map[string]time.Time{}
	for _, c := range done {
		if c.UserID == u.ID {
			latest[c.Module] = c.CompletedAt
		}
	}
	st := TrainingStatus{UserID: u.ID, Role: u.Role, Required: ps.TrainingRequired, Grace: grace}
	st.CurrentUntil = currentUntil(u.CreatedAt, latest, ps)
	state := func(exp time.Time) string {
		switch {
		case now.Before(exp.Add(-TrainingDueSoon)):
			return TrainingCurrent
		case now.Before(exp), ps.TrainingRequired && now.Before(exp.Add(grace)):
			return TrainingDue
		}
		return TrainingOverdue
	}
	for _, m := range haven.TrainingModules {
		ms := ModuleStatus{Module: m, State: TrainingNever}
		if t, ok := latest[m.ID]; ok {
			ms.Completed, ms.Expires = t, t.Add(haven.TrainingValidity)
			ms.State = state(ms.Expires)
		}
		st.Modules = append(st.Modules, ms)
	}
	st.State = state(st.CurrentUntil)
	st.Blocked = ps.TrainingRequired && !now.Before(st.CurrentUntil.Add(grace))
	st.Lapsed, st.GraceEnds = !now.Before(st.CurrentUntil), st.CurrentUntil.Add(grace)
	return st
}

// TakeTraining grades the signed-in member's answers to a module's quiz
// (one choice index per question) and records a pass.
func (s *Service) TakeTraining(ctx context.Context, moduleID string, answers []int) (*TrainingResult, error) {
	m, ok := haven.FindTrainingModule(moduleID)
	if !ok {
		return nil, haven.Errorf(haven.ENOTFOUND, "no such training module")
	}
	a, _, err := s.authorize(ctx, policy.TrainingTake, s.trainingResource(ctx, m.ID))
	if err != nil {
		return nil, err
	}
	if len(answers) != len(m.Questions) {
		return nil, haven.Errorf(haven.EINVALID, "answer every question of the quiz")
	}
	r := &TrainingResult{Module: m, Total: len(m.Questions), Score: m.Grade(answers)}
	for i, q := range m.Questions {
		if answers[i] != q.Answer {
			r.Wrong = append(r.Wrong, i)
		}
	}
	r.Passed = r.Score >= m.PassMark
	if !r.Passed {
		return r, nil
	}
	c := haven.TrainingCompletion{ID: haven.NewID(), PracticeID: a.PracticeID, UserID: a.UserID, Module: m.ID,
		Score: r.Score, Total: r.Total, CompletedAt: s.now().UTC()}
	if err := s.db.RecordTraining(ctx, c); err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot record the training")
	}
	r.Expires = c.Expires()
	return r, nil
}

// TrainingReport lists the practice's active workforce with their
// training, overdue first, then due, by name (administrator, compliance
// officer).
func (s *Service) TrainingReport(ctx context.Context) ([]TrainingStatus, error) {
	a, _, err := s.authorize(ctx, policy.TrainingReport, s.trainingResource(ctx, "report"))
	if err != nil {
		return nil, err
	}
	ps, err := s.settings(ctx, a.PracticeID)
	if err != nil {
		return nil, err
	}
	users, err := s.db.ListUsers(ctx, a.PracticeID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot list users")
	}
	done, err := s.db.LatestTraining(ctx, a.PracticeID, "")
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot load training")
	}
	var out []TrainingStatus
	for _, u := range users {
		if !u.Role.Workforce() || u.Disabled {
			continue
		}
		st := s.trainingStatus(u, done, ps)
		p, err := s.openUser(ctx, u)
		if err != nil {
			return nil, err
		}
		st.Name = p.Name
		out = append(out, st)
	}
	rank := map[string]int{TrainingOverdue: 0, TrainingDue: 1, TrainingCurrent: 2}
	slices.SortStableFunc(out, func(x, y TrainingStatus) int {
		if d := rank[x.State] - rank[y.State]; d != 0 {
			return d
		}
		return strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name))
	})
	return out, nil
}
