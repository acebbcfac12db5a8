package identity

import (
	"context"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/session"
	"haven/service"
	"haven/store/sqlstore"
)

// NewSession is a session just started: the token goes into the browser's
// cookie (or an API client's Authorization header) and nowhere else.
type NewSession struct {
	Token   string
	Actor   haven.Actor
	Expires time.Time     // the absolute end; the cookie should not outlive it
	MaxAge  time.Duration // how long from now that is, for the cookie
}

// Current is the session a request presented, checked afresh.
type Current struct {
	// Actor is who the request acts as. For a challenged session it has
	// neither MFA nor an AuthTime, so policy refuses anything that needs
	// them even if a caller forgot to check Challenged.
	Actor haven.Actor
	// Challenged is true when the session's address or device changed: it
	// may serve nothing but re-authentication and sign-out until then.
	Challenged bool
	Factor     string    // the second factor last passed, "" for none
	Expires    time.Time // when the session ends without further requests
	WarnAt     time.Time // when the page warns and clears itself
	Idle       time.Duration
	At         time.Time // when it was checked, by the service's clock
	// Settings is the practice's settings document as the session's own
	// statement read it ("" for none), for the request's decisions
	// (service.WithSessionSettings).
	Settings string
	// Patient is, for a patient's session checked by ResumeReading, what
	// a decision on the record the request reads needs, read in the
	// session's own statement (service.WithSessionPatient); nil otherwise.
	Patient *sqlstore.PatientFacts
}

// deviceLabel is a coarse, human description of a User-Agent for the
// sessions page ("Firefox on Linux"): enough to tell one's own devices
// apart, too little to fingerprint anyone.
func deviceLabel(ua string) string {
	browser := ""
	switch {
	case ua == "":
		return "Unknown device"
	case strings.Contains(ua, "Edg/"):
		browser = "Edge"
	case strings.Contains(ua, "Firefox/"):
		browser = "Firefox"
	case strings.Contains(ua, "Chrome/") || strings.Contains(ua, "Chromium/"):
		browser = "Chrome"
	case strings.Contains(ua, "Safari/"):
		browser = "Safari"
	default:
		return "App or API client"
	}
	os := "another system"
	switch {
	case strings.Contains(ua, "Android"):
		os = "Android"
	case strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPad"):
		os = "iOS"
	case strings.Contains(ua, "Windows"):
		os = "Windows"
	case strings.Contains(ua, "Mac OS X"):
		os = "macOS"
	case strings.Contains(ua, "CrOS"):
		os = "ChromeOS"
	case strings.Contains(ua, "Linux"):
		os = "Linux"
	}
	return browser + " on " + os
}

// startSession begins a session for u on client c. mfa says whether a
// second factor was passed, factor which.
func (id *Service) startSession(ctx context.Context, u *haven.User, mfa bool, factor string, c Client) (*NewSession, error) {
	now := id.now()
	pol, err := id.SessionPolicy(ctx, u.PracticeID, u.Role)
	if err != nil {
		return nil, err
	}
	if pol.RequireMFA && !mfa {
		// Never issue a session that Resume would refuse: a workforce
		// session without a second factor does not exist.
		return nil, haven.Errorf(haven.EUNAUTHORIZED, "a second factor is required")
	}
	token, s := session.New(u.ID, u.PracticeID, u.Role, mfa, c.Addr, c.deviceHash(), now)
	rec := sqlstore.SessionRecord{Session: s, Factor: factor, DeviceLabel: deviceLabel(c.UserAgent)}
	if err := id.db.CreateSessionRecord(ctx, rec); err != nil {
		return nil, err
	}
	return &NewSession{Token: token, Expires: s.CreatedAt.Add(pol.Absolute), MaxAge: pol.Absolute, Actor: haven.Actor{
		UserID: u.ID, PracticeID: u.PracticeID, Role: u.Role, SessionID: s.ID, MFA: mfa, AuthTime: now,
		ClientAddr: c.Addr, RequestID: c.RequestID}}, nil
}

