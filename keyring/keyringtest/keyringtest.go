// Package keyringtest is the behaviour every keyring.Store must have,
// written once and run against each implementation (the in-memory store,
// and the SQL store on SQLite and PostgreSQL), so that what the keyring
// relies on for rotation and shredding holds on every backend: unique keys,
// compare-and-swap updates of which only one of several racing writers
// wins, overwritten bytes on destruction, and a key-state version that
// rises with every change so that other nodes see it at once.
//
// It stores only keys it makes up, wrapped under throw-away roots.
package keyringtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/keyring"
)

// RunStoreSuite runs the conformance suite. newStore must return an empty
// store of its own for each call; a store may be shared by several keyrings
// (that is how several nodes share one database).
func RunStoreSuite(t *testing.T, newStore func(t *testing.T) keyring.Store) {
	t.Run("CreateAndGet", func(t *testing.T) { testCreateAndGet(t, newStore(t)) })
	t.Run("CreateConflicts", func(t *testing.T) { testCreateConflicts(t, newStore(t)) })
	t.Run("ListFiltersAndPages", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("UpdateIsCompareAndSwap", func(t *testing.T) { testUpdateCAS(t, newStore(t)) })
	t.Run("DestroyOverwritesTheWrappedBytes", func(t *testing.T) { testDestroy(t, newStore(t)) })
	t.Run("KeyStateRisesWithEveryChange", func(t *testing.T) { testKeyState(t, newStore(t)) })
	t.Run("ConcurrentUpdatesOnlyOneWins", func(t *testing.T) { testConcurrentUpdates(t, newStore(t)) })
	t.Run("ConcurrentCreatesOnlyOneWins", func(t *testing.T) { testConcurrentCreates(t, newStore(t)) })
	t.Run("ConcurrentSetRootOnlyOneWins", func(t *testing.T) { testConcurrentSetRoot(t, newStore(t)) })
	t.Run("ShredIsSeenByEveryKeyringAtOnce", func(t *testing.T) { testShredAcrossKeyrings(t, newStore(t)) })
	t.Run("ConcurrentPracticeRotationsSettleOnOneVersion", func(t *testing.T) { testConcurrentPracticeRotations(t, newStore(t)) })
	t.Run("ConcurrentRootRotationsOnlyOneWins", func(t *testing.T) { testConcurrentRootRotations(t, newStore(t)) })
	t.Run("RootRotationReachesARunningKeyring", func(t *testing.T) { testRootRotationReachesRunningKeyring(t, newStore(t)) })
	t.Run("ShredRacingARotationStaysShredded", func(t *testing.T) { testShredRacingRotation(t, newStore(t)) })
	t.Run("ConcurrentSigningKeyCreationsSettleOnOne", func(t *testing.T) { testConcurrentSigners(t, newStore(t)) })
	t.Run("SigningKeySurvivesRestartAndRotation", func(t *testing.T) { testSignerAcrossRestartAndRotation(t, newStore(t)) })
}

var ctx = context.Background()

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := haven.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func key(practice, kind, patient string, version int, wrappedBy string) haven.WrappedKey {
	return haven.WrappedKey{PracticeID: practice, ID: haven.NewID(), Kind: kind, PatientID: patient, Version: version,
		WrappedBy: wrappedBy, Wrapped: []byte("wrapped:" + practice + "/" + kind + "/" + patient + fmt.Sprint(version)),
		State: keyring.StateActive, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
}

func mustCreate(t *testing.T, s keyring.Store, k haven.WrappedKey) haven.WrappedKey {
	t.Helper()
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatalf("create %s v%d: %v", k.Kind, k.Version, err)
	}
	return k
}

func sameKey(t *testing.T, got, want haven.WrappedKey) {
	t.Helper()
	if got.PracticeID != want.PracticeID || got.ID != want.ID || got.Kind != want.Kind || got.PatientID != want.PatientID ||
		got.Version != want.Version || got.WrappedBy != want.WrappedBy || !bytes.Equal(got.Wrapped, want.Wrapped) ||
		got.State != want.State || got.CreatedAt.Sub(want.CreatedAt).Abs() > time.Millisecond {
		t.Fatalf("stored key\n%+v\nwant\n%+v", got, want)
	}
}

func testCreateAndGet(t *testing.T, s keyring.Store) {
	v1 := mustCreate(t, s, key("p1", keyring.KindData, "alice", 1, "pk1"))
	v2 := mustCreate(t, s, key("p1", keyring.KindData, "alice", 2, "pk1"))
	mustCreate(t, s, key("p1", keyring.KindData, "bob", 1, "pk1"))
	mustCreate(t, s, key("p2", keyring.KindData, "alice", 3, "pk2"))
	got, err := s.GetKey(ctx, "p1", keyring.KindData, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, got, v2) // version 0 is the newest of exactly this practice and patient
	if got, err = s.GetKey(ctx, "p1", keyring.KindData, "alice", 1); err != nil {
		t.Fatal(err)
	}
	sameKey(t, got, v1)
	for _, q := range [][4]any{{"p1", keyring.KindData, "alice", 3}, {"p1", keyring.KindData, "carol", 0},
		{"p1", keyring.KindPractice, "", 0}, {"p3", keyring.KindData, "alice", 0}} {
		_, err := s.GetKey(ctx, q[0].(string), q[1].(string), q[2].(string), q[3].(int))
		wantCode(t, err, haven.ENOTFOUND)
	}
}

func testCreateConflicts(t *testing.T, s keyring.Store) {
	k := mustCreate(t, s, key("p1", keyring.KindPractice, "", 1, "root-a"))
	sameID := key("p2", keyring.KindIndex, "", 1, "root-a")
	sameID.ID = k.ID
	wantCode(t, s.CreateKey(ctx, sameID), haven.ECONFLICT)
	sameSlot := key("p1", keyring.KindPractice, "", 1, "root-b")
	wantCode(t, s.CreateKey(ctx, sameSlot), haven.ECONFLICT)
	got, err := s.GetKey(ctx, "p1", keyring.KindPractice, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, got, k)
	if _, err := s.GetKey(ctx, "p2", keyring.KindIndex, "", 1); haven.ErrorCode(err) != haven.ENOTFOUND {
		t.Fatalf("a refused create left a key behind: %v", err)
	}
}

func testList(t *testing.T, s keyring.Store) {
	var all []haven.WrappedKey
	for _, p := range []string{"p1", "p2"} {
		all = append(all, mustCreate(t, s, key(p, keyring.KindPractice, "", 1, "root-a")))
		all = append(all, mustCreate(t, s, key(p, keyring.KindIndex, "", 1, "root-b")))
		for i, patient := range []string{"alice", "bob", "carol"} {
			all = append(all, mustCreate(t, s, key(p, keyring.KindData, patient, 1, fmt.Sprintf("pk-%s-%d", p, i%2))))
		}
	}
	ids := func(ks []haven.WrappedKey) []string {
		var out []string
		for _, k := range ks {
			out = append(out, k.ID)
		}
		return out
	}
	want := func(f func(haven.WrappedKey) bool) []string {
		var out []string
		for _, k := range all {
			if f(k) {
				out = append(out, k.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	page := func(practice, kind, wrappedBy string) []string {
		var out []string
		after := ""
		for range 100 {
			ks, err := s.ListKeys(ctx, practice, kind, wrappedBy, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(ks) > 2 {
				t.Fatalf("list returned %d keys with limit 2", len(ks))
			}
			out = append(out, ids(ks)...)
			if len(ks) < 2 {
				return out
			}
			after = ks[len(ks)-1].ID
		}
		t.Fatal("paging does not end")
		return nil
	}
	for _, tc := range []struct{ practice, kind, wrappedBy string }{
		{"", "", ""}, {"p1", "", ""}, {"", keyring.KindData, ""}, {"", "", "root-a"},
		{"p2", keyring.KindData, "pk-p2-1"}, {"p3", "", ""},
	} {
		got := page(tc.practice, tc.kind, tc.wrappedBy)
		exp := want(func(k haven.WrappedKey) bool {
			return (tc.practice == "" || k.PracticeID == tc.practice) && (tc.kind == "" || k.Kind == tc.kind) &&
				(tc.wrappedBy == "" || k.WrappedBy == tc.wrappedBy)
		})
		if !slices.Equal(got, exp) {
			t.Fatalf("list %+v = %v, want %v (ascending id order, each once)", tc, got, exp)
		}
	}
}

func testUpdateCAS(t *testing.T, s keyring.Store) {
	k := mustCreate(t, s, key("p1", keyring.KindData, "alice", 1, "pk1"))
	next := k
	next.WrappedBy, next.Wrapped = "pk2", []byte("re-wrapped under pk2")
	// Fields other than the wrapping and state are not the store's to change.
	next.Version, next.PatientID, next.PracticeID = 9, "mallory", "p9"
	if err := s.UpdateKey(ctx, k, next); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetKey(ctx, "p1", keyring.KindData, "alice", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := k
	want.WrappedBy, want.Wrapped = "pk2", next.Wrapped
	sameKey(t, got, want)
	// The same step again starts from a state that is gone.
	wantCode(t, s.UpdateKey(ctx, k, next), haven.ECONFLICT)
	stale := want
	stale.State = keyring.StateRetired
	wantCode(t, s.UpdateKey(ctx, stale, next), haven.ECONFLICT)
	unknown := key("p1", keyring.KindData, "nobody", 1, "pk1")
	wantCode(t, s.UpdateKey(ctx, unknown, unknown), haven.ENOTFOUND)
	if got, _ := s.GetKey(ctx, "p1", keyring.KindData, "alice", 1); got.WrappedBy != "pk2" {
		t.Fatalf("a refused update changed the key: %+v", got)
	}
}

func testDestroy(t *testing.T, s keyring.Store) {
	k := mustCreate(t, s, key("p1", keyring.KindData, "alice", 1, "pk1"))
	dead := k
	dead.WrappedBy, dead.Wrapped, dead.State = "", nil, keyring.StateDestroyed
	if err := s.UpdateKey(ctx, k, dead); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetKey(ctx, "p1", keyring.KindData, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != keyring.StateDestroyed || got.Wrapped != nil || got.WrappedBy != "" {
		t.Fatalf("destroyed key still holds %+v", got)
	}
	// Nothing brings a destroyed key back: a rotation step that read it
	// live fails.
	revived := k
	revived.WrappedBy = "pk2"
	wantCode(t, s.UpdateKey(ctx, k, revived), haven.ECONFLICT)
	// The tombstone keeps its slot, so the key is never silently re-created.
	wantCode(t, s.CreateKey(ctx, key("p1", keyring.KindData, "alice", 1, "pk1")), haven.ECONFLICT)
}

func testKeyState(t *testing.T, s keyring.Store) {
	v0, root, err := s.KeyState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if root != "" {
		t.Fatalf("a new store names root %q", root)
	}
	k := mustCreate(t, s, key("p1", keyring.KindData, "alice", 1, "pk1"))
	next := k
	next.WrappedBy = "pk2"
	if err := s.UpdateKey(ctx, k, next); err != nil {
		t.Fatal(err)
	}
	v1, _, err := s.KeyState(ctx)
	if err != nil || v1 <= v0 {
		t.Fatalf("version %d after an update, was %d (%v)", v1, v0, err)
	}
	wantCode(t, s.UpdateKey(ctx, k, next), haven.ECONFLICT)
	if v, _, _ := s.KeyState(ctx); v != v1 {
		t.Fatalf("a refused update moved the version from %d to %d", v1, v)
	}
	if err := s.SetRoot(ctx, "", "root-a"); err != nil {
		t.Fatal(err)
	}
	v2, root, err := s.KeyState(ctx)
	if err != nil || v2 <= v1 || root != "root-a" {
		t.Fatalf("after SetRoot: version %d (was %d), root %q, %v", v2, v1, root, err)
	}
	wantCode(t, s.SetRoot(ctx, "", "root-b"), haven.ECONFLICT)
	wantCode(t, s.SetRoot(ctx, "root-b", "root-c"), haven.ECONFLICT)
	if v, root, _ := s.KeyState(ctx); v != v2 || root != "root-a" {
		t.Fatalf("a refused SetRoot changed the state: %d %q", v, root)
	}
	if err := s.SetRoot(ctx, "root-a", "root-b"); err != nil {
		t.Fatal(err)
	}
	if v, root, _ := s.KeyState(ctx); v <= v2 || root != "root-b" {
		t.Fatalf("after the second SetRoot: %d %q", v, root)
	}
}

// race runs n copies of fn at once, released together, and returns their
// errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return errs
}

// oneWinner checks that exactly one error is nil and every other has code
// loserCode, and returns the winner's index.
func oneWinner(t *testing.T, errs []error, loserCode string) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("racers %d and %d both won", winner, i)
			}
			winner = i
		} else if haven.ErrorCode(err) != loserCode {
			t.Fatalf("racer %d failed with %v, want %s", i, err, loserCode)
		}
	}
	if winner < 0 {
		t.Fatalf("nobody won: %v", errs)
	}
	return winner
}

const racers = 8

func testConcurrentUpdates(t *testing.T, s keyring.Store) {
	k := mustCreate(t, s, key("p1", keyring.KindPractice, "", 1, "root-a"))
	v0, _, _ := s.KeyState(ctx)
	errs := race(racers, func(i int) error {
		next := k
		next.WrappedBy, next.Wrapped = fmt.Sprintf("root-%d", i), []byte(fmt.Sprintf("wrapped by %d", i))
		return s.UpdateKey(ctx, k, next)
	})
	w := oneWinner(t, errs, haven.ECONFLICT)
	got, err := s.GetKey(ctx, "p1", keyring.KindPractice, "", 1)
	if err != nil || got.WrappedBy != fmt.Sprintf("root-%d", w) || string(got.Wrapped) != fmt.Sprintf("wrapped by %d", w) {
		t.Fatalf("stored %+v (%v), but racer %d won", got, err, w)
	}
	if v, _, _ := s.KeyState(ctx); v <= v0 {
		t.Fatalf("version did not rise: %d", v)
	}
}

func testConcurrentCreates(t *testing.T, s keyring.Store) {
	keys := make([]haven.WrappedKey, racers)
	for i := range keys {
		keys[i] = key("p1", keyring.KindData, "alice", 1, fmt.Sprintf("pk-%d", i))
	}
	errs := race(racers, func(i int) error { return s.CreateKey(ctx, keys[i]) })
	w := oneWinner(t, errs, haven.ECONFLICT)
	got, err := s.GetKey(ctx, "p1", keyring.KindData, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, got, keys[w])
	all, err := s.ListKeys(ctx, "p1", "", "", "", 100)
	if err != nil || len(all) != 1 {
		t.Fatalf("%d keys after the race (%v), want 1", len(all), err)
	}
}

func testConcurrentSetRoot(t *testing.T, s keyring.Store) {
	if err := s.SetRoot(ctx, "", "root-a"); err != nil {
		t.Fatal(err)
	}
	errs := race(racers, func(i int) error { return s.SetRoot(ctx, "root-a", fmt.Sprintf("root-%d", i)) })
	w := oneWinner(t, errs, haven.ECONFLICT)
	if _, root, _ := s.KeyState(ctx); root != fmt.Sprintf("root-%d", w) {
		t.Fatalf("current root %q, but racer %d won", root, w)
	}
}

// Keyring-level behaviour over the store: several keyrings on one store
// are several nodes on one database.

func newRoot(t *testing.T, name string) *keyring.LocalRoot {
	t.Helper()
	r, err := keyring.OpenLocalRoot(filepath.Join(t.TempDir(), name), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func openKeyring(t *testing.T, s keyring.Store, root keyring.Root, find func(context.Context, string) (keyring.Root, error)) *keyring.Keyring {
	t.Helper()
	k, err := keyring.Open(ctx, keyring.Config{Store: s, Root: root, FindRoot: find})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// finder finds the given roots by ID, as the wiring finds root key files.
func finder(roots ...keyring.Root) func(context.Context, string) (keyring.Root, error) {
	return func(_ context.Context, id string) (keyring.Root, error) {
		for _, r := range roots {
			if r.ID() == id {
				return r, nil
			}
		}
		return nil, errors.New("no such root")
	}
}

// records is sealed data of several patients in two practices.
type records map[keyring.AD]haven.Sealed

func ad(practice, patient string) keyring.AD {
	return keyring.AD{PracticeID: practice, PatientID: patient, Kind: "note", RecordID: "r-" + patient, Field: "body"}
}

func plaintext(a keyring.AD) string { return "note of " + a.PatientID + " at " + a.PracticeID }

func seed(t *testing.T, k *keyring.Keyring, practices ...string) records {
	t.Helper()
	r := records{}
	for _, p := range practices {
		for _, patient := range []string{"alice", "bob", "carol", ""} {
			a := ad(p, patient)
			s, err := k.Seal(ctx, a, []byte(plaintext(a)))
			if err != nil {
				t.Fatal(err)
			}
			r[a] = s
		}
	}
	return r
}

func (r records) check(t *testing.T, k *keyring.Keyring, skip ...keyring.AD) {
	t.Helper()
	for a, s := range r {
		if slices.Contains(skip, a) {
			continue
		}
		got, err := k.Open(ctx, a, s)
		if err != nil || string(got) != plaintext(a) {
			t.Fatalf("open %+v: %q, %v", a, got, err)
		}
	}
}

func testShredAcrossKeyrings(t *testing.T, s keyring.Store) {
	root := newRoot(t, "root.key")
	node1, node2 := openKeyring(t, s, root, nil), openKeyring(t, s, root, nil)
	r := seed(t, node1, "p1")
	r.check(t, node2) // node2 now holds every data key in its cache
	if err := node1.ShredPatient(ctx, "p1", "alice"); err != nil {
		t.Fatal(err)
	}
	alice := ad("p1", "alice")
	_, err := node2.Open(ctx, alice, r[alice])
	wantCode(t, err, haven.ENOTFOUND)
	if !errors.Is(err, keyring.ErrKeyDestroyed) {
		t.Fatalf("%v is not 'data key destroyed'", err)
	}
	_, err = node2.Seal(ctx, alice, []byte("a new note"))
	wantCode(t, err, haven.ENOTFOUND)
	r.check(t, node2, alice) // everyone else is untouched
}

func testConcurrentPracticeRotations(t *testing.T, s keyring.Store) {
	root := newRoot(t, "root.key")
	nodes := []*keyring.Keyring{openKeyring(t, s, root, nil), openKeyring(t, s, root, nil), openKeyring(t, s, root, nil)}
	r := seed(t, nodes[0], "p1", "p2")
	errs := race(len(nodes), func(i int) error { return nodes[i].RotatePracticeKey(ctx, "p1", nil) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rotation on node %d: %v", i, err)
		}
	}
	// Rotations that overlapped settle on one new version; one that began
	// after another ended makes a further version. Either way exactly one
	// version is active, the newest, and every other is retired.
	active := settled(t, s, "p1", len(nodes)+1)
	r.check(t, openKeyring(t, s, root, nil))
	for _, n := range nodes {
		r.check(t, n)
	}
	// A data key re-wrapped by a slower racer after a faster one's sweep
	// may stay under a retired version (still readable); the next rotation
	// moves every one of them.
	if err := nodes[0].RotatePracticeKey(ctx, "p1", nil); err != nil {
		t.Fatal(err)
	}
	active = settled(t, s, "p1", len(nodes)+2)
	data, err := s.ListKeys(ctx, "p1", keyring.KindData, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range data {
		if k.WrappedBy != active.ID {
			t.Fatalf("data key %+v is not under the active practice key %s", k, active.ID)
		}
	}
	r.check(t, openKeyring(t, s, root, nil))
}

// settled checks that a practice's key versions are 1..n (n at most
// maxVersion), the newest active and every other retired, and returns the
// active one.
func settled(t *testing.T, s keyring.Store, practiceID string, maxVersion int) haven.WrappedKey {
	t.Helper()
	keys, err := s.ListKeys(ctx, practiceID, keyring.KindPractice, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(keys, func(a, b haven.WrappedKey) int { return a.Version - b.Version })
	if len(keys) < 2 || len(keys) > maxVersion {
		t.Fatalf("%d practice key versions, want 2 to %d: %+v", len(keys), maxVersion, keys)
	}
	for i, k := range keys {
		want := keyring.StateRetired
		if i == len(keys)-1 {
			want = keyring.StateActive
		}
		if k.Version != i+1 || k.State != want {
			t.Fatalf("practice key versions do not settle (v%d is %s, want %s): %+v", k.Version, k.State, want, keys)
		}
	}
	data, err := s.ListKeys(ctx, practiceID, keyring.KindData, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range data {
		if !slices.ContainsFunc(keys, func(k haven.WrappedKey) bool { return k.ID == d.WrappedBy }) {
			t.Fatalf("data key %+v is wrapped by no practice key of its practice", d)
		}
	}
	return keys[len(keys)-1]
}

func testConcurrentRootRotations(t *testing.T, s keyring.Store) {
	rootA := newRoot(t, "a.key")
	node1, node2 := openKeyring(t, s, rootA, nil), openKeyring(t, s, rootA, nil)
	r := seed(t, node1, "p1", "p2")
	targets := []*keyring.LocalRoot{newRoot(t, "b.key"), newRoot(t, "c.key")}
	nodes := []*keyring.Keyring{node1, node2}
	errs := race(2, func(i int) error { return nodes[i].RotateRoot(ctx, targets[i], nil) })
	w := -1
	for i, err := range errs {
		if err == nil {
			if w >= 0 {
				t.Fatal("both root rotations succeeded")
			}
			w = i
		} else if c := haven.ErrorCode(err); c != haven.ECONFLICT && c != haven.EINTERNAL {
			// ECONFLICT when the two overlapped; EINTERNAL (this node has not
			// got the root the winner moved to) when one ran after the other.
			t.Fatalf("losing rotation: %v", err)
		}
	}
	if w < 0 {
		t.Fatalf("no root rotation succeeded: %v", errs)
	}
	if _, root, _ := s.KeyState(ctx); root != targets[w].ID() {
		t.Fatalf("current root %q, winner %s", root, targets[w].ID())
	}
	// The winner's root alone opens everything: the loser moved nothing.
	r.check(t, openKeyring(t, s, targets[w], nil))
	if _, err := keyring.Open(ctx, keyring.Config{Store: s, Root: targets[1-w]}); err == nil {
		t.Fatal("the losing root opens the store")
	}
}

func testRootRotationReachesRunningKeyring(t *testing.T, s keyring.Store) {
	rootA, rootB := newRoot(t, "a.key"), newRoot(t, "b.key")
	cli := openKeyring(t, s, rootA, nil)
	r := seed(t, cli, "p1", "p2")
	// A running node that has used p1 but never p2; it can find root B
	// (the new key file) but was started with A alone.
	node := openKeyring(t, s, rootA, finder(rootB))
	r.check(t, node, ad("p2", "alice"), ad("p2", "bob"), ad("p2", "carol"), ad("p2", ""))
	// Another running node that cannot find B.
	blind := openKeyring(t, s, rootA, nil)
	r.check(t, blind)

	if err := cli.RotateRoot(ctx, rootB, nil); err != nil {
		t.Fatal(err)
	}
	// The running node opens p2, whose practice key is now under B, and
	// wraps a new practice's key under B at once.
	r.check(t, node)
	if _, err := node.Seal(ctx, ad("p3", "dave"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	pk, err := s.GetKey(ctx, "p3", keyring.KindPractice, "", 0)
	if err != nil || pk.WrappedBy != rootB.ID() {
		t.Fatalf("new practice key %+v (%v) not under the new root %s", pk, err, rootB.ID())
	}
	if node.RootID() != rootB.ID() {
		t.Fatalf("running node's root is %s, want %s", node.RootID(), rootB.ID())
	}
	// The node that cannot find B keeps serving what it has cached, and
	// refuses to wrap a new key under the old root; its error names no
	// root to a client.
	r.check(t, blind)
	_, err = blind.Seal(ctx, ad("p4", "erin"), []byte("x"))
	wantCode(t, err, haven.EINTERNAL)
	if msg := haven.ErrorMessage(err); strings.Contains(msg, "local:") || strings.Contains(msg, rootB.ID()) {
		t.Fatalf("client-facing message names a root: %q", msg)
	}
	if !strings.Contains(err.Error(), rootB.ID()) {
		t.Fatalf("the error for the log does not name the missing root: %v", err)
	}
	ks, err := s.ListKeys(ctx, "p4", "", "", "", 10)
	if err != nil || len(ks) != 0 {
		t.Fatalf("keys were made under the old root: %+v %v", ks, err)
	}
}

// shredOnRewrap shreds, through another keyring, the patient whose data
// key a practice rotation is about to re-wrap, just before it writes.
type shredOnRewrap struct {
	keyring.Store
	shred func(patientID string)
	once  sync.Once
}

func (s *shredOnRewrap) UpdateKey(c context.Context, prev, next haven.WrappedKey) error {
	if prev.Kind == keyring.KindData && prev.PatientID != "" && next.State == keyring.StateActive {
		s.once.Do(func() { s.shred(prev.PatientID) })
	}
	return s.Store.UpdateKey(c, prev, next)
}

func testShredRacingRotation(t *testing.T, s keyring.Store) {
	root := newRoot(t, "root.key")
	other := openKeyring(t, s, root, nil)
	r := seed(t, other, "p1")
	var victim string
	wrapped := &shredOnRewrap{Store: s, shred: func(patientID string) {
		victim = patientID
		if err := other.ShredPatient(ctx, "p1", patientID); err != nil {
			t.Error(err)
		}
	}}
	rotating := openKeyring(t, wrapped, root, nil)
	r.check(t, rotating)
	if err := rotating.RotatePracticeKey(ctx, "p1", nil); err != nil {
		t.Fatal(err)
	}
	if victim == "" {
		t.Fatal("no data key was re-wrapped")
	}
	wk, err := s.GetKey(ctx, "p1", keyring.KindData, victim, 1)
	if err != nil || wk.State != keyring.StateDestroyed || wk.Wrapped != nil {
		t.Fatalf("rotation revived a shredded key: %+v, %v", wk, err)
	}
	for _, k := range []*keyring.Keyring{rotating, other, openKeyring(t, s, root, nil)} {
		_, err = k.Open(ctx, ad("p1", victim), r[ad("p1", victim)])
		wantCode(t, err, haven.ENOTFOUND)
		r.check(t, k, ad("p1", victim))
	}
}

// testConcurrentSigners has several nodes sign for a practice with no
// signing key at once: they must end with one key, so that every
// signature verifies on every node under the key id it names.
func testConcurrentSigners(t *testing.T, s keyring.Store) {
	root := newRoot(t, "root.key")
	nodes := make([]*keyring.Keyring, 4)
	for i := range nodes {
		nodes[i] = openKeyring(t, s, root, nil)
	}
	msg := []byte("haven.test.v1 a signed record")
	sigs, ids := make([][]byte, len(nodes)), make([]string, len(nodes))
	for _, err := range race(len(nodes), func(i int) (err error) {
		sigs[i], ids[i], err = nodes[i].Sign(ctx, "p1", msg)
		return err
	}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range nodes {
		if ids[i] != ids[0] {
			t.Fatalf("racing nodes signed under keys %v, want one", ids)
		}
		for _, n := range nodes {
			if err := n.Verify(ctx, "p1", ids[i], msg, sigs[i]); err != nil {
				t.Fatalf("node %d's signature: %v", i, err)
			}
		}
	}
	var signing []haven.WrappedKey
	after := ""
	for {
		page, err := s.ListKeys(ctx, "p1", keyring.KindSigning, "", after, 100)
		if err != nil {
			t.Fatal(err)
		}
		signing = append(signing, page...)
		if len(page) < 100 {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(signing) != 1 || signing[0].ID != ids[0] {
		t.Fatalf("store holds signing keys %+v, want the one key %s", signing, ids[0])
	}
	// The stored row is wrapped: neither the seed nor anything
	// recognisable as a key is in it, and it names its practice key.
	if pk, err := s.GetKey(ctx, "p1", keyring.KindPractice, "", 0); err != nil || signing[0].WrappedBy != pk.ID {
		t.Fatalf("signing key wrapped by %q, want the practice key (%v)", signing[0].WrappedBy, err)
	}
}

// testSignerAcrossRestartAndRotation signs, restarts (a new keyring on the
// same store), rotates the practice key, and checks the old signature
// still verifies and new ones are made under the same key; another
// practice's key id is not found, and an altered message fails.
func testSignerAcrossRestartAndRotation(t *testing.T, s keyring.Store) {
	root := newRoot(t, "root.key")
	first := openKeyring(t, s, root, nil)
	msg := []byte("haven.test.v1 a signed record")
	sig, id, err := first.Sign(ctx, "p1", msg)
	if err != nil {
		t.Fatal(err)
	}
	_, otherID, err := first.Sign(ctx, "p2", msg)
	if err != nil {
		t.Fatal(err)
	}
	if otherID == id {
		t.Fatal("two practices share a signing key")
	}
	first.Close()

	again := openKeyring(t, s, root, nil)
	if err := again.Verify(ctx, "p1", id, msg, sig); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if err := again.RotatePracticeKey(ctx, "p1", nil); err != nil {
		t.Fatal(err)
	}
	pk, err := s.GetKey(ctx, "p1", keyring.KindPractice, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	wk, err := s.GetKey(ctx, "p1", keyring.KindSigning, "", 0)
	if err != nil || wk.WrappedBy != pk.ID {
		t.Fatalf("after rotation the signing key is wrapped by %q, want the new practice key %s (%v)", wk.WrappedBy, pk.ID, err)
	}
	fresh := openKeyring(t, s, root, nil)
	if err := fresh.Verify(ctx, "p1", id, msg, sig); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if _, id2, err := fresh.Sign(ctx, "p1", msg); err != nil || id2 != id {
		t.Fatalf("after rotation signed under %q (%v), want the same key %s", id2, err, id)
	}
	altered := append([]byte(nil), msg...)
	altered[len(altered)-1] ^= 1
	if err := fresh.Verify(ctx, "p1", id, altered, sig); !errors.Is(err, keyring.ErrBadSignature) {
		t.Fatalf("an altered message verified: %v", err)
	}
	wantCode(t, fresh.Verify(ctx, "p2", id, msg, sig), haven.ENOTFOUND)
}
