package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"haven"
	"haven/keyring"
	"haven/keyring/memstore"
)

var noteAD = keyring.AD{PracticeID: "p1", PatientID: "alice", Kind: "note", RecordID: "n1", Field: "body"}

func TestSealedValueOpensOnlyWhereItBelongs(t *testing.T) {
	k, _, _ := newKeyring(t)
	s := mustSeal(t, k, noteAD, "diagnosis: hypertension")
	mustOpen(t, k, noteAD, s, "diagnosis: hypertension")
	// Give the other patient and practice keys of their own, so the
	// attempts below reach the cipher instead of failing on a missing key.
	mustSeal(t, k, keyring.AD{PracticeID: "p1", PatientID: "bob", Kind: "note", RecordID: "n2", Field: "body"}, "x")
	mustSeal(t, k, keyring.AD{PracticeID: "p2", PatientID: "alice", Kind: "note", RecordID: "n1", Field: "body"}, "x")

	moved := map[string]keyring.AD{}
	for name, edit := range map[string]func(*keyring.AD){
		"another record":   func(a *keyring.AD) { a.RecordID = "n2" },
		"another field":    func(a *keyring.AD) { a.Field = "summary" },
		"another kind":     func(a *keyring.AD) { a.Kind = "message" },
		"another patient":  func(a *keyring.AD) { a.PatientID = "bob" },
		"another practice": func(a *keyring.AD) { a.PracticeID = "p2" },
		"practice level":   func(a *keyring.AD) { a.PatientID = "" },
		"unknown patient":  func(a *keyring.AD) { a.PatientID = "carol" },
	} {
		ad := noteAD
		edit(&ad)
		moved[name] = ad
	}
	for name, ad := range moved {
		if pt, err := k.Open(context.Background(), ad, s); err == nil {
			t.Errorf("ciphertext moved to %s opened: %q", name, pt)
		}
	}
}

func TestSealedFieldEncodingIsUnambiguous(t *testing.T) {
	k, _, _ := newKeyring(t)
	a := keyring.AD{PracticeID: "p1", PatientID: "alice", Kind: "ab", RecordID: "c", Field: "f"}
	b := keyring.AD{PracticeID: "p1", PatientID: "alice", Kind: "a", RecordID: "bc", Field: "f"}
	s := mustSeal(t, k, a, "v")
	if _, err := k.Open(context.Background(), b, s); !errors.Is(err, keyring.ErrTampered) {
		t.Fatalf("opened under a different AD with the same concatenation: %v", err)
	}
}

func TestFlippedBitAnywhereFailsToOpen(t *testing.T) {
	k, _, _ := newKeyring(t)
	s := mustSeal(t, k, noteAD, "allergic to penicillin")
	for i := range len(s) * 8 {
		b := bytes.Clone(s)
		b[i/8] ^= 1 << (i % 8)
		if pt, err := k.Open(context.Background(), noteAD, b); err == nil {
			t.Fatalf("bit %d flipped and still opened: %q", i, pt)
		}
	}
	for n := range len(s) {
		if _, err := k.Open(context.Background(), noteAD, s[:n]); err == nil {
			t.Fatalf("truncated to %d bytes and still opened", n)
		}
	}
	if _, err := k.Open(context.Background(), noteAD, append(bytes.Clone(s), 0)); err == nil {
		t.Fatal("extended by a byte and still opened")
	}
}

func TestSealedValueHidesPlaintextAndRepeats(t *testing.T) {
	k, _, _ := newKeyring(t)
	pt := "mrn-000123-marker"
	s1, s2 := mustSeal(t, k, noteAD, pt), mustSeal(t, k, noteAD, pt)
	if bytes.Contains(s1, []byte(pt)) || bytes.Contains(s1, []byte("marker")) {
		t.Fatal("plaintext visible in sealed value")
	}
	if bytes.Equal(s1, s2) {
		t.Fatal("sealing twice gave the same bytes: equal values would be linkable")
	}
	if len(s1) != len(pt)+34 {
		t.Fatalf("sealed length %d, want plaintext + 34", len(s1))
	}
	mustOpen(t, k, noteAD, s1, pt)
	mustOpen(t, k, noteAD, s2, pt)
}

