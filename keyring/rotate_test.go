package keyring_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/keyring"
	"haven/keyring/memstore"
)

// chart is a small deployment: sealed fields for several patients in two
// practices, practice-level fields, a stream and blind indexes, with what
// each must open to.
type chart struct {
	fields  map[keyring.AD]haven.Sealed
	want    map[keyring.AD]string
	streams map[keyring.AD][]byte
	indexes map[string][]byte
}

func seedChart(t *testing.T, k *keyring.Keyring) *chart {
	t.Helper()
	c := &chart{fields: map[keyring.AD]haven.Sealed{}, want: map[keyring.AD]string{},
		streams: map[keyring.AD][]byte{}, indexes: map[string][]byte{}}
	for _, p := range []string{"p1", "p2"} {
		for _, patient := range []string{"alice", "bob", "carol", ""} {
			ad := keyring.AD{PracticeID: p, PatientID: patient, Kind: "note", RecordID: "r-" + patient, Field: "body"}
			c.want[ad] = "note of " + patient + " at " + p
			c.fields[ad] = mustSeal(t, k, ad, c.want[ad])
		}
		ad := keyring.AD{PracticeID: p, PatientID: "alice", Kind: "blob", RecordID: "b1", Field: "content"}
		c.streams[ad] = sealStream(t, k, ad, []byte("x-ray of alice at "+p), 16)
		ix, err := k.BlindIndex(context.Background(), p, "email", []byte("alice@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		c.indexes[p] = ix
	}
	return c
}

// check opens everything in c through k.
func (c *chart) check(t *testing.T, k *keyring.Keyring) {
	t.Helper()
	for ad, s := range c.fields {
		mustOpen(t, k, ad, s, c.want[ad])
	}
	for ad, s := range c.streams {
		if got, err := openStream(k, ad, s); err != nil || string(got) != "x-ray of alice at "+ad.PracticeID {
			t.Fatalf("stream %+v: %q, %v", ad, got, err)
		}
	}
	for p, want := range c.indexes {
		got, err := k.BlindIndex(context.Background(), p, "email", []byte("alice@example.com"))
		if err != nil || string(got) != string(want) {
			t.Fatalf("blind index of %s changed: %v", p, err)
		}
	}
}

// failingStore fails UpdateKey of keys of one kind ("" for any) after `after` of them
// succeeded: a crash in the middle of a rotation.
type failingStore struct {
	*memstore.Store
	kind  string
	after int

	mu sync.Mutex
	n  int
}

var errCrash = errors.New("simulated crash")

func (f *failingStore) UpdateKey(ctx context.Context, prev, next haven.WrappedKey) error {
	if prev.Kind == f.kind || f.kind == "" {
		f.mu.Lock()
		f.n++
		crash := f.n > f.after
		f.mu.Unlock()
		if crash {
			return errCrash
		}
	}
	return f.Store.UpdateKey(ctx, prev, next)
}

func practiceKeys(t *testing.T, k *keyring.Keyring, practiceID string) []keyring.KeyReport {
	t.Helper()
	rep, err := k.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []keyring.KeyReport
	for _, p := range rep.Practices {
		if p.PracticeID == practiceID {
			for _, kr := range p.Keys {
				if kr.Kind == keyring.KindPractice {
					out = append(out, kr)
				}
			}
		}
	}
	return out
}

func TestRootRotationKeepsDataReadableAndFreesOldRoot(t *testing.T) {
	k, store, rootA := newKeyring(t)
	c := seedChart(t, k)
	rootB := newRoot(t, "new-root.key")
	var last [2]int
	if err := k.RotateRoot(context.Background(), rootB, func(done, total int) { last = [2]int{done, total} }); err != nil {
		t.Fatal(err)
	}
	if last != [2]int{4, 4} { // two practices × (practice key + index key)
		t.Fatalf("final progress %v, want [4 4]", last)
	}
	c.check(t, k)
	// A cold keyring with only the new root reads everything: nothing
	// depends on the old root any more.
	c.check(t, openKeyring(t, store, rootB))
	if _, err := keyring.Open(context.Background(), keyring.Config{Store: store, Root: rootA}); err == nil {
		t.Fatal("keyring still opens with the retired root alone")
	}
	rep, _ := k.Status(context.Background())
	if rep.Root != rootB.ID() || rep.RootUse[rootA.ID()] != 0 || rep.RootUse[rootB.ID()] != 4 {
		t.Fatalf("status after root rotation: %+v", rep)
	}
	// New practices get keys under the new root.
	mustSeal(t, k, keyring.AD{PracticeID: "p3", PatientID: "dan", Kind: "note", RecordID: "r", Field: "body"}, "x")
	if rep, _ := k.Status(context.Background()); rep.RootUse[rootB.ID()] != 5 {
		t.Fatalf("new practice key not under the new root: %+v", rep.RootUse)
	}
}

func TestInterruptedRootRotationResumes(t *testing.T) {
	for _, after := range []int{0, 1, 3} {
		mem := memstore.New()
		rootA := newRoot(t, "a.key")
		c := seedChart(t, openKeyring(t, mem, rootA))
		rootB := newRoot(t, "b.key")

		crashing := openKeyring(t, &failingStore{Store: mem, after: after}, rootA)
		if err := crashing.RotateRoot(context.Background(), rootB, nil); !errors.Is(err, errCrash) {
			t.Fatalf("after %d: rotation did not stop: %v", after, err)
		}
		// Mid-rotation, a restarted node with both roots reads everything,
		// and one with only the new root is told what is missing.
		restarted := openKeyring(t, mem, rootB, rootA)
		c.check(t, restarted)
		if _, err := keyring.Open(context.Background(), keyring.Config{Store: mem, Root: rootB}); err == nil {
			t.Fatalf("after %d: opened with only the new root while keys remain under the old", after)
		}
		if err := restarted.RotateRoot(context.Background(), rootB, nil); err != nil {
			t.Fatal(err)
		}
		c.check(t, openKeyring(t, mem, rootB))
	}
}

func TestPracticeKeyRotationRewrapsDataKeysAndRetiresOldVersion(t *testing.T) {
	k, store, root := newKeyring(t)
	c := seedChart(t, k)
	var last [2]int
	if err := k.RotatePracticeKey(context.Background(), "p1", func(done, total int) { last = [2]int{done, total} }); err != nil {
		t.Fatal(err)
	}
	if last != [2]int{4, 4} { // alice, bob, carol and the practice's own data key
		t.Fatalf("final progress %v, want [4 4]", last)
	}
	keys := practiceKeys(t, k, "p1")
	if len(keys) != 2 || keys[0].State != keyring.StateRetired || keys[0].DataKeys != 0 ||
		keys[1].State != keyring.StateActive || keys[1].DataKeys != 4 || keys[1].Version != 2 {
		t.Fatalf("p1 practice keys after rotation: %+v", keys)
	}
	if p2 := practiceKeys(t, k, "p2"); len(p2) != 1 || p2[0].State != keyring.StateActive {
		t.Fatalf("rotating p1 touched p2: %+v", p2)
	}
	// The very same ciphertexts open, warm and cold: data was not
	// re-encrypted, only its keys re-wrapped.
	c.check(t, k)
	c.check(t, openKeyring(t, store, root))

	mustSeal(t, k, keyring.AD{PracticeID: "p1", PatientID: "dan", Kind: "note", RecordID: "r", Field: "body"}, "x")
	if keys := practiceKeys(t, k, "p1"); keys[1].DataKeys != 5 {
		t.Fatalf("new patient's key not under the new practice key: %+v", keys)
	}
	if err := k.RotatePracticeKey(context.Background(), "p1", nil); err != nil {
		t.Fatal(err)
	}
	keys = practiceKeys(t, k, "p1")
	if len(keys) != 3 || keys[1].State != keyring.StateRetired || keys[2].DataKeys != 5 {
		t.Fatalf("second rotation: %+v", keys)
	}
	c.check(t, openKeyring(t, store, root))
}

func TestInterruptedPracticeKeyRotationResumes(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		after int
	}{
		{keyring.KindData, 0}, {keyring.KindData, 1}, {keyring.KindData, 3},
		{keyring.KindPractice, 0}, // every data key moved, the old version not yet retired
	} {
		mem := memstore.New()
		root := newRoot(t, "root.key")
		c := seedChart(t, openKeyring(t, mem, root))

		crashing := openKeyring(t, &failingStore{Store: mem, kind: tc.kind, after: tc.after}, root)
		if err := crashing.RotatePracticeKey(context.Background(), "p1", nil); !errors.Is(err, errCrash) {
			t.Fatalf("%+v: rotation did not stop: %v", tc, err)
		}
		restarted := openKeyring(t, mem, root)
		c.check(t, restarted) // nothing unreadable mid-rotation

		if err := restarted.RotatePracticeKey(context.Background(), "p1", nil); err != nil {
			t.Fatal(err)
		}
		keys := practiceKeys(t, restarted, "p1")
		if len(keys) != 2 || keys[0].State != keyring.StateRetired || keys[0].DataKeys != 0 || keys[1].DataKeys != 4 {
			t.Fatalf("%+v: resumed rotation left %+v", tc, keys)
		}
		c.check(t, openKeyring(t, mem, root))
	}
}

func TestShreddedPatientCannotBeReadWhileOthersCan(t *testing.T) {
	k, store, root := newKeyring(t)
	c := seedChart(t, k)
	alice := keyring.AD{PracticeID: "p1", PatientID: "alice", Kind: "note", RecordID: "r-alice", Field: "body"}
	aliceBlob := keyring.AD{PracticeID: "p1", PatientID: "alice", Kind: "blob", RecordID: "b1", Field: "content"}
	k.Open(context.Background(), alice, c.fields[alice]) // make sure the key is cached

	if err := k.ShredPatient(context.Background(), "p1", "alice"); err != nil {
		t.Fatal(err)
	}
	for name, kr := range map[string]*keyring.Keyring{"same node": k, "cold node": openKeyring(t, store, root)} {
		_, err := kr.Open(context.Background(), alice, c.fields[alice])
		wantCode(t, err, haven.ENOTFOUND)
		if !errors.Is(err, keyring.ErrKeyDestroyed) {
			t.Fatalf("%s: %v is not 'data key destroyed'", name, err)
		}
		_, err = openStream(kr, aliceBlob, c.streams[aliceBlob])
		wantCode(t, err, haven.ENOTFOUND)
		_, err = kr.Seal(context.Background(), alice, []byte("new note"))
		wantCode(t, err, haven.ENOTFOUND)
		// Everyone else is untouched, alice at the other practice included.
		for ad, s := range c.fields {
			if ad.PracticeID == "p1" && ad.PatientID == "alice" {
				continue
			}
			mustOpen(t, kr, ad, s, c.want[ad])
		}
	}
	wk, err := store.GetKey(context.Background(), "p1", keyring.KindData, "alice", 1)
	if err != nil || wk.State != keyring.StateDestroyed || wk.Wrapped != nil || wk.WrappedBy != "" {
		t.Fatalf("stored key after shredding: %+v, %v", wk, err)
	}
	if err := k.ShredPatient(context.Background(), "p1", "alice"); err != nil {
		t.Fatalf("shredding twice: %v", err)
	}
	wantCode(t, k.ShredPatient(context.Background(), "p1", ""), haven.EINVALID)
}

func TestShreddingAnUnknownPatientBlocksLaterSealing(t *testing.T) {
	k, _, _ := newKeyring(t)
	if err := k.ShredPatient(context.Background(), "p1", "erin"); err != nil {
		t.Fatal(err)
	}
	_, err := k.Seal(context.Background(), keyring.AD{PracticeID: "p1", PatientID: "erin", Kind: "note", RecordID: "r", Field: "body"}, []byte("x"))
	wantCode(t, err, haven.ENOTFOUND)
}

// shredOnFirstRewrap shreds the patient whose data key a rotation is
// about to re-wrap, just before the rotation writes it.
type shredOnFirstRewrap struct {
	*memstore.Store
	shred func(patientID string)
	once  sync.Once
}

func (s *shredOnFirstRewrap) UpdateKey(ctx context.Context, prev, next haven.WrappedKey) error {
	if prev.Kind == keyring.KindData && prev.PatientID != "" && next.State == keyring.StateActive {
		s.once.Do(func() { s.shred(prev.PatientID) })
	}
	return s.Store.UpdateKey(ctx, prev, next)
}

func TestRotationNeverRevivesAKeyShreddedMeanwhile(t *testing.T) {
	mem := memstore.New()
	root := newRoot(t, "root.key")
	other := openKeyring(t, mem, root)
	c := seedChart(t, other)
	var victim string
	store := &shredOnFirstRewrap{Store: mem, shred: func(patientID string) {
		victim = patientID
		if err := other.ShredPatient(context.Background(), "p1", patientID); err != nil {
			t.Error(err)
		}
	}}
	k := openKeyring(t, store, root)
	if err := k.RotatePracticeKey(context.Background(), "p1", nil); err != nil {
		t.Fatal(err)
	}
	if victim == "" {
		t.Fatal("no data key was re-wrapped")
	}
	wk, err := mem.GetKey(context.Background(), "p1", keyring.KindData, victim, 1)
	if err != nil || wk.State != keyring.StateDestroyed || wk.Wrapped != nil {
		t.Fatalf("rotation revived a shredded key: %+v, %v", wk, err)
	}
	ad := keyring.AD{PracticeID: "p1", PatientID: victim, Kind: "note", RecordID: "r-" + victim, Field: "body"}
	_, err = openKeyring(t, mem, root).Open(context.Background(), ad, c.fields[ad])
	wantCode(t, err, haven.ENOTFOUND)
}

// A shred on one node is in force on another on its very next use, long
// before the other's cache would expire: the clock never moves here.
func TestShredOnOneNodeIsInForceOnAnotherAtOnce(t *testing.T) {
	mem := memstore.New()
	root := newRoot(t, "root.key")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	open := func() *keyring.Keyring {
		k, err := keyring.Open(context.Background(), keyring.Config{Store: mem, Root: root, CacheTTL: time.Hour,
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		return k
	}
	node1, node2 := open(), open()
	s := mustSeal(t, node1, noteAD, "x")
	bob := keyring.AD{PracticeID: "p1", PatientID: "bob", Kind: "note", RecordID: "r", Field: "body"}
	sb := mustSeal(t, node1, bob, "y")
	mustOpen(t, node2, noteAD, s, "x") // node2 caches alice's key
	mustOpen(t, node2, bob, sb, "y")
	if err := node1.ShredPatient(context.Background(), "p1", "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := node2.Open(context.Background(), noteAD, s)
	wantCode(t, err, haven.ENOTFOUND)
	if !errors.Is(err, keyring.ErrKeyDestroyed) {
		t.Fatalf("%v is not 'data key destroyed'", err)
	}
	_, err = node2.Seal(context.Background(), noteAD, []byte("new"))
	wantCode(t, err, haven.ENOTFOUND)
	mustOpen(t, node2, bob, sb, "y")
}

func TestStatusHoldsNoKeyMaterial(t *testing.T) {
	k, store, _ := newKeyring(t)
	seedChart(t, k)
	rep, err := k.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Practices) != 2 || rep.Practices[0].DataKeys != 4 || len(rep.Practices[0].Keys) != 2 {
		t.Fatalf("status: %+v", rep)
	}
	keys, _ := store.ListKeys(context.Background(), "", "", "", "", 1000)
	dump := []byte(fmtReport(rep))
	for _, wk := range keys {
		if len(wk.Wrapped) > 8 && containsBytes(dump, wk.Wrapped[8:16]) {
			t.Fatal("status report contains wrapped key bytes")
		}
	}
}

// One key-state read serves every use under a Checked context (one
// request opening many fields); a shred is in force for every request that
// begins after it, checked or not.
func TestCheckedContextReadsTheKeyStateOnce(t *testing.T) {
	mem := memstore.New()
	root := newRoot(t, "root.key")
	counter := &countingStore{Store: mem}
	node1, node2 := openKeyring(t, mem, root), openKeyring(t, counter, root)
	s := mustSeal(t, node1, noteAD, "x")
	mustOpen(t, node2, noteAD, s, "x")
	request, err := node2.Checked(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := counter.reads()
	for range 5 {
		if _, err := node2.Open(request, noteAD, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := counter.reads() - before; n != 0 {
		t.Fatalf("%d key-state reads under one checked context, want none beyond Checked's own", n)
	}
	if err := node1.ShredPatient(context.Background(), "p1", "alice"); err != nil {
		t.Fatal(err)
	}
	next, err := node2.Checked(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = node2.Open(next, noteAD, s)
	wantCode(t, err, haven.ENOTFOUND)
	_, err = node2.Open(context.Background(), noteAD, s)
	wantCode(t, err, haven.ENOTFOUND)
}

// countingStore counts key-state reads.
type countingStore struct {
	*memstore.Store
	mu sync.Mutex
	n  int
}

func (c *countingStore) KeyState(ctx context.Context) (int64, string, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Store.KeyState(ctx)
}

func (c *countingStore) reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// CheckedAs takes a key-state read made by the caller from the keyring's
// own store: the opens under it read nothing, and a shred made on another
// node after that read is seen by the next request's read. A read from
// any other store is ignored, and the opens read the state themselves.
func TestCheckedAsUsesOnlyAReadOfItsOwnStore(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	root := newRoot(t, "root.key")
	counter := &countingStore{Store: mem}
	node1, node2 := openKeyring(t, mem, root), openKeyring(t, counter, root)
	s := mustSeal(t, node1, noteAD, "x")
	mustOpen(t, node2, noteAD, s, "x")
	read := func() (int64, string) {
		v, r, err := counter.KeyState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v, r
	}
	v, r := read()
	before := counter.reads()
	request := node2.CheckedAs(ctx, counter, v, r)
	if _, err := node2.Open(request, noteAD, s); err != nil {
		t.Fatal(err)
	}
	if n := counter.reads() - before; n != 0 {
		t.Fatalf("%d key-state reads under the caller's read, want none", n)
	}
	// Another store's read (here: the same rows through another handle)
	// is not taken: the open reads for itself.
	foreign := node2.CheckedAs(ctx, mem, v, r)
	before = counter.reads()
	if _, err := node2.Open(foreign, noteAD, s); err != nil {
		t.Fatal(err)
	}
	if n := counter.reads() - before; n != 1 {
		t.Fatalf("%d key-state reads under another store's read, want 1", n)
	}
	if err := node1.ShredPatient(ctx, "p1", "alice"); err != nil {
		t.Fatal(err)
	}
	v, r = read()
	_, err := node2.Open(node2.CheckedAs(ctx, counter, v, r), noteAD, s)
	wantCode(t, err, haven.ENOTFOUND)
}
