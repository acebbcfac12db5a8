package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/audit"
	"haven/audit/audittest"
	"haven/audit/memlog"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// cosigner signs cosignature/v1 lines (c2sp.org/tlog-cosignature) the way
// a witness does, written here from the specification.
type cosigner struct {
	name string
	priv ed25519.PrivateKey
	hash uint32
}

func newCosigner(name string) *cosigner {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	h := sha256.Sum256(append([]byte(name+"\n\x04"), pub...))
	return &cosigner{name: name, priv: priv, hash: binary.BigEndian.Uint32(h[:])}
}

func (c *cosigner) vkey() string {
	return fmt.Sprintf("%s+%08x+%s", c.name, c.hash, base64.StdEncoding.EncodeToString(append([]byte{4}, c.priv.Public().(ed25519.PublicKey)...)))
}

func (c *cosigner) line(text string) string {
	ts := uint64(time.Now().Unix())
	sig := ed25519.Sign(c.priv, fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, text))
	raw := binary.BigEndian.AppendUint32(nil, c.hash)
	raw = binary.BigEndian.AppendUint64(raw, ts)
	return "— " + c.name + " " + base64.StdEncoding.EncodeToString(append(raw, sig...)) + "\n"
}

func testWitnessKey(t *testing.T) string { return newCosigner("witness.test/w").vkey() }

// specWitness follows c2sp.org/tlog-witness's add-checkpoint for the log
// keys it trusts, holding the newest tree of each origin in memory. The
// interoperability test against an independent witness is in
// litewitness_test.go; this one lets the error answers be provoked.
type specWitness struct {
	mu      sync.Mutex
	trusted note.Verifiers
	sizes   map[string]uint64
	roots   map[string][]byte
	c       *cosigner
}

func newSpecWitness(t *testing.T, logVKeys ...string) *specWitness {
	var vs []note.Verifier
	for _, k := range logVKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return &specWitness{trusted: note.VerifierList(vs...), sizes: map[string]uint64{}, roots: map[string][]byte{}, c: newCosigner("witness.test/w")}
}

func (w *specWitness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	head, signed, ok := bytes.Cut(body, []byte("\n\n"))
	lines := strings.Split(string(head), "\n")
	oldText, ok2 := strings.CutPrefix(lines[0], "old ")
	old, err := strconv.ParseUint(oldText, 10, 64)
	if !ok || !ok2 || err != nil {
		http.Error(rw, "bad request", http.StatusBadRequest)
		return
	}
	var p [][]byte
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil {
			http.Error(rw, "bad request", http.StatusBadRequest)
			return
		}
		p = append(p, h)
	}
	n, err := note.Open(signed, w.trusted)
	if err != nil {
		http.Error(rw, "unknown log or key", http.StatusForbidden)
		return
	}
	cp := strings.Split(n.Text, "\n")
	size, _ := strconv.ParseUint(cp[1], 10, 64)
	root, _ := base64.StdEncoding.DecodeString(cp[2])
	w.mu.Lock()
	defer w.mu.Unlock()
	if old > size {
		http.Error(rw, "bad request", http.StatusBadRequest)
		return
	}
	if known := w.sizes[cp[0]]; known != old {
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", known)
		return
	}
	switch {
	case old == size && old > 0 && !bytes.Equal(root, w.roots[cp[0]]):
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", old)
		return
	case old > 0 && old < size:
		if proof.VerifyConsistency(rfc6962.DefaultHasher, old, size, p, w.roots[cp[0]], root) != nil {
			http.Error(rw, "bad proof", http.StatusUnprocessableEntity)
			return
		}
	}
	w.sizes[cp[0]], w.roots[cp[0]] = size, root
	io.WriteString(rw, w.c.line(n.Text))
}

