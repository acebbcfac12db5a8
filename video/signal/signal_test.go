package signal_test

import (
	"encoding/json"
	"strings"
	"testing"

	"haven"
	"haven/video/signal"
)

const sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

func TestClientMessagesParse(t *testing.T) {
	for in, want := range map[string]signal.Message{
		`{"type":"join","token":"abc_-"}`:                 {Type: signal.Join, Token: "abc_-"},
		`{"type":"answer","sdp":` + q(sdp) + `}`:          {Type: signal.Answer, SDP: sdp},
		`{"type":"offer","sdp":` + q(sdp) + `}`:           {Type: signal.Offer, SDP: sdp},
		`{"type":"mute"}`:                                 {Type: signal.Mute},
		`{"type":"unmute"}`:                               {Type: signal.Unmute},
		`{"type":"camera-off"}`:                           {Type: signal.CameraOff},
		`{"type":"camera-on"}`:                            {Type: signal.CameraOn},
		`{"type":"screen-start"}`:                         {Type: signal.ScreenStart},
		`{"type":"screen-stop"}`:                          {Type: signal.ScreenStop},
		`{"type":"leave"}`:                                {Type: signal.Leave},
		`{"type":"end"}`:                                  {Type: signal.End},
		`{"type":"invite","participant":"interpreter-1"}`: {Type: signal.Invite, Participant: "interpreter-1"},
		` { "type" : "leave" } `:                          {Type: signal.Leave},
		`{"type":"e2ee-key","key":"` + pubKey + `"}`:      {Type: signal.PublicKey, Key: pubKey},
		`{"type":"e2ee-wrap","participant":"clinician-1","key":"` + sealed + `"}`: {Type: signal.WrapKey, Participant: "clinician-1", Key: sealed},
	} {
		got, err := signal.Parse([]byte(in))
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got.Type != want.Type || got.Token != want.Token || got.SDP != want.SDP || got.Participant != want.Participant || got.Key != want.Key {
			t.Errorf("%s: got %+v", in, got)
		}
	}
}

func TestCandidateParses(t *testing.T) {
	in := `{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}`
	m, err := signal.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.Candidate == nil || *m.Candidate.SDPMid != "0" || *m.Candidate.SDPMLineIndex != 0 || *m.Candidate.UsernameFragment != "abcd" {
		t.Fatalf("%+v", m.Candidate)
	}
	// End of candidates.
	if _, err := signal.Parse([]byte(`{"type":"candidate","candidate":{"candidate":""}}`)); err != nil {
		t.Fatal(err)
	}
}

func TestHostileMessagesAreRefused(t *testing.T) {
	for name, in := range map[string]string{
		"BadJSON":              `{"type":"join","token":`,
		"NotAnObject":          `["join"]`,
		"Null":                 `null`,
		"Empty":                ``,
		"UnknownType":          `{"type":"record"}`,
		"NoType":               `{"token":"x"}`,
		"UnknownField":         `{"type":"leave","admin":"yes"}`,
		"NamesFromAClient":     `{"type":"names","names":{"p_x":"Someone"}}`,
		"FieldOfAnotherType":   `{"type":"join","token":"x","sdp":` + q(sdp) + `}`,
		"MissingField":         `{"type":"join"}`,
		"DuplicateType":        `{"type":"leave","type":"end"}`,
		"DuplicateToken":       `{"type":"join","token":"a","token":"b"}`,
		"TypeNotString":        `{"type":7}`,
		"NestedObject":         `{"type":"join","token":{"a":"b"}}`,
		"ArrayValue":           `{"type":"join","token":["a"]}`,
		"TrailingData":         `{"type":"leave"}{"type":"end"}`,
		"TrailingGarbage":      `{"type":"leave"}x`,
		"NotUTF8":              "{\"type\":\"join\",\"token\":\"\xff\"}",
		"EmptyToken":           `{"type":"join","token":""}`,
		"TokenTooLong":         `{"type":"join","token":"` + strings.Repeat("a", signal.MaxToken+1) + `"}`,
		"TokenWithNewline":     `{"type":"join","token":"a\nb"}`,
		"SDPTooLarge":          `{"type":"offer","sdp":` + q(sdp+strings.Repeat("a=x\r\n", signal.MaxSDP/5)) + `}`,
		"NotSDP":               `{"type":"answer","sdp":"hello"}`,
		"SDPWithNUL":           `{"type":"answer","sdp":` + q(sdp+"\x00") + `}`,
		"CandidateNotObject":   `{"type":"candidate","candidate":"candidate:1"}`,
		"CandidateUnknownKey":  `{"type":"candidate","candidate":{"candidate":"","evil":"1"}}`,
		"CandidateDuplicate":   `{"type":"candidate","candidate":{"candidate":"","candidate":"candidate:x"}}`,
		"CandidateMissing":     `{"type":"candidate","candidate":{"sdpMid":"0"}}`,
		"CandidateNotICE":      `{"type":"candidate","candidate":{"candidate":"hello"}}`,
		"CandidateTooLong":     `{"type":"candidate","candidate":{"candidate":"candidate:` + strings.Repeat("1", signal.MaxCandidate) + `"}}`,
		"CandidateNegIndex":    `{"type":"candidate","candidate":{"candidate":"","sdpMLineIndex":-1}}`,
		"CandidateNestedDeep":  `{"type":"candidate","candidate":{"candidate":"","sdpMid":{"x":1}}}`,
		"InviteBadID":          `{"type":"invite","participant":"../../admin"}`,
		"InviteEmpty":          `{"type":"invite","participant":""}`,
		"InviteUpperCase":      `{"type":"invite","participant":"Interpreter-1"}`, // haven.PlausibleID's alphabet
		"ServerTypeFromClient": `{"type":"joined"}`,
		"ErrorFromClient":      `{"type":"error","code":"x","message":"y"}`,
		"PublicKeyShort":       `{"type":"e2ee-key","key":"` + pubKey[1:] + `"}`,
		"PublicKeyNotBase64":   `{"type":"e2ee-key","key":"` + pubKey[1:] + `="}`,
		"PublicKeyPadded":      `{"type":"e2ee-key","key":"` + pubKey[:84] + `==="}`,
		"PublicKeyMissing":     `{"type":"e2ee-key"}`,
		"PublicKeyWithWrapTo":  `{"type":"e2ee-key","key":"` + pubKey + `","participant":"clinician-1"}`,
		"WrapNoRecipient":      `{"type":"e2ee-wrap","key":"` + sealed + `"}`,
		"WrapBadRecipient":     `{"type":"e2ee-wrap","participant":"../admin","key":"` + sealed + `"}`,
		"WrapTooLong":          `{"type":"e2ee-wrap","participant":"clinician-1","key":"` + strings.Repeat("A", signal.MaxWrappedKey+1) + `"}`,
		"WrapTooShort":         `{"type":"e2ee-wrap","participant":"clinician-1","key":"AAAA"}`,
		"WrapHTML":             `{"type":"e2ee-wrap","participant":"clinician-1","key":"<script>alert(1)</script>AAAAAAAAAAAA"}`,
		"ManyKeys":             `{"type":"leave","a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8"}`,
	} {
		t.Run(name, func(t *testing.T) {
			m, err := signal.Parse([]byte(in))
			if err == nil {
				t.Fatalf("accepted as %+v", m)
			}
			if haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("code %q: %v", haven.ErrorCode(err), err)
			}
		})
	}
}

