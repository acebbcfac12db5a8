package audit_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/audit"
)

func validEvent() audit.Event {
	return audit.Event{
		Seq:          7,
		Time:         time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC),
		LogID:        "p4kx2abc",
		ActorID:      "u7hq2clinician",
		ActorRole:    string(haven.RoleClinician),
		SessionID:    "s-31",
		Action:       "chart.read",
		ResourceKind: "note",
		ResourceID:   "n-9",
		PatientID:    "pt-12",
		Purpose:      audit.PurposeTreatment,
		Decision:     haven.DecisionAllow,
		Reason:       "care_team",
		ClientAddr:   "2001:db8::7",
		RequestID:    "req-1",
	}
}

func TestValidEventPasses(t *testing.T) {
	e := validEvent()
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	e.ClientAddr = "192.0.2.1:443"
	if err := e.Validate(); err != nil {
		t.Fatalf("address with port: %v", err)
	}
}

// An event is an index card, not a notebook: anything that could carry a
// sentence, a line break or a name is refused, and the error never repeats
// the refused value.
func TestEventCannotSmuggleText(t *testing.T) {
	secret := "patient has HIV"
	cases := map[string]func(e *audit.Event){
		"prose in reason":         func(e *audit.Event) { e.Reason = secret },
		"newline in action":       func(e *audit.Event) { e.Action = "chart.read\nforged" },
		"NUL in actor":            func(e *audit.Event) { e.ActorID = "u1\x00" },
		"tab in resource id":      func(e *audit.Event) { e.ResourceID = "n\t9" },
		"unicode in patient id":   func(e *audit.Event) { e.PatientID = "pt-é" },
		"email as actor":          func(e *audit.Event) { e.ActorID = "jane@example.org" },
		"long resource id":        func(e *audit.Event) { e.ResourceID = strings.Repeat("a", 129) },
		"long reason":             func(e *audit.Event) { e.Reason = strings.Repeat("a", 65) },
		"upper case code":         func(e *audit.Event) { e.Purpose = "Treatment" },
		"name in client address":  func(e *audit.Event) { e.ClientAddr = "jane-laptop" },
		"unknown role":            func(e *audit.Event) { e.ActorRole = "god" },
		"missing action":          func(e *audit.Event) { e.Action = "" },
		"missing decision":        func(e *audit.Event) { e.Decision = "" },
		"missing time":            func(e *audit.Event) { e.Time = time.Time{} },
		"path in log id":          func(e *audit.Event) { e.LogID = "../etc" },
		"upper case log id":       func(e *audit.Event) { e.LogID = "Practice" },
		"space in session id":     func(e *audit.Event) { e.SessionID = "s 1" },
		"control char in request": func(e *audit.Event) { e.RequestID = "r\x1b[2J" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			e := validEvent()
			edit(&e)
			err := e.Validate()
			if haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("Validate = %v, want %s", err, haven.EINVALID)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "jane") {
				t.Fatalf("error repeats the refused value: %v", err)
			}
		})
	}
}

func TestCanonicalEncodingRoundTrips(t *testing.T) {
	e := validEvent()
	got, err := audit.ParseCanonical(e.Canonical())
	if err != nil {
		t.Fatal(err)
	}
	if got != e {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
	}
}

// The canonical bytes are fixed by the format, not by this code: a change
// here would make every stored leaf unverifiable.
func TestCanonicalEncodingIsStable(t *testing.T) {
	e := audit.Event{Seq: 1, Time: time.UnixMicro(2).UTC(), LogID: "p", Action: "a", Decision: "allow"}
	want := []byte("haven.audit.event/1\n" +
		"\x00\x00\x00\x00\x00\x00\x00\x01" + "\x00\x00\x00\x00\x00\x00\x00\x02" +
		"\x00\x01p" + "\x00\x00" + "\x00\x00" + "\x00\x00" + "\x00\x01a" + "\x00\x00" + "\x00\x00" +
		"\x00\x00" + "\x00\x00" + "\x00\x05allow" + "\x00\x00" + "\x00\x00" + "\x00\x00")
	if got := e.Canonical(); !bytes.Equal(got, want) {
		t.Fatalf("canonical bytes changed:\n got %q\nwant %q", got, want)
	}
}

// Length prefixes keep field boundaries: moving a character from one field
// to its neighbour changes the leaf.
func TestEveryFieldChangesTheLeaf(t *testing.T) {
	base := validEvent()
	leaf := base.LeafHash()
	edits := []func(e *audit.Event){
		func(e *audit.Event) { e.Seq++ },
		func(e *audit.Event) { e.Time = e.Time.Add(time.Microsecond) },
		func(e *audit.Event) { e.LogID = "p4kx2abd" },
		func(e *audit.Event) { e.ActorID = "u7hq2clinicia"; e.ActorRole = "n" + e.ActorRole },
		func(e *audit.Event) { e.ActorRole = string(haven.RoleStaff) },
		func(e *audit.Event) { e.SessionID = "s-32" },
		func(e *audit.Event) { e.Action = "chart.write" },
		func(e *audit.Event) { e.ResourceKind = "lab" },
		func(e *audit.Event) { e.ResourceID = "n-8" },
		func(e *audit.Event) { e.PatientID = "pt-13" },
		func(e *audit.Event) { e.Purpose = audit.PurposeBreakGlass },
		func(e *audit.Event) { e.Decision = haven.DecisionDeny },
		func(e *audit.Event) { e.Reason = "care_tea"; e.ClientAddr = "m" + e.ClientAddr },
		func(e *audit.Event) { e.ClientAddr = "2001:db8::8" },
		func(e *audit.Event) { e.RequestID = "req-2" },
	}
	for i, edit := range edits {
		e := base
		edit(&e)
		if bytes.Equal(e.LeafHash(), leaf) {
			t.Errorf("edit %d left the leaf hash unchanged", i)
		}
	}
}

func TestForActorFillsWhoAndWhere(t *testing.T) {
	a := haven.Actor{UserID: "u1", PracticeID: "p1", Role: haven.RoleStaff, SessionID: "s1", ClientAddr: "192.0.2.9", RequestID: "r1"}
	e := audit.ForActor(a, "visit.checkin")
	if e.LogID != "p1" || e.ActorID != "u1" || e.ActorRole != "staff" || e.SessionID != "s1" || e.ClientAddr != "192.0.2.9" || e.RequestID != "r1" || e.Action != "visit.checkin" {
		t.Fatalf("ForActor = %+v", e)
	}
	op := audit.ForActor(haven.Actor{UserID: "op", Role: haven.RolePlatformOperator}, "practice.create")
	if op.LogID != audit.PlatformLogID {
		t.Fatalf("platform operator's event goes to log %q", op.LogID)
	}
}

func FuzzParseCanonical(f *testing.F) {
	e := validEvent()
	f.Add(e.Canonical())
	f.Add([]byte("haven.audit.event/1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := audit.ParseCanonical(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Canonical(), b) {
			t.Fatalf("decoded event re-encodes differently")
		}
	})
}
