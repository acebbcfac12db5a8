package audit

import (
	"bytes"
	"context"
	"errors"
	"time"

	"haven"
)

// Check decides whether this node may serve logID, and is run for every log
// before a server starts. It refuses (with one error naming the log and
// the evidence) when:
//
//   - the signing key is not trusted, or was retired by a key rotation;
//   - the stored rows end in a tree no trusted key sealed (rows appended
//     without the key), or rows this node would need are missing;
//   - stored checkpoints exist but none verifies with the trusted keys
//     (the signing key was replaced);
//   - the newest trusted checkpoint is larger than the log, or has another
//     root than the log's tree at its size (a rollback, or a rewrite);
//   - a witness holds a larger tree, a tree the log does not extend, or
//     less than it acknowledged before (it went missing or backwards), or
//     cannot be asked.
//
// When every check passes it has signed a checkpoint of the current tree
// and every witness holds it. A witness that does not know the log, and
// never acknowledged it, is not an error but a warning, returned for the
// operator to hear: it witnesses nothing for this log.
func (l *Log) Check(ctx context.Context, logID string) (warnings []string, err error) {
	if !isLogID(logID) {
		return nil, haven.Errorf(haven.EINVALID, "audit: bad log id")
	}
	if l.opts.Signer == nil {
		return nil, haven.Errorf(haven.EINTERNAL, "audit: no checkpoint signing key configured")
	}
	if err := l.opts.Trust.Current(l.opts.Signer.VerifierKey()); err != nil {
		return nil, err
	}
	ls := l.state(logID)
	if err := l.checkStored(ctx, ls); err != nil {
		return nil, err
	}
	cp, fresh, err := l.signCheckpoint(ctx, ls, false)
	if err != nil {
		return nil, err
	}
	for _, err := range l.publish(ctx, ls, cp) {
		var we *WitnessError
		if errors.As(err, &we) && we.Reason == WitnessUnknownLog && !l.acknowledged(ls, we.Witness) {
			warnings = append(warnings, we.Error()+": it witnesses nothing for this log")
			continue
		}
		return warnings, err
	}
	if fresh {
		ls.writeMu.Lock()
		defer ls.writeMu.Unlock()
		if err := l.storeCheckpoint(ctx, ls, cp); err != nil {
			return warnings, err
		}
	}
	return warnings, nil
}

// acknowledged reports whether witness acknowledged any checkpoint of the
// log before: one that now does not know the log went missing.
func (l *Log) acknowledged(ls *logState, witness string) bool {
	ls.writeMu.Lock()
	defer ls.writeMu.Unlock()
	return ls.acked[witness] > 0
}

// checkStored loads the log and holds it against the newest stored
// checkpoint a trusted key signed.
func (l *Log) checkStored(ctx context.Context, ls *logState) error {
	ls.writeMu.Lock()
	defer ls.writeMu.Unlock()
	if err := l.catchUp(ctx, ls); err != nil {
		return err
	}
	cps, err := l.st.Checkpoints(ctx, ls.id)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "audit log unavailable")
	}
	size := ls.tree.size()
	for i := len(cps) - 1; i >= 0; i-- {
		h, err := l.opts.Trust.open(cps[i].Note, ls.id)
		if err != nil {
			continue
		}
		if h.Size > size {
			return haven.Errorf(haven.EINTERNAL, "audit log %s holds %d entries but a checkpoint was signed at size %d: the log was rolled back", ls.id, size, h.Size)
		}
		root, err := ls.rootAt(ctx, l.st, h.Size)
		if err != nil {
			return err
		}
		if !bytes.Equal(root, h.Root) {
			return haven.Errorf(haven.EINTERNAL, "audit log %s differs from the checkpoint signed at size %d: the log was rewritten", ls.id, h.Size)
		}
		return nil
	}
	if len(cps) > 0 {
		return haven.Errorf(haven.EINTERNAL, "audit log %s: none of its %d stored checkpoints verifies with the trusted audit keys: the signing key was replaced (rotate keys with haven audit rotate-key)", ls.id, len(cps))
	}
	return nil
}

// FailureHold is how long a failed append keeps Ready answering "not
// ready" when nothing has been appended since: long enough for a load
// balancer to take the node out, short enough that it is tried again.
const FailureHold = 15 * time.Second

// Ready reports whether audit events can be appended now; /readyz asks it
// so a load balancer stops sending requests (which would all fail closed)
// to a node whose audit log cannot be written. It appends nothing. It
// fails while the store's write probe fails (table gone, locked, not
// writable), for FailureHold after an append failed unless one has
// succeeded since, and while a log's stored rows are refused (entries
// removed or appended without the key), which it checks again each time.
func (l *Log) Ready(ctx context.Context) error {
	if p, ok := l.st.(WriteProber); ok {
		if err := p.ProbeAppend(ctx); err != nil {
			return haven.Wrap(haven.EUNAVAILABLE, err, "audit log cannot be written")
		}
	}
	if fail := l.lastFail.Load(); fail > l.lastOK.Load() && l.opts.Now().UnixNano()-fail < int64(FailureHold) {
		return haven.Errorf(haven.EUNAVAILABLE, "the last audit append failed")
	}
	l.mu.RLock()
	states := make([]*logState, 0, len(l.logs))
	for _, ls := range l.logs {
		states = append(states, ls)
	}
	l.mu.RUnlock()
	for _, ls := range states {
		if !ls.writeMu.TryLock() {
			continue // a commit is running; it will say
		}
		var err error
		if ls.broken != nil {
			err = l.catchUp(ctx, ls)
		}
		ls.writeMu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
