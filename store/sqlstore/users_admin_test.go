package sqlstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/store/sqlstore"
)

// addUser stores one more user of role in practice.
func addUser(t *testing.T, db *sqlstore.DB, practice string, role haven.Role) string {
	t.Helper()
	u := &haven.User{ID: haven.NewID(), PracticeID: practice, Role: role, EmailIndex: []byte(haven.NewID()),
		Email: haven.Sealed{1}, Name: haven.Sealed{2}, PasswordHash: "$argon2id$x"}
	if err := db.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func practiceOf(t *testing.T, db *sqlstore.DB, userID string) string {
	t.Helper()
	u, err := db.FindUserByID(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return u.PracticeID
}

func activeAdmins(t *testing.T, db *sqlstore.DB, practice string) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM users WHERE practice_id = $1 AND role = 'practice_admin' AND disabled = $2`,
		practice, false).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTwoAdminsDisablingEachOtherLeaveOneActive: the last active
// administrator of a practice cannot be disabled, and when two
// administrators disable each other at the same moment, again and again,
// one of them always remains.
func TestTwoAdminsDisablingEachOtherLeaveOneActive(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		a := newUser(t, db, haven.RolePracticeAdmin)
		p := practiceOf(t, db, a)
		b := addUser(t, db, p, haven.RolePracticeAdmin)
		clinician := addUser(t, db, p, haven.RoleClinician)

		if err := db.SetUserDisabledKeepingAdmin(ctx, b, true); err != nil {
			t.Fatal(err)
		}
		if err := db.SetUserDisabledKeepingAdmin(ctx, a, true); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("disabling the last active admin: %v", err)
		}
		if activeAdmins(t, db, p) != 1 {
			t.Fatal("the last admin was disabled")
		}
		// Anyone else may still be disabled and re-enabled.
		for _, disabled := range []bool{true, false} {
			if err := db.SetUserDisabledKeepingAdmin(ctx, clinician, disabled); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.SetUserDisabledKeepingAdmin(ctx, b, false); err != nil {
			t.Fatal(err)
		}
		for round := range 20 {
			targets := []string{a, b}
			var next atomic.Int32
			wins := race(t, 2, func() (bool, error) {
				err := db.SetUserDisabledKeepingAdmin(ctx, targets[next.Add(1)-1], true)
				if haven.ErrorCode(err) == haven.ECONFLICT {
					return false, nil
				}
				return err == nil, err
			})
			if wins != 1 || activeAdmins(t, db, p) != 1 {
				t.Fatalf("round %d: %d disables went through, %d admins active", round, wins, activeAdmins(t, db, p))
			}
			for _, id := range targets {
				if err := db.SetUserDisabledKeepingAdmin(ctx, id, false); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := db.SetUserDisabledKeepingAdmin(ctx, haven.NewID(), true); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("unknown user: %v", err)
		}
	})
}

// TestPracticeAccountsCarryFactorsAndLastSignIn: the account list counts
// active factors only and finds the latest allowed sign-in in the
// account's own practice log, ignoring refusals and other actions.
func TestPracticeAccountsCarryFactorsAndLastSignIn(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		a := newUser(t, db, haven.RoleClinician)
		p := practiceOf(t, db, a)
		b := addUser(t, db, p, haven.RoleStaff)
		other := newUser(t, db, haven.RoleStaff)

		if err := db.SetPendingTOTP(ctx, b, haven.Sealed{9}, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ConfirmTOTP(ctx, b, t0, 1, t0); err != nil {
			t.Fatal(err)
		}
		if err := db.SetPendingTOTP(ctx, a, haven.Sealed{9}, t0); err != nil { // pending only: not enrolled
			t.Fatal(err)
		}
		if err := db.ReplaceRecoveryCodes(ctx, b, [][]byte{{1}, {2}}); err != nil {
			t.Fatal(err)
		}
		log := audit.NewLog(db, audit.Options{})
		defer log.Close()
		ev := func(actor, action, decision string, at int) audit.Event {
			return audit.Event{LogID: p, Time: t0.Add(time.Duration(at) * time.Minute), ActorID: actor, ActorRole: "staff", Action: action,
				ResourceKind: "user", ResourceID: actor, Decision: decision, Purpose: audit.PurposeSecurity}
		}
		if _, err := log.Append(ctx, ev(b, "auth.login", haven.DecisionAllow, 1), ev(b, "auth.login", haven.DecisionDeny, 2),
			ev(b, "auth.stepup", haven.DecisionAllow, 3)); err != nil {
			t.Fatal(err)
		}

		rows, err := db.PracticeAccounts(ctx, p, "auth.login")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0].User.ID != a || rows[1].User.ID != b {
			t.Fatalf("accounts of the practice: %+v", rows)
		}
		if rows[0].TOTP || rows[0].RecoveryCodes != 0 || !rows[0].LastSignIn.IsZero() {
			t.Fatalf("an account with a pending authenticator and no sign-in: %+v", rows[0])
		}
		if !rows[1].TOTP || rows[1].RecoveryCodes != 2 || !rows[1].LastSignIn.Equal(t0.Add(time.Minute)) {
			t.Fatalf("an enrolled account that signed in once: %+v", rows[1])
		}
		one, err := db.Account(ctx, b, "auth.login")
		if err != nil || !one.TOTP || !one.LastSignIn.Equal(rows[1].LastSignIn) {
			t.Fatalf("one account: %+v, %v", one, err)
		}
		if one, err := db.Account(ctx, other, "auth.login"); err != nil || one.User.PracticeID == p {
			t.Fatalf("another practice's account: %+v, %v", one, err)
		}
		if _, err := db.Account(ctx, haven.NewID(), "auth.login"); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("unknown account: %v", err)
		}
	})
}