var errNoSession = haven.Errorf(haven.EUNAUTHORIZED, "please sign in")

// Resume checks the session whose token a request presented, on every
// request: it must exist, be unrevoked, within its idle and absolute
// timeouts under its role's and practice's policy, and (for the workforce)
// have passed a second factor. A request from another network or device
// challenges the session (recorded in the audit log). Activity moves the
// idle deadline. Every refusal is EUNAUTHORIZED.
func (id *Service) Resume(ctx context.Context, token string, c Client) (*Current, error) {
	return id.resume(ctx, token, c, true, "")
}

// ResumeReading is Resume for a request that reads the record of patient
// patientID (a chart read): for a patient's session the session's
// statement also reads what her access decision on that record needs
// (Current.Patient), so the decision sends no statement of its own.
func (id *Service) ResumeReading(ctx context.Context, token string, c Client, patientID string) (*Current, error) {
	return id.resume(ctx, token, c, true, patientID)
}

// Peek is Resume without recording activity, for the page's own check of
// how long its session has left: a timer asking must not keep a session
// alive that its user has walked away from.
func (id *Service) Peek(ctx context.Context, token string, c Client) (*Current, error) {
	return id.resume(ctx, token, c, false, "")
}

func (id *Service) resume(ctx context.Context, token string, c Client, touch bool, patientID string) (*Current, error) {
	hash, err := session.HashToken(token)
	if err != nil {
		return nil, errNoSession
	}
	var rec sqlstore.SessionRecord
	var patient *sqlstore.PatientFacts
	if patientID != "" {
		rec, patient, err = id.db.SessionRecordAndPatient(ctx, hash, patientID)
	} else {
		rec, err = id.db.SessionRecordByTokenHash(ctx, hash)
	}
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return nil, errNoSession
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot check the session")
	}
	ps, err := service.ParseSettings(rec.PracticeSettings)
	if err != nil {
		return nil, err
	}
	pol, err := id.sessionPolicy(ctx, rec.PracticeID, rec.Role, rulesOf(ps))
	if err != nil {
		return nil, err
	}
	now := id.now()
	if err := session.Check(rec.Session, pol, now); err != nil {
		return nil, err
	}
	cur := &Current{Factor: rec.Factor, Idle: pol.Idle, At: now, Settings: rec.PracticeSettings, Patient: patient, Actor: haven.Actor{
		UserID: rec.UserID, PracticeID: rec.PracticeID, Role: rec.Role, SessionID: rec.ID,
		MFA: rec.MFA, AuthTime: rec.AuthTime, ClientAddr: c.Addr, RequestID: c.RequestID}}
	if rec.ChallengedAt.IsZero() && session.DeviceChanged(rec.Session, c.Addr, c.deviceHash()) {
		reason := "device_changed"
		if rec.DeviceHash == c.deviceHash() {
			reason = "network_changed"
		}
		ev := audit.ForActor(cur.Actor, ActChallenge)
		ev.ResourceKind, ev.ResourceID = "session", rec.ID
		if err := id.record(ctx, ev, false, reason); err != nil {
			return nil, err
		}
		if err := id.db.ChallengeSession(ctx, rec.ID, now); err != nil {
			return nil, err
		}
		rec.ChallengedAt = now
	}
	if !rec.ChallengedAt.IsZero() {
		cur.Challenged = true
		cur.Actor.MFA, cur.Actor.AuthTime = false, time.Time{}
	}
	if touch && now.Sub(rec.LastSeen) >= session.TouchEvery(pol) {
		if err := id.db.TouchSession(ctx, rec.ID, now); err != nil {
			return nil, err
		}
		rec.LastSeen = now
	}
	cur.Expires = session.Expires(rec.Session, pol)
	cur.WarnAt = session.WarnAt(rec.Session, pol)
	return cur, nil
}

// KeepAlive records activity on the session in ctx now (the "stay signed
// in" button): the idle deadline moves to a full idle period from now.
func (id *Service) KeepAlive(ctx context.Context) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	return id.db.TouchSession(ctx, a.SessionID, id.now())
}

