package identity

import (
	"context"
	"time"

	"haven"
	"haven/policy"
)

// StepUpRequest is the proof a step-up gives.
type StepUpRequest struct {
	Password string     // required when the session was challenged or the user has no second factor
	Factor   FactorKind // required when the user has a second factor
	Proof    string
}

var errStepUpFailed = haven.Errorf(haven.EUNAUTHORIZED, "that did not match; try again")

// StepUp re-authenticates the session in ctx: a second factor if the user
// has one, the password if not, and both when the session was challenged
// because its address or device changed. On success the session's
// AuthTime is now (policy's step-up window opens again), its challenge is
// lifted, and it belongs to the client's current address and device.
func (id *Service) StepUp(ctx context.Context, req StepUpRequest, c Client) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	rec, err := id.db.SessionRecordByID(ctx, a.UserID, a.SessionID)
	if err != nil || !rec.RevokedAt.IsZero() {
		return errNoSession
	}
	u, err := id.db.FindUserByID(ctx, a.UserID)
	if err != nil || u.Disabled {
		return errNoSession
	}
	factors, err := id.enrolledFactors(ctx, u)
	if err != nil {
		return err
	}
	challenged := !rec.ChallengedAt.IsZero()
	needPassword := challenged || len(factors) == 0 || req.Password != ""
	needFactor := len(factors) > 0
	if needPassword && req.Password == "" {
		return haven.Errorf(haven.EINVALID, "enter your password")
	}
	if needFactor && (req.Proof == "" || !hasFactor(factors, req.Factor)) {
		return haven.Errorf(haven.EINVALID, "enter a code from your authenticator app or a recovery code")
	}
	att := id.attemptFor(ctx, u, c)
	ev := func(reason string, allow bool) error {
		e := userEvent(u, c, rec.ID, ActStepUp)
		e.ResourceKind, e.ResourceID = "session", rec.ID
		return id.record(ctx, e, allow, reason)
	}
	if wait, err := id.throttle.Allow(ctx, att); err != nil {
		if haven.ErrorCode(err) != haven.ETOOMANY {
			return err
		}
		if rerr := ev("throttled", false); rerr != nil {
			return rerr
		}
		return throttled(err, wait)
	}
	fail := func(reason string) error {
		if err := id.failure(ctx, att, func(r string) error { return ev(r, false) }, reason); err != nil {
			return err
		}
		return errStepUpFailed
	}
	if needPassword {
		ok, _, err := id.passwords.Verify(ctx, req.Password, u.PasswordHash)
		if err != nil {
			return err
		}
		if !ok {
			return fail("bad_password")
		}
	}
	factor := rec.Factor
	if needFactor {
		err := id.factor(req.Factor).Verify(ctx, u, FactorChallenge{ID: rec.ID, StepUp: true}, req.Proof)
		if code := haven.ErrorCode(err); code == haven.EUNAUTHORIZED || code == haven.EINVALID {
			return fail("bad_" + string(req.Factor))
		} else if err != nil {
			return err
		}
		factor = string(req.Factor)
	}
	reason := "fresh_auth"
	if challenged {
		reason = "challenge_passed"
	}
	if err := ev(reason, true); err != nil {
		return err
	}
	if err := id.db.Reauthenticate(ctx, rec.ID, id.now(), needFactor || rec.MFA, factor, c.Addr, c.deviceHash()); err != nil {
		return errNoSession
	}
	return id.throttle.Success(ctx, att)
}

// RequireFreshAuth is for services whose sensitive acts are not decided by
// policy.Decide: it returns ESTEPUP unless the actor in ctx authenticated
// within the practice's step-up window, with a second factor when the
// user has one.
func (id *Service) RequireFreshAuth(ctx context.Context) error {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return err
	}
	now := id.now()
	age := now.Sub(a.AuthTime)
	if a.AuthTime.IsZero() || age < -time.Minute || age > id.stepUpMaxAge(ctx, a.PracticeID) {
		return haven.Errorf(haven.ESTEPUP, "this action needs a fresh authentication")
	}
	if !a.MFA {
		u, err := id.db.FindUserByID(ctx, a.UserID)
		if err != nil {
			return err
		}
		fs, err := id.enrolledFactors(ctx, u)
		if err != nil {
			return err
		}
		if len(fs) > 0 {
			return haven.Errorf(haven.ESTEPUP, "this action needs a fresh authentication with your second factor")
		}
	}
	return nil
}

// stepUpMaxAge is how old an authentication may be for a sensitive act.
func (id *Service) stepUpMaxAge(ctx context.Context, practiceID string) time.Duration {
	d := policy.DefaultStepUpMaxAge
	if c, err := id.practicePolicy(ctx, practiceID); err == nil && c.stepUp > 0 && c.stepUp < d {
		d = c.stepUp
	}
	return d
}
