package keyring

import (
	"context"
	"slices"
	"strings"
	"time"

	"haven"
)

// RotateRoot re-wraps every practice and index key under newRoot, online:
// reads keep working throughout because each key is moved by one
// compare-and-swap and both roots unwrap meanwhile.
//
// It first records newRoot as the store's current root (a compare-and-swap
// too), so from then on every node wraps new keys under it, loading it
// through Config.FindRoot when it meets it: another node keeps working only
// if it can find the new root (for a key file, at the path its FindRoot
// looks in). Of two rotations started at once, one records its root and the
// other fails with haven.ECONFLICT, having changed nothing. A rotation is
// refused while an earlier one is unfinished (keys still under a root that
// is neither the current one nor newRoot).
//
// If it stops part-way (crash, KMS outage), call it again with the same
// newRoot (a keyring opened with newRoot among its roots): keys already
// moved are skipped. When it returns nil nothing depends on the old root
// any more; only then may the old key file or KMS key be retired.
//
// progress, if not nil, is called after each key with the count done and
// the total.
func (k *Keyring) RotateRoot(ctx context.Context, newRoot Root, progress func(done, total int)) error {
	newID := newRoot.ID()
	_, current, err := k.state.read(ctx)
	if err != nil {
		return storeErr(err, "cannot read the key state")
	}
	if current == "" {
		current = k.RootID()
	}
	if current != newID {
		if _, err := k.rootByID(ctx, current); err != nil {
			return err
		}
		stray := 0
		for _, kind := range []string{KindPractice, KindIndex} {
			err := k.listAll(ctx, "", kind, "", func(wk haven.WrappedKey) error {
				if wk.State != StateDestroyed && wk.WrappedBy != current && wk.WrappedBy != newID {
					stray++
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if stray > 0 {
			return haven.Errorf(haven.ECONFLICT, "a root rotation to %s is unfinished (%d keys still under other roots): run it to the end first", current, stray)
		}
		k.mu.Lock()
		k.roots[newID] = newRoot // unwraps from now on; wraps once recorded
		k.mu.Unlock()
		if err := k.store.SetRoot(ctx, current, newID); err != nil {
			if haven.ErrorCode(err) == haven.ECONFLICT {
				return haven.Wrap(haven.ECONFLICT, err, "another root rotation started meanwhile")
			}
			return storeErr(err, "cannot record the new root")
		}
	} else {
		k.mu.Lock()
		k.roots[newID] = newRoot
		k.mu.Unlock()
	}
	if _, err := k.sync(ctx); err != nil {
		return err
	}

	// A node that read the old root just before it changed may still
	// create a key under it; each pass picks up what the last one missed,
	// and such a node moves its own key on (followRotation).
	done, total := 0, 0
	for range 5 {
		var todo []haven.WrappedKey
		for _, kind := range []string{KindPractice, KindIndex} {
			err := k.listAll(ctx, "", kind, "", func(wk haven.WrappedKey) error {
				if wk.State != StateDestroyed && wk.WrappedBy != newID {
					todo = append(todo, wk)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if len(todo) == 0 {
			if total == 0 && progress != nil {
				progress(0, 0)
			}
			return nil
		}
		total += len(todo)
		for _, wk := range todo {
			if err := k.rewrapUnderRoot(ctx, wk, newRoot); err != nil {
				return err
			}
			done++
			if progress != nil {
				progress(done, total)
			}
		}
	}
	return haven.Errorf(haven.EUNAVAILABLE, "keys keep appearing under an old root; run the rotation again")
}

// rewrapUnderRoot moves one practice or index key to root. If another node
// moved it first, it re-reads and carries on from what it finds.
func (k *Keyring) rewrapUnderRoot(ctx context.Context, wk haven.WrappedKey, root Root) error {
	for {
		if wk.State == StateDestroyed || wk.WrappedBy == root.ID() {
			return nil
		}
		raw, err := k.rootUnwrap(ctx, wk)
		if err != nil {
			return err
		}
		next := wk
		next.WrappedBy = root.ID()
		next.Wrapped, err = root.Wrap(ctx, raw, wrapAD(wk, next.WrappedBy))
		clear(raw)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "new root cannot wrap the "+wk.Kind+" key of practice "+wk.PracticeID)
		}
		err = k.store.UpdateKey(ctx, wk, next)
		if haven.ErrorCode(err) != haven.ECONFLICT {
			return storeErrOrNil(err, "cannot store re-wrapped key")
		}
		if wk, err = k.store.GetKey(ctx, wk.PracticeID, wk.Kind, wk.PatientID, wk.Version); err != nil {
			return storeErr(err, "cannot re-read key")
		}
	}
}

func storeErrOrNil(err error, msg string) error {
	if err == nil {
		return nil
	}
	return storeErr(err, msg)
}

// RotatePracticeKey makes a new version of a practice's key, re-wraps
// every data key and the signing key of the practice from the older
// versions to it, and marks
// the older versions retired. Data is not re-encrypted: fields and blobs
// stay under their data keys, which do not change; only the wrapping does.
// Every step is one compare-and-swap, so reads and writes go on meanwhile
// and nothing is unreadable at any moment.
//
// Run again after an interruption, it finds the unfinished rotation (an
// older version still active) and continues it instead of starting
// another. A data key created by another node in the moment before the new
// version appeared is caught by a final sweep, or else by the next
// rotation; it stays readable either way, since retired keys still unwrap.
func (k *Keyring) RotatePracticeKey(ctx context.Context, practiceID string, progress func(done, total int)) error {
	if err := validPracticeID(practiceID); err != nil {
		return err
	}
	versions, err := k.practiceKeys(ctx, practiceID)
	if err != nil {
		return err
	}
	if len(versions) == 0 {
		if progress != nil {
			progress(0, 0)
		}
		return nil // nothing wrapped yet: the first key is made on first use
	}
	target := versions[len(versions)-1]
	resuming := slices.ContainsFunc(versions[:len(versions)-1], func(wk haven.WrappedKey) bool { return wk.State == StateActive })
	if !resuming {
		target, err = k.newPracticeKeyVersion(ctx, practiceID, target.Version+1)
		if err != nil {
			return err
		}
		if versions, err = k.practiceKeys(ctx, practiceID); err != nil {
			return err
		}
	}
	to, err := k.rootKeyEntry(ctx, target)
	if err != nil {
		return err
	}
	var sources []haven.WrappedKey
	for _, wk := range versions {
		if wk.Version < target.Version && wk.State != StateDestroyed {
			sources = append(sources, wk)
		}
	}

	done, total := 0, 0
	for pass := range 2 { // the second pass sweeps up late-created keys
		var todo []haven.WrappedKey
		for _, src := range sources {
			// Data keys and the signing key are what a practice key wraps.
			for _, kind := range []string{KindData, KindSigning} {
				err := k.listAll(ctx, practiceID, kind, src.ID, func(wk haven.WrappedKey) error {
					todo = append(todo, wk)
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		if pass == 1 && len(todo) == 0 {
			break
		}
		total += len(todo)
		for _, wk := range todo {
			if err := k.rewrapData(ctx, wk, target, to); err != nil {
				return err
			}
			done++
			if progress != nil {
				progress(done, total)
			}
		}
		if pass == 0 {
			for _, src := range sources {
				if err := k.retire(ctx, src); err != nil {
					return err
				}
			}
		}
	}
	if total == 0 && progress != nil {
		progress(0, 0)
	}
	return nil
}

// practiceKeys returns a practice's key versions, oldest first.
func (k *Keyring) practiceKeys(ctx context.Context, practiceID string) ([]haven.WrappedKey, error) {
	var out []haven.WrappedKey
	err := k.listAll(ctx, practiceID, KindPractice, "", func(wk haven.WrappedKey) error {
		out = append(out, wk)
		return nil
	})
	slices.SortFunc(out, func(a, b haven.WrappedKey) int { return a.Version - b.Version })
	return out, err
}

// newPracticeKeyVersion creates the given version under the current root;
// if another node created it first, that one is the target.
func (k *Keyring) newPracticeKeyVersion(ctx context.Context, practiceID string, version int) (haven.WrappedKey, error) {
	if _, err := k.sync(ctx); err != nil {
		return haven.WrappedKey{}, err
	}
	root, err := k.currentRoot()
	if err != nil {
		return haven.WrappedKey{}, err
	}
	raw, err := newKey()
	if err != nil {
		return haven.WrappedKey{}, err
	}
	defer clear(raw)
	wk := haven.WrappedKey{PracticeID: practiceID, ID: haven.NewID(), Kind: KindPractice, Version: version,
		WrappedBy: root.ID(), State: StateActive, CreatedAt: k.now().UTC()}
	if wk.Wrapped, err = root.Wrap(ctx, raw, wrapAD(wk, wk.WrappedBy)); err != nil {
		return haven.WrappedKey{}, haven.Wrap(haven.EUNAVAILABLE, err, "root cannot wrap a new practice key")
	}
	err = k.store.CreateKey(ctx, wk)
	if haven.ErrorCode(err) == haven.ECONFLICT {
		wk, err = k.store.GetKey(ctx, practiceID, KindPractice, "", version)
	}
	if err != nil {
		return haven.WrappedKey{}, storeErr(err, "cannot store new practice key")
	}
	return k.followRotation(ctx, wk)
}

// rewrapData moves one data key under the practice key target. A key that
// changed meanwhile (shredded, or moved by another node) is left as it is:
// above all, a destroyed key is never brought back.
func (k *Keyring) rewrapData(ctx context.Context, wk haven.WrappedKey, target haven.WrappedKey, to *cacheEntry) error {
	if wk.State == StateDestroyed || wk.WrappedBy == target.ID {
		return nil
	}
	from, err := k.practiceKeyByID(ctx, wk.PracticeID, wk.WrappedBy)
	if err != nil {
		return err
	}
	raw, err := unwrapWith(from.aead, wk.Wrapped, wrapAD(wk, wk.WrappedBy))
	if err != nil {
		return haven.Wrap(haven.EINTERNAL, err, "practice key cannot unwrap data key "+wk.ID)
	}
	next := wk
	next.WrappedBy = target.ID
	next.Wrapped, err = wrapWith(to.aead, raw, wrapAD(wk, target.ID))
	clear(raw)
	if err != nil {
		return err
	}
	err = k.store.UpdateKey(ctx, wk, next)
	switch haven.ErrorCode(err) {
	case "", haven.ECONFLICT, haven.ENOTFOUND:
		return nil
	}
	return storeErr(err, "cannot store re-wrapped data key")
}

// retire marks an older practice key version retired.
func (k *Keyring) retire(ctx context.Context, wk haven.WrappedKey) error {
	for wk.State == StateActive {
		next := wk
		next.State = StateRetired
		err := k.store.UpdateKey(ctx, wk, next)
		if haven.ErrorCode(err) != haven.ECONFLICT {
			return storeErrOrNil(err, "cannot retire practice key")
		}
		if wk, err = k.store.GetKey(ctx, wk.PracticeID, wk.Kind, "", wk.Version); err != nil {
			return storeErr(err, "cannot re-read practice key")
		}
	}
	return nil
}

// ShredPatient destroys a patient's data key (every version): the wrapped
// bytes are overwritten in the store, the key is marked destroyed and any
// cached copy on this node is zeroed. From then on every field and stream
// sealed for the patient fails to open with haven.ENOTFOUND ("data key
// destroyed"), wherever copies of the ciphertext live, while other
// patients are untouched. A patient who never had a key gets a destroyed
// one, so nothing can be sealed for them afterwards either.
//
// Legal holds and retention rules are the caller's to check before
// calling: this cannot be undone. Every node, this one or another on the
// same store, refuses the key from its next use on: each destroying
// UpdateKey raises the store's key-state version, which every use reads
// first (state.go). A database backup taken earlier still
// holds the wrapped key; it stays unreadable only once the practice key
// that wrapped it is gone from every backup too (rotate the practice key
// and the root, and retire the old root), which is why backups of the key
// table should have the shortest retention.
func (k *Keyring) ShredPatient(ctx context.Context, practiceID, patientID string) error {
	if err := validPracticeID(practiceID); err != nil {
		return err
	}
	if patientID == "" {
		return haven.Errorf(haven.EINVALID, "shredding needs a patient id; the practice's own data key is not shredded this way")
	}
	defer k.cache.shred(practiceID, patientID)
	for range 3 {
		latest, err := k.store.GetKey(ctx, practiceID, KindData, patientID, 0)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			err = k.store.CreateKey(ctx, haven.WrappedKey{PracticeID: practiceID, ID: haven.NewID(), Kind: KindData,
				PatientID: patientID, Version: 1, State: StateDestroyed, CreatedAt: k.now().UTC()})
			if haven.ErrorCode(err) == haven.ECONFLICT {
				continue // a key appeared meanwhile: destroy it
			}
			return storeErrOrNil(err, "cannot record destroyed data key")
		}
		if err != nil {
			return storeErr(err, "cannot read data key")
		}
		for v := latest.Version; v >= 1; v-- {
			if err := k.destroy(ctx, practiceID, patientID, v); err != nil {
				return err
			}
		}
		return nil
	}
	return haven.Errorf(haven.EUNAVAILABLE, "could not settle the data key to destroy")
}

func (k *Keyring) destroy(ctx context.Context, practiceID, patientID string, version int) error {
	for {
		wk, err := k.store.GetKey(ctx, practiceID, KindData, patientID, version)
		if haven.ErrorCode(err) == haven.ENOTFOUND {
			return nil
		}
		if err != nil {
			return storeErr(err, "cannot read data key")
		}
		if wk.State == StateDestroyed {
			return nil
		}
		next := wk
		next.WrappedBy, next.Wrapped, next.State = "", nil, StateDestroyed
		err = k.store.UpdateKey(ctx, wk, next)
		if haven.ErrorCode(err) != haven.ECONFLICT {
			return storeErrOrNil(err, "cannot destroy data key")
		}
	}
}

// Report is what `haven keys status` prints. It holds no key material.
type Report struct {
	// Root is the ID of the root that wraps new keys; OldRoots may still
	// unwrap (a root rotation in progress).
	Root     string
	OldRoots []string
	// RootUse counts live practice and index keys per wrapping root: a root
	// with none left can be retired.
	RootUse   map[string]int
	Practices []PracticeReport
}

// PracticeReport is one practice's keys.
type PracticeReport struct {
	PracticeID string
	Keys       []KeyReport // practice and index key versions
	// DataKeys counts live data keys, DestroyedDataKeys shredded ones.
	DataKeys, DestroyedDataKeys int
}

// KeyReport is one practice or index key version.
type KeyReport struct {
	Kind, ID  string
	Version   int
	State     string
	WrappedBy string
	CreatedAt time.Time
	// DataKeys counts the data keys this practice key wraps: after a
	// finished rotation, a retired version wraps none.
	DataKeys int
}

// Status reports the key hierarchy: roots, each practice's key versions and
// states, and how many data keys each wraps.
func (k *Keyring) Status(ctx context.Context) (Report, error) {
	k.mu.RLock()
	rep := Report{Root: k.root.ID(), RootUse: map[string]int{}}
	for id := range k.roots {
		if id != rep.Root {
			rep.OldRoots = append(rep.OldRoots, id)
		}
	}
	k.mu.RUnlock()
	slices.Sort(rep.OldRoots)

	byPractice := map[string]*PracticeReport{}
	practice := func(id string) *PracticeReport {
		if byPractice[id] == nil {
			byPractice[id] = &PracticeReport{PracticeID: id}
		}
		return byPractice[id]
	}
	for _, kind := range []string{KindPractice, KindIndex} {
		err := k.listAll(ctx, "", kind, "", func(wk haven.WrappedKey) error {
			p := practice(wk.PracticeID)
			p.Keys = append(p.Keys, KeyReport{Kind: wk.Kind, ID: wk.ID, Version: wk.Version, State: wk.State,
				WrappedBy: wk.WrappedBy, CreatedAt: wk.CreatedAt})
			if wk.State != StateDestroyed {
				rep.RootUse[wk.WrappedBy]++
			}
			return nil
		})
		if err != nil {
			return Report{}, err
		}
	}
	wraps := map[string]int{}
	err := k.listAll(ctx, "", KindData, "", func(wk haven.WrappedKey) error {
		p := practice(wk.PracticeID)
		if wk.State == StateDestroyed {
			p.DestroyedDataKeys++
		} else {
			p.DataKeys++
			wraps[wk.WrappedBy]++
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	for _, p := range byPractice {
		for i := range p.Keys {
			p.Keys[i].DataKeys = wraps[p.Keys[i].ID]
		}
		slices.SortFunc(p.Keys, func(a, b KeyReport) int {
			if a.Kind != b.Kind {
				return strings.Compare(a.Kind, b.Kind)
			}
			return a.Version - b.Version
		})
		rep.Practices = append(rep.Practices, *p)
	}
	slices.SortFunc(rep.Practices, func(a, b PracticeReport) int { return strings.Compare(a.PracticeID, b.PracticeID) })
	return rep, nil
}

// RewrapUnderRoot wraps every practice and index key again under the
// current root, which keeps its id. It is the second half of rotating a
// KMS key that versions itself (Vault transit): after the KMS makes a new
// version, each key still sealed by an older version is sealed by the new
// one, and the operator can then stop the older versions from decrypting.
// A key another node rewrote meanwhile is re-read and wrapped again.
// A root rotation still under way is refused: it is finished first.
func (k *Keyring) RewrapUnderRoot(ctx context.Context, progress func(done, total int)) error {
	_, current, err := k.state.read(ctx)
	if err != nil {
		return storeErr(err, "cannot read the key state")
	}
	k.mu.RLock()
	root := k.root
	k.mu.RUnlock()
	if current != "" && current != root.ID() {
		return haven.Errorf(haven.ECONFLICT, "the key store's root is %s, not the configured %s: finish that rotation first", current, root.ID())
	}
	var todo []haven.WrappedKey
	for _, kind := range []string{KindPractice, KindIndex} {
		err := k.listAll(ctx, "", kind, "", func(wk haven.WrappedKey) error {
			if wk.State != StateDestroyed {
				todo = append(todo, wk)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if progress != nil && len(todo) == 0 {
		progress(0, 0)
	}
	for i, wk := range todo {
		if err := k.rewrapAgain(ctx, wk, root); err != nil {
			return err
		}
		if progress != nil {
			progress(i+1, len(todo))
		}
	}
	return nil
}

// rewrapAgain unwraps one key and wraps it again under root, with one
// compare-and-swap; on a conflict it re-reads the key and starts over.
func (k *Keyring) rewrapAgain(ctx context.Context, wk haven.WrappedKey, root Root) error {
	for range 5 {
		if wk.State == StateDestroyed {
			return nil
		}
		if wk.WrappedBy != root.ID() {
			return haven.Errorf(haven.ECONFLICT, "the %s key of practice %s is under root %s, not %s: finish that rotation first", wk.Kind, wk.PracticeID, wk.WrappedBy, root.ID())
		}
		raw, err := k.rootUnwrap(ctx, wk)
		if err != nil {
			return err
		}
		next := wk
		next.Wrapped, err = root.Wrap(ctx, raw, wrapAD(wk, wk.WrappedBy))
		clear(raw)
		if err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "the root cannot wrap the "+wk.Kind+" key of practice "+wk.PracticeID)
		}
		err = k.store.UpdateKey(ctx, wk, next)
		if haven.ErrorCode(err) != haven.ECONFLICT {
			return storeErrOrNil(err, "cannot store re-wrapped key")
		}
		if wk, err = k.store.GetKey(ctx, wk.PracticeID, wk.Kind, wk.PatientID, wk.Version); err != nil {
			return storeErr(err, "cannot re-read key")
		}
	}
	return haven.Errorf(haven.EUNAVAILABLE, "the %s key of practice %s keeps changing; run the rotation again", wk.Kind, wk.PracticeID)
}
