package sfu_test

import (
	"strings"
	"testing"
	"time"

	"haven"
	"haven/video/sfu"
	"haven/video/signal"
	"haven/video/token"
)

const (
	patientKey   = "BPatient" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	clinicianKey = "BClinician" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	sealedKey    = "c2VhbGVkLWZvci1vbmUtcmVjaXBpZW50LW9ubHktdGhlLXNlcnZlci1jYW5ub3Qtb3Blbi1pdA"
)

// peerKey waits for a state or peer message showing who's public key.
func peerKey(t testing.TB, s *seat, who string) string {
	t.Helper()
	deadline := time.After(bound)
	for {
		select {
		case m := <-s.c.Events():
			if (m.Type == signal.State || m.Type == signal.PeerJoined) && m.Peer != nil && m.Peer.Participant == who && m.Peer.Key != "" {
				return m.Peer.Key
			}
		case <-deadline:
			t.Fatalf("%s never saw %s's public key", s.id, who)
		}
	}
}

// TestPublicKeysAreShownAndSealedKeysReachOnlyTheirRecipient: the server's
// part in end-to-end encryption is a relay. A public key a participant
// announces is shown to the others (and to whoever joins later); a sealed
// media key goes to the one participant it names, and nowhere else, with
// the sender named by the server, not by the sender; a connection cannot
// swap its key mid-call.
func TestPublicKeysAreShownAndSealedKeysReachOnlyTheirRecipient(t *testing.T) {
	s := newSFU(t, sfu.Config{})
	r := room(t, s, "visit-1")
	doc := mustJoin(t, r, "clinician-1", token.Clinician)
	pat := mustJoin(t, r, "patient-1", token.Patient)
	pk := patientKey[:signal.PublicKeySize]
	ck := clinicianKey[:signal.PublicKeySize]

	if err := pat.p.Handle(signal.Message{Type: signal.PublicKey, Key: pk}); err != nil {
		t.Fatal(err)
	}
	if got := peerKey(t, doc, "patient-1"); got != pk {
		t.Fatalf("the clinician sees the patient's key as %q", got)
	}
	if err := doc.p.Handle(signal.Message{Type: signal.PublicKey, Key: ck}); err != nil {
		t.Fatal(err)
	}
	if got := peerKey(t, pat, "clinician-1"); got != ck {
		t.Fatalf("the patient sees the clinician's key as %q", got)
	}
	// Announcing the same key again is harmless; another is refused.
	if err := pat.p.Handle(signal.Message{Type: signal.PublicKey, Key: pk}); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	other := "B" + strings.Repeat("x", signal.PublicKeySize-1)
	if err := pat.p.Handle(signal.Message{Type: signal.PublicKey, Key: other}); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("a second key for the same connection: %v", err)
	}

	// A guest joining later finds both keys in the joined message.
	if err := doc.p.Handle(signal.Message{Type: signal.Invite, Participant: "interpreter-1"}); err != nil {
		t.Fatal(err)
	}
	guest := mustJoin(t, r, "interpreter-1", token.Guest)
	keys := map[string]string{}
	for _, p := range event(t, guest, signal.Joined).Peers {
		keys[p.Participant] = p.Key
	}
	if keys["patient-1"] != pk || keys["clinician-1"] != ck {
		t.Fatalf("the guest joined to keys %v", keys)
	}

	// The clinician seals a key for the patient: the patient gets it,
	// named as the clinician's; the guest gets nothing.
	if err := doc.p.Handle(signal.Message{Type: signal.WrapKey, Participant: "patient-1", Key: sealedKey}); err != nil {
		t.Fatal(err)
	}
	m := event(t, pat, signal.WrapKey)
	if m.Participant != "clinician-1" || m.Key != sealedKey {
		t.Fatalf("the patient got %+v", m)
	}
	// The guest seals one for the patient: it arrives named as the
	// guest's, whatever the guest might wish.
	if err := guest.p.Handle(signal.Message{Type: signal.WrapKey, Participant: "patient-1", Key: sealedKey + "g"}); err != nil {
		t.Fatal(err)
	}
	if m := event(t, pat, signal.WrapKey); m.Participant != "interpreter-1" {
		t.Fatalf("a guest's key arrived as %q's", m.Participant)
	}
	select {
	case m := <-drain(guest, signal.WrapKey):
		t.Fatalf("the guest received a key sealed for the patient: %+v", m)
	case <-time.After(300 * time.Millisecond):
	}
	if err := pat.p.Handle(signal.Message{Type: signal.WrapKey, Participant: "patient-1", Key: sealedKey}); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("a key sealed for oneself: %v", err)
	}
	// A key for someone who is not in the call goes nowhere, quietly.
	if err := pat.p.Handle(signal.Message{Type: signal.WrapKey, Participant: "nobody-9", Key: sealedKey}); err != nil {
		t.Fatalf("a key for someone absent: %v", err)
	}
}

// drain returns a channel that receives s's next message of type typ.
func drain(s *seat, typ signal.Type) <-chan signal.Message {
	out := make(chan signal.Message, 1)
	go func() {
		deadline := time.After(time.Second)
		for {
			select {
			case m := <-s.c.Events():
				if m.Type == typ {
					out <- m
					return
				}
			case <-deadline:
				return
			}
		}
	}()
	return out
}