// Logout ends the session in ctx.
func (id *Service) Logout(ctx context.Context) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	if err := id.db.RevokeSession(ctx, a.UserID, a.SessionID, id.now()); err != nil && haven.ErrorCode(err) != haven.ENOTFOUND {
		return err
	}
	ev := audit.ForActor(a, ActLogout)
	ev.ResourceKind, ev.ResourceID = "session", a.SessionID
	return id.record(ctx, ev, true, "")
}

// SessionView is one of the user's sessions, for the sessions page.
type SessionView struct {
	ID         string
	Current    bool
	Device     string
	ClientAddr string
	Factor     string
	CreatedAt  time.Time
	LastSeen   time.Time
	Expires    time.Time
	Challenged bool
}

// Sessions lists the signed-in user's live sessions, newest first.
func (id *Service) Sessions(ctx context.Context) ([]SessionView, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := id.db.UserSessionRecords(ctx, a.UserID)
	if err != nil {
		return nil, err
	}
	pol, err := id.SessionPolicy(ctx, a.PracticeID, a.Role)
	if err != nil {
		return nil, err
	}
	now := id.now()
	var out []SessionView
	for _, r := range recs {
		if session.Check(r.Session, pol, now) != nil {
			continue
		}
		out = append(out, SessionView{ID: r.ID, Current: r.ID == a.SessionID, Device: r.DeviceLabel, ClientAddr: r.ClientAddr,
			Factor: r.Factor, CreatedAt: r.CreatedAt, LastSeen: r.LastSeen, Expires: session.Expires(r.Session, pol),
			Challenged: !r.ChallengedAt.IsZero()})
	}
	return out, nil
}

// RevokeSession ends one of the signed-in user's own sessions; another
// user's session id is ENOTFOUND.
func (id *Service) RevokeSession(ctx context.Context, sessionID string) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	ev := audit.ForActor(a, ActSessionRevoke)
	ev.ResourceKind, ev.ResourceID = "session", sessionID
	if !haven.PlausibleID(sessionID) {
		return haven.Errorf(haven.ENOTFOUND, "no such session")
	}
	if err := id.db.RevokeSession(ctx, a.UserID, sessionID, id.now()); err != nil {
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			id.record(ctx, ev, false, "not_own_session")
		}
		return err
	}
	return id.record(ctx, ev, true, "")
}

// RevokeOtherSessions ends every session of the signed-in user but this one.
func (id *Service) RevokeOtherSessions(ctx context.Context) (int, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return 0, err
	}
	recs, err := id.db.UserSessionRecords(ctx, a.UserID)
	if err != nil {
		return 0, err
	}
	ev := audit.ForActor(a, ActSessionRevoke)
	ev.ResourceKind = "session"
	if err := id.record(ctx, ev, true, "all_others"); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		if r.ID == a.SessionID {
			continue
		}
		if err := id.db.RevokeSession(ctx, a.UserID, r.ID, id.now()); err == nil {
			n++
		}
	}
	return n, nil
}

// endEverything revokes every session of userID and ends every pending
// sign-in, outstanding link and app's token (SMART), after a password
// change or reset, an MFA change, or a disable: whoever held the old
// credential is out, and so is an app authorized with it.
func (id *Service) endEverything(ctx context.Context, userID string) error {
	now := id.now()
	if _, err := id.db.RevokeUserSessions(ctx, userID, now); err != nil {
		return err
	}
	if _, err := id.db.EndUserTokens(ctx, userID, "", now); err != nil {
		return err
	}
	_, err := id.db.EndUserSMARTGrants(ctx, userID)
	return err
}

// rotate ends every session of the actor's user, the current one too, and
// starts a fresh one on client c with the given factor state: after a
// change of password or factors the browser that made the change stays
// signed in, with a new token, while every old token dies.
func (id *Service) rotate(ctx context.Context, a haven.Actor, u *haven.User, mfa bool, factor string, c Client) (*NewSession, error) {
	if err := id.endEverything(ctx, a.UserID); err != nil {
		return nil, err
	}
	return id.startSession(ctx, u, mfa, factor, c)
}

