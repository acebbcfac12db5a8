package signal_test

import (
	"encoding/json"
	"testing"

	"haven"
	"haven/video/signal"
)

// FuzzParse feeds the parser arbitrary bytes. It must never panic; what it
// accepts must be a client type within every limit, and must survive a
// re-encode and re-parse unchanged (so no two parsers could disagree).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","token":"abc"}`,
		`{"type":"answer","sdp":"v=0\r\n"}`,
		`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 1 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"invite","participant":"p-1"}`,
		`{"type":"leave"}`,
		`{"type":"leave","type":"end"}`,
		`{"type":"e2ee-key","key":"` + pubKey + `"}`,
		`{"type":"e2ee-wrap","participant":"p-1","key":"` + sealed + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := signal.Parse(b)
		if err != nil {
			if haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("code %q", haven.ErrorCode(err))
			}
			return
		}
		if len(m.Token) > signal.MaxToken || len(m.SDP) > signal.MaxSDP || len(m.Key) > signal.MaxWrappedKey || m.Peers != nil || m.ICEServers != nil || m.Peer != nil {
			t.Fatalf("accepted out-of-limit message %+v", m)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := signal.Parse(again)
		if err != nil {
			t.Fatalf("re-encoded message refused: %v (%s)", err, again)
		}
		b2, _ := json.Marshal(m2)
		if string(b2) != string(again) {
			t.Fatalf("round trip changed %s to %s", again, b2)
		}
	})
}
