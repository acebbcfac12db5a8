package sqlstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"haven"
	"haven/internal/testkit"
	"haven/store/sqlstore"
	"haven/video/token"
)

var _ token.Spent = (*sqlstore.SpentTokens)(nil)

// TestReplayedJoinTokenIsRefusedAfterARestart: the attacker who copied a
// join token from a proxy log waits for the server to restart, hoping the
// memory of spent tokens went with it. It did not: the id is in the
// database.
func TestReplayedJoinTokenIsRefusedAfterARestart(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := make([]byte, token.KeySize)
			key[0] = 7
			now := time.Now()
			tok, err := token.Mint(key, token.Claims{VisitID: "visit-1", ParticipantID: "patient-1", Role: token.Patient}, now)
			if err != nil {
				t.Fatal(err)
			}
			first := mustOpen(t, dsn)
			if _, err := token.Redeem(ctx, key, first.SpentTokens(), tok, "visit-1", "patient-1", now); err != nil {
				t.Fatalf("first redemption: %v", err)
			}
			first.Close()

			restarted := mustOpen(t, dsn)
			_, err = token.Redeem(ctx, key, restarted.SpentTokens(), tok, "visit-1", "patient-1", now)
			if token.Reason(err) != "reused" {
				t.Fatalf("replay after restart: %v", err)
			}
		})
	}
}

// TestOneJoinTokenIsSpentOnceAcrossNodes: two nodes sharing a database
// redeem the same token id at the same moment; exactly one wins.
func TestOneJoinTokenIsSpentOnceAcrossNodes(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			nodes := []*sqlstore.SpentTokens{mustOpen(t, dsn).SpentTokens(), mustOpen(t, dsn).SpentTokens()}
			exp := time.Now().Add(time.Minute)
			var turn atomic.Int32
			wins := race(t, 16, func() (bool, error) {
				node := nodes[turn.Add(1)%2]
				err := node.MarkSpent(ctx, "0123456789abcdef0123456789abcdef", exp)
				if haven.ErrorCode(err) == haven.ECONFLICT {
					return false, nil
				}
				return err == nil, err
			})
			if wins != 1 {
				t.Fatalf("%d redemptions of one token succeeded", wins)
			}
		})
	}
}

// TestSpentTokenIdsArePrunedOnceExpired: the table holds only ids whose
// tokens could still be presented, to a node whose clock runs a little
// behind included.
func TestSpentTokenIdsArePrunedOnceExpired(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		db.SetClock(func() time.Time { return now })
		spent := db.SpentTokens()
		if err := spent.MarkSpent(ctx, "a", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := spent.MarkSpent(ctx, "b", now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := spent.MarkSpent(ctx, "expired", now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if n, _ := spent.Len(ctx); n != 3 {
			t.Fatalf("%d ids held, want 3 (one whose token this clock thinks expired too)", n)
		}
		now = now.Add(sqlstore.PruneGrace + 5*time.Minute)
		// The next redemption prunes on its way (a minute has passed): the
		// ids expired more than PruneGrace ago go, b (expiring at +10m) stays.
		if err := spent.MarkSpent(ctx, "c", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, _ := spent.Len(ctx); n != 2 {
			t.Fatalf("%d ids held after pruning, want 2 (b and c)", n)
		}
		if err := spent.MarkSpent(ctx, "b", now.Add(time.Minute)); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("an unexpired id was pruned: %v", err)
		}
	})
}

func TestGuestInvitationIsRecordedPerVisitAndUser(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		u := newMember(t, db, haven.RoleClinician)
		doc := u.ID
		guest := &haven.User{ID: haven.NewID(), PracticeID: u.PracticeID, Role: haven.RoleStaff, EmailIndex: []byte(haven.NewID()),
			Email: haven.Sealed{1}, Name: haven.Sealed{2}, PasswordHash: "x"}
		if err := db.CreateUser(ctx, guest); err != nil {
			t.Fatal(err)
		}
		pat := &haven.User{ID: haven.NewID(), PracticeID: u.PracticeID, Role: haven.RolePatient, EmailIndex: []byte(haven.NewID()),
			Email: haven.Sealed{1}, Name: haven.Sealed{2}}
		if err := db.CreatePatient(ctx, pat, &haven.Patient{ID: pat.ID, PracticeID: u.PracticeID, MRNIndex: []byte(haven.NewID()),
			MRN: haven.Sealed{3}, Demographics: haven.Sealed{4}, Contact: haven.Sealed{5}}, nil); err != nil {
			t.Fatal(err)
		}
		start := time.Now().UTC().Truncate(time.Second)
		v := &haven.Visit{ID: haven.NewID(), PracticeID: u.PracticeID, PatientID: pat.ID, ClinicianID: doc, Start: start, End: start.Add(30 * time.Minute),
			State: haven.VisitAdmitted, Reason: haven.Sealed{6}, BookedBy: pat.ID}
		if err := db.CreateVisit(ctx, v); err != nil {
			t.Fatal(err)
		}
		if ok, err := db.IsGuest(ctx, v.ID, guest.ID); ok || err != nil {
			t.Fatalf("guest before invitation: %v %v", ok, err)
		}
		for range 2 {
			if err := db.InviteGuest(ctx, v.ID, guest.ID, doc); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := db.IsGuest(ctx, v.ID, guest.ID); !ok || err != nil {
			t.Fatalf("invited guest: %v %v", ok, err)
		}
		if ok, _ := db.IsGuest(ctx, v.ID, pat.ID); ok {
			t.Fatal("an uninvited user counts as a guest")
		}
	})
}