// Purge deletes what identity no longer needs: sessions that ended (every
// session ends within a day of starting), tokens that expired, and
// throttle counts the throttle has forgotten. Sign-ins and their outcomes
// stay in the audit log. Call it now and then (hourly is plenty).
func (id *Service) Purge(ctx context.Context) error {
	cutoff := id.now().Add(-48 * time.Hour)
	if _, err := id.db.PurgeSessions(ctx, cutoff); err != nil {
		return err
	}
	if _, err := id.db.PurgeAuthTokens(ctx, cutoff); err != nil {
		return err
	}
	_, err := id.db.PurgeThrottle(ctx, cutoff)
	return err
}

// WhoAmI describes the signed-in user without opening anything sealed.
type WhoAmI struct {
	UserID, PracticeID, PracticeName, SessionID string
	Role                                        haven.Role
	MFA                                         bool
	AuthTime                                    time.Time
	Factors                                     []FactorKind
}

// Who returns what the session in ctx is.
func (id *Service) Who(ctx context.Context) (*WhoAmI, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	w := &WhoAmI{UserID: a.UserID, PracticeID: a.PracticeID, SessionID: a.SessionID, Role: a.Role, MFA: a.MFA, AuthTime: a.AuthTime}
	if a.PracticeID != "" {
		if p, err := id.db.FindPracticeByID(ctx, a.PracticeID); err == nil {
			w.PracticeName = p.Name
		}
	}
	u, err := id.db.FindUserByID(ctx, a.UserID)
	if err != nil {
		return nil, err
	}
	if w.Factors, err = id.enrolledFactors(ctx, u); err != nil {
		return nil, err
	}
	return w, nil
}

// practiceRules are the practice settings sessions and step-up read.
type practiceRules struct {
	patientsMFA bool
	stepUp      time.Duration
	workforce   session.Policy // the practice's own timeouts (zero: none)
	patients    session.Policy
}

func rulesOf(ps service.PracticeSettings) practiceRules {
	return practiceRules{patientsMFA: ps.PatientsRequireMFA, stepUp: time.Duration(ps.StepUpMaxAge),
		workforce: session.Policy{Idle: time.Duration(ps.WorkforceIdle), Absolute: time.Duration(ps.WorkforceAbsolute)},
		patients:  session.Policy{Idle: time.Duration(ps.PatientIdle), Absolute: time.Duration(ps.PatientAbsolute)}}
}

// practicePolicy reads the practice's rules. They are not cached: a
// practice that shortens its timeouts or requires MFA of its patients
// does so on every node from the next request on. The session check, which
// every request pays, reads them in the same statement as the session
// (see resume).
func (id *Service) practicePolicy(ctx context.Context, practiceID string) (practiceRules, error) {
	ps, err := id.gate.PracticeSettings(ctx, practiceID)
	if err != nil {
		return practiceRules{}, err
	}
	return rulesOf(ps), nil
}

// SessionPolicy returns the session policy for role in a practice: the
// role's default, shortened or made to require MFA by the practice.
func (id *Service) SessionPolicy(ctx context.Context, practiceID string, role haven.Role) (session.Policy, error) {
	c, err := id.practicePolicy(ctx, practiceID)
	if err != nil {
		return session.DefaultPolicy(role), err
	}
	return id.sessionPolicy(ctx, practiceID, role, c)
}

// sessionPolicy is SessionPolicy under rules c already read.
func (id *Service) sessionPolicy(ctx context.Context, practiceID string, role haven.Role, c practiceRules) (session.Policy, error) {
	p := session.DefaultPolicy(role)
	if role == haven.RolePatient {
		p = p.Within(c.patients)
		if c.patientsMFA {
			p = p.Within(session.Policy{RequireMFA: true})
		}
	} else {
		p = p.Within(c.workforce)
	}
	if id.policyFn != nil {
		q, err := id.policyFn(ctx, practiceID, role)
		if err != nil {
			return p, err
		}
		p = p.Within(q)
	}
	return p, nil
}
