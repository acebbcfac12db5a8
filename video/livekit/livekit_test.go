package livekit_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"

	"haven"
	"haven/video/livekit"
	"haven/video/livekit/livekittest"
	"haven/video/token"
)

const (
	visitA    = "0123456789abcdef0123456789abcdef"
	visitB    = "fedcba9876543210fedcba9876543210"
	patient   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	clinician = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

type fixture struct {
	srv   *livekittest.Server
	eng   *livekit.Engine
	allow atomic.Value // error or nil
}

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{srv: livekittest.Start(t)}
	eng, err := livekit.New(livekit.Config{URL: f.srv.URL, APIKey: f.srv.APIKey, APISecret: f.srv.APISecret,
		Allow: func(context.Context) error {
			if err, _ := f.allow.Load().(error); err != nil {
				return err
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.eng = eng
	return f
}

func (f *fixture) roomNames(t *testing.T) []string { return f.srv.Rooms(t) }

func (f *fixture) participants(t *testing.T, visit string) []string {
	return f.srv.Participants(t, f.eng.Room(visit))
}

func claims(visit, user string, role token.Role) token.Claims {
	return token.Claims{VisitID: visit, ParticipantID: user, Role: role}
}

// connect joins the room on LiveKit's signaling channel, as a browser
// does first, and returns a channel closed when the server sends it away.
func connect(t *testing.T, f *fixture, g livekit.Grant) (*livekittest.Participant, chan struct{}) {
	t.Helper()
	p, err := f.srv.Join(t, g.Token)
	if err != nil {
		t.Fatalf("joining with Haven's token: %v\n%s", err, f.srv.Log())
	}
	if p.Joined.GetRoom().GetName() != g.Room || p.Joined.GetParticipant().GetIdentity() != g.Identity {
		t.Fatalf("joined %q as %q, want %q as %q", p.Joined.GetRoom().GetName(), p.Joined.GetParticipant().GetIdentity(), g.Room, g.Identity)
	}
	return p, p.Gone
}

func wait(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("never saw: %s", what)
	}
}

// Only Haven creates rooms (the server's auto-creation is off): the room
// exists once the visit is admitted, under a name that says nothing of
// the visit.
func TestLiveKitRoomIsCreatedAtAdmission(t *testing.T) {
	f := setup(t)
	if n := f.roomNames(t); len(n) != 0 {
		t.Fatalf("rooms before admission: %v", n)
	}
	if err := f.eng.CreateRoom(context.Background(), visitA); err != nil {
		t.Fatal(err)
	}
	names := f.roomNames(t)
	if len(names) != 1 || names[0] != f.eng.Room(visitA) {
		t.Fatalf("rooms after admission: %v, want [%s]", names, f.eng.Room(visitA))
	}
	if strings.Contains(names[0], visitA) || f.eng.Room(visitA) == f.eng.Room(visitB) {
		t.Fatalf("room name %q is not an opaque pseudonym of the visit", names[0])
	}
	if id := f.eng.Identity(visitA, patient); strings.Contains(id, patient) || id == f.eng.Identity(visitB, patient) {
		t.Fatalf("identity %q is not a per-visit pseudonym", id)
	}
}

// The token grants joining one room as one identity, for a short time,
// and nothing more; LiveKit accepts it for that room.
func TestLiveKitTokenGrantsOneRoomOneIdentityAndExpires(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if err := f.eng.CreateRoom(ctx, visitA); err != nil {
		t.Fatal(err)
	}
	g, err := f.eng.Token(ctx, visitA, claims(visitA, patient, token.Patient))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.ParseAPIToken(g.Token)
	if err != nil {
		t.Fatal(err)
	}
	reg, grants, err := v.Verify(f.srv.APISecret)
	if err != nil {
		t.Fatal(err)
	}
	vg := grants.Video
	switch {
	case v.APIKey() != f.srv.APIKey:
		t.Errorf("token issued under key %q", v.APIKey())
	case grants.Identity != f.eng.Identity(visitA, patient) || reg.Subject != grants.Identity:
		t.Errorf("identity %q, want %q", grants.Identity, f.eng.Identity(visitA, patient))
	case vg == nil || !vg.RoomJoin || vg.Room != f.eng.Room(visitA):
		t.Errorf("video grant %+v, want join of %s only", vg, f.eng.Room(visitA))
	case vg.RoomCreate || vg.RoomList || vg.RoomRecord || vg.RoomAdmin || vg.IngressAdmin || vg.Hidden || vg.Recorder || vg.Agent || vg.DestinationRoom != "":
		t.Errorf("token grants more than joining: %+v", vg)
	case grants.Name != "" || grants.Metadata != "" || len(grants.Attributes) != 0 || grants.SIP != nil || grants.Agent != nil || grants.RoomConfig != nil:
		t.Errorf("token carries more than an identity: %+v", grants)
	case reg.ExpiresAt == nil || reg.NotBefore == nil || reg.ExpiresAt.Time.Sub(reg.NotBefore.Time) != livekit.DefaultTokenTTL:
		t.Errorf("token valid from %v to %v, want %v", reg.NotBefore, reg.ExpiresAt, livekit.DefaultTokenTTL)
	}
	connect(t, f, g)
	if got := f.participants(t, visitA); len(got) != 1 || got[0] != g.Identity {
		t.Fatalf("participants %v, want [%s]", got, g.Identity)
	}
}

// A token for another visit is not minted, one Haven did not sign is
// refused by LiveKit, and one for a visit whose room Haven has not
// created joins nothing.
func TestLiveKitRefusesForgedAndOtherVisitTokens(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if _, err := f.eng.Token(ctx, visitB, claims(visitA, patient, token.Patient)); haven.ErrorCode(err) != haven.EFORBIDDEN {
		t.Fatalf("token for a join redeemed for another visit: %v", err)
	}
	if err := f.eng.CreateRoom(ctx, visitA); err != nil {
		t.Fatal(err)
	}
	// Forged: the right room and an identity, signed with another secret.
	forged, err := auth.NewAccessToken(f.srv.APIKey, strings.Repeat("x", 64)).SetIdentity(f.eng.Identity(visitA, patient)).
		SetValidFor(time.Minute).SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: f.eng.Room(visitA)}).ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Join(t, forged); err == nil {
		t.Fatal("LiveKit seated a participant whose token Haven did not sign")
	}
	// Signed by Haven for visit A, pointed at visit B's room: the grant
	// names A's room, so it joins A's or nothing; B's room does not exist.
	g, err := f.eng.Token(ctx, visitA, claims(visitA, patient, token.Patient))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.eng.Close(ctx, visitA); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Join(t, g.Token); err == nil {
		t.Fatal("a token joined a room Haven had closed")
	}
	if n := f.roomNames(t); len(n) != 0 {
		t.Fatalf("rooms %v exist that Haven did not create", n)
	}
}

// A recheck that cuts a participant (their session revoked) takes them out
// of the LiveKit room; the other stays.
func TestLiveKitRevokedSessionIsRemovedFromTheRoom(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if err := f.eng.CreateRoom(ctx, visitA); err != nil {
		t.Fatal(err)
	}
	gp, err := f.eng.Token(ctx, visitA, claims(visitA, patient, token.Patient))
	if err != nil {
		t.Fatal(err)
	}
	gc, err := f.eng.Token(ctx, visitA, claims(visitA, clinician, token.Clinician))
	if err != nil {
		t.Fatal(err)
	}
	_, patientGone := connect(t, f, gp)
	_, clinicianGone := connect(t, f, gc)
	if err := f.eng.Remove(ctx, visitA, patient); err != nil {
		t.Fatal(err)
	}
	wait(t, "the revoked participant disconnected by LiveKit", patientGone)
	if got := f.participants(t, visitA); len(got) != 1 || got[0] != gc.Identity {
		t.Fatalf("participants after the cut: %v, want only the clinician %s", got, gc.Identity)
	}
	select {
	case <-clinicianGone:
		t.Fatal("the clinician was disconnected too")
	default:
	}
	// Removing someone already out is not an error.
	if err := f.eng.Remove(ctx, visitA, patient); err != nil {
		t.Fatal(err)
	}
}

// A visit that closes (ended, cancelled) deletes its room: everyone is
// disconnected.
func TestLiveKitClosedVisitDeletesTheRoom(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if err := f.eng.CreateRoom(ctx, visitA); err != nil {
		t.Fatal(err)
	}
	g, err := f.eng.Token(ctx, visitA, claims(visitA, patient, token.Patient))
	if err != nil {
		t.Fatal(err)
	}
	_, gone := connect(t, f, g)
	if err := f.eng.Close(ctx, visitA); err != nil {
		t.Fatal(err)
	}
	wait(t, "the participant disconnected when the room was deleted", gone)
	if n := f.roomNames(t); len(n) != 0 {
		t.Fatalf("rooms after the visit closed: %v", n)
	}
	if err := f.eng.Close(ctx, visitA); err != nil {
		t.Fatalf("closing a closed room: %v", err)
	}
}

// Without a current agreement in the vendor registry, LiveKit is sent
// nothing: no room, no token.
func TestLiveKitWithoutAgreementGetsNothing(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.allow.Store(haven.Errorf(haven.EFORBIDDEN, "no business associate agreement"))
	if err := f.eng.CreateRoom(ctx, visitA); haven.ErrorCode(err) != haven.EFORBIDDEN {
		t.Fatalf("CreateRoom without an agreement: %v", err)
	}
	if g, err := f.eng.Token(ctx, visitA, claims(visitA, patient, token.Patient)); haven.ErrorCode(err) != haven.EFORBIDDEN || g.Token != "" {
		t.Fatalf("Token without an agreement: %v", err)
	}
	if n := f.roomNames(t); len(n) != 0 {
		t.Fatalf("rooms created without an agreement: %v", n)
	}
}

func TestNewRefusesUnsafeConfig(t *testing.T) {
	allow := func(context.Context) error { return nil }
	secret := strings.Repeat("s", 32)
	for _, c := range []livekit.Config{
		{URL: "ws://livekit.example:7880", APIKey: "k", APISecret: secret, Allow: allow}, // clear text off this machine
		{URL: "wss://livekit.example", APIKey: "", APISecret: secret, Allow: allow},
		{URL: "wss://livekit.example", APIKey: "k", APISecret: "short", Allow: allow},
		{URL: "wss://livekit.example", APIKey: "k", APISecret: secret},                     // no registry check
		{URL: "wss://livekit.example/rooms", APIKey: "k", APISecret: secret, Allow: allow}, // a path
	} {
		if _, err := livekit.New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	if _, err := livekit.New(livekit.Config{URL: "wss://livekit.example", APIKey: "k", APISecret: secret, Allow: allow}); err != nil {
		t.Fatal(err)
	}
}