func TestOversizedMessageIsRefusedBeforeParsing(t *testing.T) {
	in := `{"type":"join","token":"` + strings.Repeat("a", signal.MaxMessage) + `"}`
	_, err := signal.Parse([]byte(in))
	if err == nil || !strings.Contains(haven.ErrorMessage(err), "too large") {
		t.Fatalf("err = %v", err)
	}
}

func TestRefusalsDoNotEchoTheInput(t *testing.T) {
	secret := "Jane-Doe-diabetes"
	for _, in := range []string{
		`{"type":"` + secret + `"}`,
		`{"type":"join","` + secret + `":"x"}`,
		`{"type":"invite","participant":"` + secret + `!"}`,
	} {
		_, err := signal.Parse([]byte(in))
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("%s: err = %v", in, err)
		}
	}
}

func TestEncodeRoundTripsServerMessages(t *testing.T) {
	b, err := signal.Encode(signal.Message{Type: signal.Joined, Participant: "p1", Role: "patient",
		Peers:      []signal.Peer{{Participant: "c1", Role: "clinician", Audio: true}},
		ICEServers: []signal.ICEServer{{URLs: []string{"turn:127.0.0.1:3478?transport=udp"}, Username: "1:p1", Credential: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	var m signal.Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != signal.Joined || len(m.Peers) != 1 || !m.Peers[0].Audio || m.ICEServers[0].Username != "1:p1" {
		t.Fatalf("%s", b)
	}
	if strings.Contains(string(b), `"token"`) || strings.Contains(string(b), `"sdp"`) {
		t.Fatalf("empty fields encoded: %s", b)
	}
}

func TestLimiterRefusesAFlood(t *testing.T) {
	l := signal.NewLimiter(1, 5)
	allowed := 0
	for range 100 {
		if l.Allow() {
			allowed++
		}
	}
	// A burst of 5, plus at most one more token refilled during the loop.
	if allowed < 5 || allowed > 6 {
		t.Fatalf("%d of 100 allowed, want the burst of 5", allowed)
	}
}

// pubKey is an uncompressed P-256 point in base64url, as a browser's
// WebCrypto exports it; sealed is a media key sealed for one recipient.
const (
	pubKey = "BHZ2eW5iMzJ4c3l0b0JhbXlSYk9QZ3FjQ0Z2a0NWa0ZTZk1mVGhkZVNrS3FUY3RQbkdzY2RfcFZ6cUl0VjhLMgA"
	sealed = "q9cD7l1lB6n4wU2kYx0bSOd_Vq3Tt8m2pX5cJm0bSOd_Vq3Tt8m2pX5cJq9cD7l1lB6n4wU2kYx0bSOd_Vq3Tt8"
)

func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
