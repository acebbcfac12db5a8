package session

import (
	"context"
	"time"

	"haven"
)

// Store keeps sessions. The storage adapter implements it over a table
// keyed by ID with a unique index on TokenHash.
type Store interface {
	CreateSession(ctx context.Context, s Session) error
	// SessionByTokenHash returns the session with that token hash, revoked
	// or not, or haven.ENOTFOUND.
	SessionByTokenHash(ctx context.Context, hash []byte) (Session, error)
	// TouchSession sets LastSeen, never moving it backwards.
	TouchSession(ctx context.Context, id string, at time.Time) error
	// RecordAuth sets AuthTime and MFA after a step-up.
	RecordAuth(ctx context.Context, id string, at time.Time, mfa bool) error
	// RevokeSession revokes one of userID's sessions; haven.ENOTFOUND if
	// the id is not userID's, so nobody ends another user's session by id.
	RevokeSession(ctx context.Context, userID, id string, at time.Time) error
	// RevokeUserSessions revokes every live session of userID (on a password
	// or MFA change, or when the account is disabled) and says how many.
	RevokeUserSessions(ctx context.Context, userID string, at time.Time) (int, error)
	// UserSessions lists userID's live (unrevoked) sessions, newest first,
	// for the "where you are signed in" page.
	UserSessions(ctx context.Context, userID string) ([]Session, error)
}

// TouchEvery is how stale LastSeen may get under p before Resume writes it
// again: a minute, so an active user costs at most one write a minute
// rather than one per request, or a quarter of p's idle timeout where that
// is shorter (a practice may set one as short as a minute). Skipping a
// write only makes a session end sooner, never later, and by no more than
// this.
func TouchEvery(p Policy) time.Duration {
	if p.Idle > 0 && p.Idle/4 < time.Minute {
		return p.Idle / 4
	}
	return time.Minute
}

// Resume finds the session for a token presented at now, checks it under
// the policy that policyFor returns for it (the role's default within the
// practice's), records the activity, and returns it. Every failure is the
// same haven.EUNAUTHORIZED "please sign in" or "session has ended", so a
// guessed token learns nothing.
func Resume(ctx context.Context, st Store, token string, policyFor func(Session) Policy, now time.Time) (Session, error) {
	hash, err := HashToken(token)
	if err != nil {
		return Session{}, err
	}
	s, err := st.SessionByTokenHash(ctx, hash)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return Session{}, errNoSession
	}
	if err != nil {
		return Session{}, err
	}
	pol := policyFor(s)
	if err := Check(s, pol, now); err != nil {
		return Session{}, err
	}
	if now.Sub(s.LastSeen) >= TouchEvery(pol) {
		if err := st.TouchSession(ctx, s.ID, now.UTC()); err != nil {
			return Session{}, err
		}
		s.LastSeen = now.UTC()
	}
	return s, nil
}
