package audit_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"haven"
	"haven/audit"
	"haven/audit/audittest"
	"haven/audit/memlog"
)

func TestTreeHeadParsingIsStrict(t *testing.T) {
	root := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	good := "haven.test/p1\n12\n" + root + "\n"
	h, err := audit.ParseTreeHead(good)
	if err != nil || h.Origin != "haven.test/p1" || h.Size != 12 || len(h.Root) != 32 {
		t.Fatalf("ParseTreeHead(good) = %+v, %v", h, err)
	}
	if h.Text() != good {
		t.Fatalf("Text() = %q", h.Text())
	}
	bad := map[string]string{
		"extension line":       good + "extra\n",
		"no final newline":     strings.TrimSuffix(good, "\n"),
		"leading zero":         "haven.test/p1\n012\n" + root + "\n",
		"negative size":        "haven.test/p1\n-1\n" + root + "\n",
		"short root":           "haven.test/p1\n12\nAAAA\n",
		"unpadded root":        "haven.test/p1\n12\n" + strings.TrimSuffix(root, "=") + "\n",
		"space in origin":      "haven test/p1\n12\n" + root + "\n",
		"empty origin":         "\n12\n" + root + "\n",
		"CR line ending":       "haven.test/p1\r\n12\n" + root + "\n",
		"size beyond uint64":   "haven.test/p1\n18446744073709551616\n" + root + "\n",
		"empty":                "",
		"root with whitespace": "haven.test/p1\n12\n " + root + "\n",
	}
	for name, text := range bad {
		if _, err := audit.ParseTreeHead(text); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("%s: ParseTreeHead = %v, want %s", name, err, haven.EINVALID)
		}
	}
}

func FuzzParseTreeHead(f *testing.F) {
	f.Add("haven.test/p1\n12\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
	f.Add("a\n0\n\n")
	f.Fuzz(func(t *testing.T, text string) {
		h, err := audit.ParseTreeHead(text)
		if err != nil {
			return
		}
		if h.Text() != text {
			t.Fatalf("accepted %q but it re-encodes as %q: two spellings of one checkpoint", text, h.Text())
		}
	})
}

func TestKeyNameMustBeUsableInAnOrigin(t *testing.T) {
	for _, name := range []string{"", "has space", "a+b", "tab\tname", strings.Repeat("n", 101), "é"} {
		if _, _, err := audit.GenerateKey(name); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("GenerateKey(%q) = %v", name, err)
		}
	}
}

func TestKeyFileIsPrivateAndNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.key")
	priv, pub, err := audit.GenerateKey("haven.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.WriteKeyFile(path, priv); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	other, _, _ := audit.GenerateKey("haven.test")
	if err := audit.WriteKeyFile(path, other); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("overwriting the key file: %v, want %s", err, haven.ECONFLICT)
	}
	s, err := audit.LoadSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.VerifierKey() != pub || s.Name() != "haven.test" {
		t.Fatalf("loaded key %s, want %s", s.VerifierKey(), pub)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.LoadSigner(path); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("loading a group-readable key: %v, want %s", err, haven.EINVALID)
	}
}

func TestMalformedSigningKeyIsRefused(t *testing.T) {
	priv, pub, _ := audit.GenerateKey("haven.test")
	for name, k := range map[string]string{
		"verifier key":   pub,
		"truncated":      priv[:len(priv)-4],
		"other name":     strings.Replace(priv, "haven.test", "haven.evil", 1),
		"empty":          "",
		"not a note key": "PRIVATE+KEY+x+00000000+AAAA",
	} {
		if _, err := audit.NewSigner(k); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("%s: NewSigner = %v", name, err)
		}
	}
}

func signedCheckpoint(t *testing.T, logID string, n int) (*audit.Signer, audit.Checkpoint) {
	t.Helper()
	priv, _, _ := audit.GenerateKey("haven.test")
	s, err := audit.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.NewLog(memlog.New(), audit.Options{Signer: s})
	defer l.Close()
	for i := range n {
		if _, err := l.Append(context.Background(), audittest.SampleEvent(logID, i)); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := l.Checkpoint(context.Background(), logID)
	if err != nil {
		t.Fatal(err)
	}
	return s, cp
}

func TestOpenCheckpointChecksKeyAndLog(t *testing.T) {
	s, cp := signedCheckpoint(t, "p1", 3)
	h, err := audit.OpenCheckpoint(cp.Note, "p1", s.VerifierKey())
	if err != nil || h.Size != 3 || h.Origin != "haven.test/p1" {
		t.Fatalf("OpenCheckpoint = %+v, %v", h, err)
	}
	if _, err := audit.OpenCheckpoint(cp.Note, "p2", s.VerifierKey()); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("checkpoint of p1 accepted for p2: %v", err)
	}
	_, otherPub, _ := audit.GenerateKey("haven.test")
	if _, err := audit.OpenCheckpoint(cp.Note, "p1", otherPub); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("checkpoint accepted under another key: %v", err)
	}
	// After a key rotation both keys are given, one per line.
	if _, err := audit.OpenCheckpoint(cp.Note, "p1", "# rotated 2026-01\n"+otherPub+"\n"+s.VerifierKey()+"\n"); err != nil {
		t.Fatalf("checkpoint under a key list: %v", err)
	}
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("connection refused")
}

// A witness that fails does not lose the checkpoint: it is stored, returned
// and reported.
func TestCheckpointIsStoredEvenWhenAWitnessFails(t *testing.T) {
	ctx := context.Background()
	priv, _, _ := audit.GenerateKey("haven.test")
	s, _ := audit.NewSigner(priv)
	st := memlog.New()
	w, err := audit.NewTlogWitness("http://witness.invalid", testWitnessKey(t))
	if err != nil {
		t.Fatal(err)
	}
	w.Client = &http.Client{Transport: failingTransport{}}
	l := audit.NewLog(st, audit.Options{Signer: s, Witnesses: []audit.Witness{w}})
	defer l.Close()
	l.Append(ctx, audittest.SampleEvent("p1", 0))
	cp, err := l.Checkpoint(ctx, "p1")
	var we *audit.WitnessError
	if haven.ErrorCode(err) != haven.EUNAVAILABLE || cp.Size != 1 || !errors.As(err, &we) || we.Reason != audit.WitnessUnavailable {
		t.Fatalf("Checkpoint = %d, %v", cp.Size, err)
	}
	if cps, _ := st.Checkpoints(ctx, "p1"); len(cps) != 1 {
		t.Fatal("checkpoint not stored when the witness failed")
	}
}

func TestCheckpointWithoutSignerFails(t *testing.T) {
	l := audit.NewLog(memlog.New(), audit.Options{})
	defer l.Close()
	if _, err := l.Checkpoint(context.Background(), "p1"); err == nil {
		t.Fatal("checkpoint without a key")
	}
}
