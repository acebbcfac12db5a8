package signal

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"haven"
)

// fields lists, for each type a client may send, the top-level keys it
// must carry; no other key is accepted.
var fields = map[Type][]string{
	Join:        {"type", "token"},
	Offer:       {"type", "sdp"},
	Answer:      {"type", "sdp"},
	Candidate:   {"type", "candidate"},
	Mute:        {"type"},
	Unmute:      {"type"},
	CameraOff:   {"type"},
	CameraOn:    {"type"},
	ScreenStart: {"type"},
	ScreenStop:  {"type"},
	Leave:       {"type"},
	End:         {"type"},
	Invite:      {"type", "participant"},
	PublicKey:   {"type", "key"},
	WrapKey:     {"type", "participant", "key"},
	Names:       {"type"}, // on LiveKit: asks for the others' names again
}

var candidateFields = map[string]bool{"candidate": true, "sdpMid": true, "sdpMLineIndex": true, "usernameFragment": true}

func invalid(msg string) error { return haven.Errorf(haven.EINVALID, "%s", msg) }

// Parse reads one message a client sent. It accepts only a single JSON
// object of a client type with exactly that type's fields, within the size
// limits; anything else is an EINVALID error whose message does not echo
// the input.
func Parse(b []byte) (Message, error) {
	if len(b) > MaxMessage {
		return Message{}, invalid("signaling message too large")
	}
	if !utf8.Valid(b) {
		return Message{}, invalid("signaling message is not UTF-8")
	}
	top, cand, err := shape(b)
	if err != nil {
		return Message{}, err
	}

	var m Message
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Message{}, invalid("signaling message has a field of the wrong type")
	}
	want, ok := fields[m.Type]
	if !ok {
		return Message{}, invalid("unknown signaling message type")
	}
	if len(top) != len(want) {
		return Message{}, invalid("signaling message has missing or extra fields")
	}
	for _, k := range want {
		if !top[k] {
			return Message{}, invalid("signaling message has missing or extra fields")
		}
	}

	switch m.Type {
	case Join:
		if m.Token == "" || len(m.Token) > MaxToken || !printable(m.Token) {
			return Message{}, invalid("join token missing or too long")
		}
	case Offer, Answer:
		if len(m.SDP) > MaxSDP {
			return Message{}, invalid("session description too large")
		}
		if !strings.HasPrefix(m.SDP, "v=0\r\n") || strings.ContainsRune(m.SDP, 0) {
			return Message{}, invalid("not a session description")
		}
	case Candidate:
		if err := checkCandidate(m.Candidate, cand); err != nil {
			return Message{}, err
		}
	case Invite:
		if !haven.PlausibleID(m.Participant) {
			return Message{}, invalid("invitee must be a participant id")
		}
	case PublicKey:
		if len(m.Key) != PublicKeySize || !base64url(m.Key) {
			return Message{}, invalid("public key must be a P-256 point in base64url")
		}
	case WrapKey:
		if !haven.PlausibleID(m.Participant) {
			return Message{}, invalid("a sealed key must name its recipient")
		}
		if len(m.Key) < 16 || len(m.Key) > MaxWrappedKey || !base64url(m.Key) {
			return Message{}, invalid("sealed key must be base64url of a bounded size")
		}
	}
	return m, nil
}

func checkCandidate(c *ICECandidate, keys map[string]bool) error {
	if c == nil || !keys["candidate"] {
		return invalid("candidate missing")
	}
	if len(c.Candidate) > MaxCandidate || !printable(c.Candidate) {
		return invalid("candidate too long")
	}
	if c.Candidate != "" && !strings.HasPrefix(c.Candidate, "candidate:") {
		return invalid("not an ICE candidate")
	}
	if c.SDPMid != nil && (len(*c.SDPMid) > maxMid || !printable(*c.SDPMid)) {
		return invalid("candidate sdpMid too long")
	}
	if c.UsernameFragment != nil && (len(*c.UsernameFragment) > maxUsernameFragment || !printable(*c.UsernameFragment)) {
		return invalid("candidate usernameFragment too long")
	}
	return nil
}

// shape walks b's tokens before any decoding into structs, because
// encoding/json silently keeps the last of duplicate keys and accepts
// nesting we never use. It requires one object whose values are strings,
// except "candidate", which may be one flat object of strings and numbers.
// It returns the top-level keys and the candidate's keys.
func shape(b []byte) (top, cand map[string]bool, err error) {
	bad := invalid("malformed signaling message")
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, bad
	}
	top = map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, nil, bad
		}
		key, _ := k.(string)
		if top[key] || len(top) >= 8 {
			return nil, nil, bad
		}
		top[key] = true
		v, err := dec.Token()
		if err != nil {
			return nil, nil, bad
		}
		switch v := v.(type) {
		case string:
		case json.Delim:
			if v != '{' || key != "candidate" {
				return nil, nil, bad
			}
			cand = map[string]bool{}
			for dec.More() {
				ck, err := dec.Token()
				if err != nil {
					return nil, nil, bad
				}
				ckey, _ := ck.(string)
				if cand[ckey] || !candidateFields[ckey] {
					return nil, nil, bad
				}
				cand[ckey] = true
				cv, err := dec.Token()
				if err != nil {
					return nil, nil, bad
				}
				switch cv.(type) {
				case string, json.Number:
				default:
					return nil, nil, bad
				}
			}
			if t, err := dec.Token(); err != nil || t != json.Delim('}') {
				return nil, nil, bad
			}
		default:
			return nil, nil, bad
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, nil, bad
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, invalid("trailing data after signaling message")
	}
	return top, cand, nil
}

// base64url reports whether s is unpadded base64url, the only alphabet
// keys travel in: nothing else can ride along in a key field.
func base64url(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// printable refuses control characters (other than the CR LF and tab that
// SDP is made of) so nothing a client sends can forge a log line.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