// TestTlogWitnessCosignsConsistentCheckpointsAndRefusesRollbacks publishes a
// growing log to a witness speaking tlog-witness, then shows it a rolled
// back and a forked history of the same log, and a log it does not know.
func TestTlogWitnessCosignsConsistentCheckpointsAndRefusesRollbacks(t *testing.T) {
	ctx := context.Background()
	priv, pub, _ := audit.GenerateKey("haven.test")
	s, _ := audit.NewSigner(priv)
	p1key, _ := audit.LogVerifierKey(pub, "p1")
	sw := newSpecWitness(t, p1key)
	srv := httptest.NewServer(sw)
	defer srv.Close()
	w, err := audit.NewTlogWitness(srv.URL, sw.c.vkey())
	if err != nil {
		t.Fatal(err)
	}
	st := memlog.New()
	l := audit.NewLog(st, audit.Options{Signer: s, Witnesses: []audit.Witness{w}})
	defer l.Close()
	for _, upto := range []int{3, 10, 11} {
		n, _ := l.Size(ctx, "p1")
		for i := int(n); i < upto; i++ {
			l.Append(ctx, audittest.SampleEvent("p1", i))
		}
		if _, err := l.Checkpoint(ctx, "p1"); err != nil {
			t.Fatalf("checkpoint at %d: %v", upto, err)
		}
	}
	acks, _ := st.Witnessed(ctx, "p1")
	if len(acks) != 1 || acks[0].Size != 11 || acks[0].Witness != w.Name() {
		t.Fatalf("acknowledgements %+v", acks)
	}
	if n, err := note.Open(acks[0].Note, note.VerifierList(w.Verifier())); err != nil || len(n.Sigs) != 1 {
		t.Fatalf("the stored acknowledgement carries no valid cosignature: %v", err)
	}

	// The same key signing other histories: a restored backup of 5
	// entries, and a rewrite grown to 12.
	for _, c := range []struct {
		name   string
		n      int
		reason audit.WitnessReason
	}{{"RolledBack", 5, audit.WitnessAhead}, {"Forked", 12, audit.WitnessFork}} {
		t.Run(c.name, func(t *testing.T) {
			other := audit.NewLog(memlog.New(), audit.Options{Signer: s, Witnesses: []audit.Witness{w}})
			defer other.Close()
			for i := range c.n {
				other.Append(ctx, audittest.SampleEvent("p1", 1000+i))
			}
			_, err := other.Checkpoint(ctx, "p1")
			var we *audit.WitnessError
			if !errors.As(err, &we) || we.Reason != c.reason || we.Size != 11 {
				t.Fatalf("publishing a %s history: %v, want %s at 11", c.name, err, c.reason)
			}
		})
	}
	other := audit.NewLog(memlog.New(), audit.Options{Signer: s, Witnesses: []audit.Witness{w}})
	defer other.Close()
	other.Append(ctx, audittest.SampleEvent("p2", 0))
	if _, err := other.Checkpoint(ctx, "p2"); err != nil {
		t.Fatalf("a log the witness never knew is not a failure of each checkpoint: %v", err)
	}
	warnings, err := other.Check(ctx, "p2")
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "does not know log p2") {
		t.Fatalf("start with a log the witness does not know: %v %q", err, warnings)
	}
	var we *audit.WitnessError
	// The witness loses its state (restored from an old backup, or
	// replaced): the next publication says so instead of seeding it again.
	sw.mu.Lock()
	sw.sizes, sw.roots = map[string]uint64{}, map[string][]byte{}
	sw.mu.Unlock()
	l.Append(ctx, audittest.SampleEvent("p1", 11))
	if _, err := l.Checkpoint(ctx, "p1"); !errors.As(err, &we) || we.Reason != audit.WitnessBackwards || we.Have != 11 {
		t.Fatalf("a witness that went back to nothing: %v", err)
	}
	sw.mu.Lock()
	held := sw.sizes["haven.test/p1"]
	sw.mu.Unlock()
	if held != 0 {
		t.Fatalf("the witness that went backwards was seeded again at %d", held)
	}
	// A witness answering with another key's cosignature is not believed.
	impostor, _ := audit.NewTlogWitness(srv.URL, newCosigner("witness.test/w").vkey())
	l2 := audit.NewLog(st, audit.Options{Signer: s, Witnesses: []audit.Witness{impostor}})
	defer l2.Close()
	l2.Append(ctx, audittest.SampleEvent("p1", 12))
	if _, err := l2.Checkpoint(ctx, "p1"); !errors.As(err, &we) || we.Reason != audit.WitnessUnavailable {
		t.Fatalf("a cosignature by an unknown key: %v", err)
	}
}