func TestPracticeAndPlatformRecordsSealWithoutAPatient(t *testing.T) {
	k, _, _ := newKeyring(t)
	staff := keyring.AD{PracticeID: "p1", Kind: "user", RecordID: "u1", Field: "email"}
	op := keyring.AD{PracticeID: keyring.PlatformPracticeID, Kind: "user", RecordID: "u2", Field: "email"}
	s := mustSeal(t, k, staff, "nurse@clinic.example")
	mustOpen(t, k, staff, s, "nurse@clinic.example")
	o := mustSeal(t, k, op, "ops@haven.example")
	mustOpen(t, k, op, o, "ops@haven.example")
	if _, err := k.Open(context.Background(), op, s); err == nil {
		t.Fatal("a practice's record opened as a platform record")
	}
}

func TestSealingWithoutPracticeOrPlaceIsRefused(t *testing.T) {
	k, _, _ := newKeyring(t)
	for _, ad := range []keyring.AD{
		{PatientID: "alice", Kind: "note", RecordID: "n1", Field: "body"},
		{PracticeID: "p1", RecordID: "n1", Field: "body"},
		{PracticeID: "p1", Kind: "note", Field: "body"},
		{PracticeID: "p1", Kind: "note", RecordID: "n1"},
	} {
		_, err := k.Seal(context.Background(), ad, []byte("x"))
		wantCode(t, err, haven.EINVALID)
	}
}

// gatedStore holds the first n data-key reads until all n have arrived, so
// every racer sees "no key yet" and all of them try to create one.
type gatedStore struct {
	*memstore.Store
	n       int
	mu      sync.Mutex
	arrived int
	release chan struct{}
}

func (g *gatedStore) GetKey(ctx context.Context, practiceID, kind, patientID string, version int) (haven.WrappedKey, error) {
	wk, err := g.Store.GetKey(ctx, practiceID, kind, patientID, version)
	if kind == keyring.KindData {
		g.mu.Lock()
		g.arrived++
		if g.arrived == g.n {
			close(g.release)
		}
		wait := g.arrived <= g.n
		g.mu.Unlock()
		if wait {
			<-g.release
		}
	}
	return wk, err
}

