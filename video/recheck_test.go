package video_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/video"
	"haven/video/internal/peertest"
	"haven/video/sfu"
	"haven/video/signal"
	"haven/video/token"
)

// standing is what a test's Recheck answers, per participant: nil while
// they may stay, and the error to answer with once they may not.
type standing struct {
	mu     sync.Mutex
	answer map[string]error
	asked  map[string]int
}

func (s *standing) set(participant string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer[participant] = err
}

func (s *standing) times(participant string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[participant]
}

// withRecheck turns on rechecks every 50ms, answered from st by the user
// the upgrade request names (so the request reaches Recheck intact).
func withRecheck(st *standing) option {
	return func(c *video.Config) {
		c.RecheckEvery = 50 * time.Millisecond
		c.Recheck = func(ctx context.Context, r *http.Request, cl token.Claims) error {
			user := r.Header.Get("X-Test-User")
			if a, _ := haven.ActorFromContext(ctx); a.UserID != user || cl.ParticipantID != user {
				return haven.Errorf(haven.EFORBIDDEN, "recheck for the wrong person")
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			st.asked[user]++
			return st.answer[user]
		}
	}
}

// TestACallIsCutWhenItsParticipantMayNoLongerBeInIt: a seated patient
// whose session is revoked, challenged or can no longer be verified, or
// who lost their part in the visit, is told why, loses their seat (the
// clinician sees them leave, the room holds only the clinician) and their
// connection, and the cut is audited with its reason. The clinician's
// call goes on.
func TestACallIsCutWhenItsParticipantMayNoLongerBeInIt(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		code   string
		reason string
	}{
		{"Revoked", haven.Errorf(haven.EUNAUTHORIZED, "please sign in"), haven.EUNAUTHORIZED, video.CutSessionEnded},
		{"Challenged", haven.Errorf(haven.ESTEPUP, "confirm it is you"), haven.ESTEPUP, video.CutSessionChallenged},
		{"LostTheirPart", haven.Errorf(haven.EFORBIDDEN, "not invited"), haven.EFORBIDDEN, video.CutNoLongerAllowed},
		{"Unverifiable", errors.New("database is down"), haven.EUNAVAILABLE, video.CutUnverifiable},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &standing{answer: map[string]error{}, asked: map[string]int{}}
			s := start(t, withRecheck(st))
			doc := mustDial(t, s, "visit-1", "clinician-1").withMedia(t).listen()
			doc.join(t, mint(t, "visit-1", "clinician-1", token.Clinician))
			doc.next(t, signal.Joined)
			pat := mustDial(t, s, "visit-1", "patient-1").withMedia(t).listen()
			pat.join(t, mint(t, "visit-1", "patient-1", token.Patient))
			pat.next(t, signal.Joined)
			if !peertest.WaitFor(bound, func() bool { return doc.peer.Received("patient-1", sfu.KindVideo) > 10 }) {
				t.Fatal("no media from the patient before the cut")
			}
			if !peertest.WaitFor(bound, func() bool { return st.times("patient-1") > 0 }) {
				t.Fatal("the patient's standing is never checked")
			}

			st.set("patient-1", c.err)
			if m := pat.next(t, signal.Error); m.Code != c.code {
				t.Fatalf("told %+v, want code %s", m, c.code)
			}
			pat.waitClosed(t)
			if m := doc.next(t, signal.PeerLeft); m.Participant != "patient-1" {
				t.Fatalf("the clinician saw %+v", m)
			}
			if e := s.waitAudited(t, video.ActionCut, "patient-1"); e.Reason != c.reason || e.VisitID != "visit-1" || e.Role != token.Patient {
				t.Fatalf("cut audited as %+v, want reason %s", e, c.reason)
			}
			if peers := roomPeers(t, s, "visit-1"); !slices.Equal(peers, []string{"clinician-1"}) {
				t.Fatalf("seated after the cut: %v", peers)
			}
			if n := len(s.audited(video.ActionLeave, "patient-1")); n != 0 {
				t.Fatalf("the cut was also audited as %d ordinary leaves", n)
			}
			// The clinician stays, and is still checked.
			asked := st.times("clinician-1")
			if !peertest.WaitFor(bound, func() bool { return st.times("clinician-1") > asked+2 }) {
				t.Fatal("the clinician is no longer checked")
			}
			if peers := roomPeers(t, s, "visit-1"); !slices.Equal(peers, []string{"clinician-1"}) {
				t.Fatalf("the clinician lost their seat: %v", peers)
			}
		})
	}
}

// TestABriefSilenceDoesNotCutACall: a check that gets no answer (the
// database restarting) is retried; fewer than RecheckFailures in a row
// leave the call alone.
func TestABriefSilenceDoesNotCutACall(t *testing.T) {
	flaky := 0
	var mu sync.Mutex
	s := start(t, func(c *video.Config) {
		c.RecheckEvery = 20 * time.Millisecond
		c.Recheck = func(context.Context, *http.Request, token.Claims) error {
			mu.Lock()
			defer mu.Unlock()
			flaky++
			if flaky%video.RecheckFailures != 0 { // every third check answers
				return errors.New("no answer")
			}
			return nil
		}
	})
	pat := mustDial(t, s, "visit-1", "patient-1").listen()
	pat.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	pat.next(t, signal.Joined)
	if !peertest.WaitFor(bound, func() bool { mu.Lock(); defer mu.Unlock(); return flaky > 5*video.RecheckFailures }) {
		t.Fatal("not rechecked")
	}
	if peers := roomPeers(t, s, "visit-1"); !slices.Equal(peers, []string{"patient-1"}) {
		t.Fatalf("cut by a brief silence: %v", peers)
	}
	if n := len(s.audited(video.ActionCut, "patient-1")); n != 0 {
		t.Fatalf("%d cuts audited", n)
	}
}

// TestAVisitClosedElsewhereEndsTheCallForEveryone: when a check finds the
// visit no longer in call (ended on another node, which could not reach
// this node's room), everyone is told it ended and disconnected, the room
// takes no one again, and the cut is audited.
func TestAVisitClosedElsewhereEndsTheCallForEveryone(t *testing.T) {
	st := &standing{answer: map[string]error{}, asked: map[string]int{}}
	s := start(t, withRecheck(st))
	doc := mustDial(t, s, "visit-1", "clinician-1").listen()
	doc.join(t, mint(t, "visit-1", "clinician-1", token.Clinician))
	doc.next(t, signal.Joined)
	pat := mustDial(t, s, "visit-1", "patient-1").listen()
	pat.join(t, mint(t, "visit-1", "patient-1", token.Patient))
	pat.next(t, signal.Joined)

	st.set("patient-1", haven.Errorf(haven.ECONFLICT, "the visit is ended"))
	for _, b := range []*browser{pat, doc} {
		b.next(t, signal.Ended)
		b.waitClosed(t)
	}
	if e := s.waitAudited(t, video.ActionCut, "patient-1"); e.Reason != video.CutVisitClosed {
		t.Fatalf("cut audited as %+v", e)
	}
	if _, err := s.sfu.Room("visit-1"); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("the room still takes joins: %v", err)
	}
}