func TestDirWitnessKeepsOnlyExtensionsOfWhatItHolds(t *testing.T) {
	ctx := context.Background()
	w := audit.DirWitness{Dir: t.TempDir()}
	priv, _, _ := audit.GenerateKey("haven.test")
	s, _ := audit.NewSigner(priv)
	st := memlog.New()
	l := audit.NewLog(st, audit.Options{Signer: s, Witnesses: []audit.Witness{w}})
	defer l.Close()
	for i := range 4 {
		l.Append(ctx, audittest.SampleEvent("p1", i))
	}
	cp, err := l.Checkpoint(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(w.Dir, "p1", "4.note"))
	if err != nil || !bytes.Equal(got, cp.Note) {
		t.Fatalf("witness file: %v", err)
	}
	noProof := func(context.Context, uint64) ([][]byte, error) { return nil, errors.New("no proof") }
	if _, err := w.Publish(ctx, "p1", cp.Note, 4, noProof); err != nil {
		t.Fatalf("publishing the same checkpoint twice: %v", err)
	}
	for i := 4; i < 9; i++ {
		l.Append(ctx, audittest.SampleEvent("p1", i))
	}
	if _, err := l.Checkpoint(ctx, "p1"); err != nil {
		t.Fatalf("a consistent larger checkpoint: %v", err)
	}
	// Other histories signed with the same key: smaller (a rollback),
	// same size, larger but not extending.
	for _, c := range []struct {
		n      int
		reason audit.WitnessReason
	}{{5, audit.WitnessAhead}, {9, audit.WitnessFork}, {12, audit.WitnessFork}} {
		other := audit.NewLog(memlog.New(), audit.Options{Signer: s, Witnesses: []audit.Witness{w}})
		for i := range c.n {
			other.Append(ctx, audittest.SampleEvent("p1", 500+i))
		}
		_, err := other.Checkpoint(ctx, "p1")
		other.Close()
		var we *audit.WitnessError
		if !errors.As(err, &we) || we.Reason != c.reason {
			t.Fatalf("another history of %d: %v, want %s", c.n, err, c.reason)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(w.Dir, "p1", "latest")); !strings.Contains(string(got), "\n9\n") {
		t.Fatalf("the witness's newest checkpoint was replaced: %q", got)
	}
	if _, err := w.Publish(ctx, "../p1", cp.Note, 0, noProof); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("log id with a path: %v", err)
	}
	if _, err := w.Publish(ctx, "p1", []byte("not a checkpoint"), 0, noProof); haven.ErrorCode(err) != haven.EINVALID {
		t.Fatalf("garbage note: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(w.Dir, "p1"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
	if list, err := w.Checkpoints("p1"); err != nil || len(list) != 2 {
		t.Fatalf("Checkpoints = %d, %v", len(list), err)
	}
}

func TestConcurrentPublishersOfOneCheckpointAgree(t *testing.T) {
	w := audit.DirWitness{Dir: t.TempDir()}
	_, cp := signedCheckpoint(t, "p1", 2)
	noProof := func(context.Context, uint64) ([][]byte, error) { return nil, errors.New("no proof") }
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := w.Publish(context.Background(), "p1", cp.Note, 0, noProof); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