func TestConcurrentFirstSealsMakeOneDataKey(t *testing.T) {
	const n = 8
	store := &gatedStore{Store: memstore.New(), n: n, release: make(chan struct{})}
	root := newRoot(t, "root.key")
	k := openKeyring(t, store, root)
	sealed := make([]haven.Sealed, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { sealed[i], errs[i] = k.Seal(context.Background(), noteAD, []byte("same patient")) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []string{keyring.KindData, keyring.KindPractice} {
		keys, err := store.ListKeys(context.Background(), "p1", kind, "", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 {
			t.Fatalf("%d %s keys after concurrent first use, want 1", len(keys), kind)
		}
	}
	// Every racer's ciphertext opens, on a fresh keyring with a cold cache.
	k2 := openKeyring(t, store.Store, root)
	for _, s := range sealed {
		mustOpen(t, k2, noteAD, s, "same patient")
	}
}

func TestBlindIndexIsStableAndSeparated(t *testing.T) {
	k, store, _ := newKeyring(t)
	ctx := context.Background()
	idx := func(practice, purpose, v string) string {
		b, err := k.BlindIndex(ctx, practice, purpose, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 32 {
			t.Fatalf("index of %d bytes", len(b))
		}
		return string(b)
	}
	a := idx("p1", "email", "alice@example.com")
	if a != idx("p1", "email", "alice@example.com") {
		t.Fatal("same value gave different indexes")
	}
	seen := map[string]string{"p1/email/alice": a}
	for name, v := range map[string]string{
		"p1/email/bob":      idx("p1", "email", "bob@example.com"),
		"p1/mrn/alice":      idx("p1", "mrn", "alice@example.com"),
		"p2/email/alice":    idx("p2", "email", "alice@example.com"),
		"platform/email/al": idx(keyring.PlatformPracticeID, "email", "alice@example.com"),
	} {
		for other, w := range seen {
			if v == w {
				t.Fatalf("%s and %s share an index", name, other)
			}
		}
		seen[name] = v
	}
	if bytes.Contains([]byte(a), []byte("alice")) {
		t.Fatal("index contains the value")
	}
	// The index key is a key of its own, wrapped by the root.
	keys, _ := store.ListKeys(ctx, "p1", keyring.KindIndex, "", "", 10)
	if len(keys) != 1 || keys[0].WrappedBy != k.RootID() {
		t.Fatalf("index keys of p1: %+v", keys)
	}
	_, err := k.BlindIndex(ctx, "p1", "Email Address", []byte("x"))
	wantCode(t, err, haven.EINVALID)
	_, err = k.BlindIndex(ctx, "", "email", []byte("x"))
	wantCode(t, err, haven.EINVALID)
}

func TestBlindIndexSurvivesRestart(t *testing.T) {
	k, store, root := newKeyring(t)
	ctx := context.Background()
	a, err := k.BlindIndex(ctx, "p1", "email", []byte("alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	k2 := openKeyring(t, store, root)
	b, err := k2.BlindIndex(ctx, "p1", "email", []byte("alice@example.com"))
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("index changed across restart: %v", err)
	}
}

// TestNewDataKeySealsARecordBeforeItsKeyIsStored: a key made for a record
// about to be created seals that patient's fields under the context it
// came with, and is stored by nobody but the caller: until then another
// node (or this one, outside that context) cannot open them, and after
// the caller stores it every node can. Another patient's fields under the
// same context use their own key, and the key never reaches the cache:
// a registration that fails leaves nothing behind to use.
func TestNewDataKeySealsARecordBeforeItsKeyIsStored(t *testing.T) {
	k, store, root := newKeyring(t)
	ctx := context.Background()
	nctx, wk, err := k.NewDataKey(ctx, "p1", "pt-new")
	if err != nil {
		t.Fatal(err)
	}
	if wk.Kind != keyring.KindData || wk.PracticeID != "p1" || wk.PatientID != "pt-new" || wk.Version != 1 || wk.State != keyring.StateActive {
		t.Fatalf("new key %+v", wk)
	}
	ad := keyring.AD{PracticeID: "p1", PatientID: "pt-new", Kind: "chart", RecordID: "pt-new", Field: "mrn"}
	sealed, err := k.Seal(nctx, ad, []byte("MRN-77"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetKey(ctx, "p1", keyring.KindData, "pt-new", 0); haven.ErrorCode(err) != haven.ENOTFOUND {
		t.Fatalf("the new key was stored by the keyring: %v", err)
	}
	if got, err := k.Open(nctx, ad, sealed); err != nil || string(got) != "MRN-77" {
		t.Fatalf("open under the key's context: %q, %v", got, err)
	}
	if _, err := k.Open(ctx, ad, sealed); haven.ErrorCode(err) != haven.ENOTFOUND {
		t.Fatalf("opened without the key's context before it was stored (cached?): %v", err)
	}

	// Another patient under the same context: her own key, stored as usual.
	other := keyring.AD{PracticeID: "p1", PatientID: "pt-other", Kind: "chart", RecordID: "pt-other", Field: "mrn"}
	otherSealed, err := k.Seal(nctx, other, []byte("MRN-78"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetKey(ctx, "p1", keyring.KindData, "pt-other", 0); err != nil {
		t.Fatalf("another patient's key: %v", err)
	}
	// The same patient id in another practice is another key as well.
	if _, err := k.Seal(nctx, keyring.AD{PracticeID: "p2", PatientID: "pt-new", Kind: "chart", RecordID: "pt-new", Field: "mrn"}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetKey(ctx, "p2", keyring.KindData, "pt-new", 0); err != nil {
		t.Fatalf("the new key sealed another practice's record: %v", err)
	}

	if err := store.CreateKey(ctx, wk); err != nil {
		t.Fatal(err)
	}
	fresh := openKeyring(t, store, root)
	mustOpen(t, fresh, ad, sealed, "MRN-77")
	mustOpen(t, fresh, other, otherSealed, "MRN-78")
	mustOpen(t, k, ad, sealed, "MRN-77")

	if _, _, err := k.NewDataKey(ctx, "p1", ""); haven.ErrorCode(err) != haven.EINVALID {
		t.Errorf("a new key for no patient: %v", err)
	}
}
