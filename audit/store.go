package audit

import (
	"context"

	"haven"
)

// Entry is one stored row of a log: the event's fields and the leaf hash
// the log computed from them when it was appended. The verifier recomputes
// the leaf from the fields, so a row whose fields were edited no longer
// matches its stored hash, and a row whose hash was edited too no longer
// matches the signed roots.
//
// Seal is set on the last row of every committed batch: the signature block
// of the checkpoint of the tree that batch completed (see Log.Append), so
// the row proves it was appended by a holder of the audit key.
type Entry struct {
	Event
	LeafHash []byte
	Seal     []byte
}

// Checkpoint is a signed tree head as stored: the tree size it covers and
// the signed note (see OpenCheckpoint for its body). The size is kept apart
// only to index and order checkpoints; the verifier trusts the note alone.
type Checkpoint struct {
	Size uint64
	Note []byte
}

// Batch is one append: Events[i] with LeafHashes[i] at first+i, and Seal
// stored with the last event.
//
// Rebase is how an append that lost a race to another node still gets in at
// its next try. Without it the loser must let go of the log's end to catch
// up and then queue for it again, and a busy node that never has to catch
// up wins every time: the other node starves (two nodes under load saw 33
// conflicts in a row). With it the store, holding the end, hands over the
// leaf hashes stored from first to the end (since) and the seal on the last
// of them; Rebase renumbers and re-seals the batch to follow them, or
// declines with ECONFLICT (for instance when the seal does not vouch for
// them), and the append falls back to catching up.
type Batch struct {
	Events     []Event
	LeafHashes [][]byte
	Seal       []byte
	Rebase     func(since [][]byte, sinceSeal []byte) (Batch, error)
}

// CheckAt returns haven.EINVALID unless b's events are numbered first,
// first+1, … and each has its leaf hash: the check every store makes
// before storing a batch.
func (b Batch) CheckAt(first uint64) error {
	if len(b.Events) != len(b.LeafHashes) {
		return haven.Errorf(haven.EINVALID, "audit append: %d events but %d leaf hashes", len(b.Events), len(b.LeafHashes))
	}
	if len(b.Events) == 0 {
		return haven.Errorf(haven.EINVALID, "audit append: no events")
	}
	for i := range b.Events {
		if b.Events[i].Seq != first+uint64(i) {
			return haven.Errorf(haven.EINVALID, "audit append: event %d has seq %d, want %d", i, b.Events[i].Seq, first+uint64(i))
		}
	}
	return nil
}

// Store is what the audit log needs from a database. It is deliberately
// small so each database adapter implements it plainly; package audittest
// holds the conformance suite every implementation must pass.
//
// Rules every implementation keeps:
//   - Rows are never changed or removed by Haven. Only an attacker does that,
//     and the verifier's job is to notice.
//   - Values round-trip exactly: strings byte for byte, Time in UTC to the
//     microsecond, leaf hashes and notes byte for byte.
//   - Logs are independent: nothing of one logID is visible in another.
type Store interface {
	// AppendLeaves stores b.Events[i] with b.LeafHashes[i] at sequence
	// number first+i, atomically: all of them or none. It returns an error
	// with code haven.ECONFLICT, and stores nothing, when first is not the
	// log's current size; this check and the insert happen in one
	// transaction, which is how several nodes appending to one database are
	// kept from overwriting or skipping positions. An Events[i].Seq other
	// than first+i, or lengths that differ, are haven.EINVALID.
	//
	// b.Seal, when not nil, is stored with the last event (see Entry.Seal),
	// in the same transaction.
	//
	// When the log is already longer than first and b.Rebase is set, the
	// store may, instead of refusing, call b.Rebase with what was appended
	// since first while it still holds the log's end, and store the batch
	// Rebase returns at that end, in the same transaction (see Batch). A
	// store may always refuse with ECONFLICT instead, and must when Rebase
	// is nil; an error from Rebase is returned as it is, storing nothing.
	//
	// A store that keeps a record of where each log ends beside its rows
	// (so that an append need not look for the end) refuses with
	// haven.EINTERNAL, storing nothing, when that record and the rows
	// disagree: it is evidence of tampering, and no retry will mend it.
	// The append's cost must not grow with the log's size.
	AppendLeaves(ctx context.Context, logID string, first uint64, b Batch) error

	// Seal returns the seal stored with the row at seq, or nil when that
	// row has none or does not exist.
	Seal(ctx context.Context, logID string, seq uint64) ([]byte, error)

	// Size returns the log's size: one more than its highest sequence
	// number, or 0 when it is empty. Catch-up asks it whenever another
	// node appended first, so it must be cheap in a log of any size.
	Size(ctx context.Context, logID string) (uint64, error)

	// Entries returns the stored rows with from <= Seq < to, in Seq order.
	// Missing rows are simply absent; callers never ask for more than a
	// page at a time.
	Entries(ctx context.Context, logID string, from, to uint64) ([]Entry, error)

	// LeafHashes returns the stored leaf hashes of the rows with
	// from <= Seq < to, in Seq order; missing rows are absent.
	LeafHashes(ctx context.Context, logID string, from, to uint64) ([][]byte, error)

	// PutCheckpoint stores cp. Storing a note identical to the one already
	// held for that size does nothing; a different note for a size that has
	// one is haven.ECONFLICT (two histories signed at one size).
	PutCheckpoint(ctx context.Context, logID string, cp Checkpoint) error

	// Checkpoints returns the log's checkpoints in increasing Size order.
	Checkpoints(ctx context.Context, logID string) ([]Checkpoint, error)

	// PutWitnessed records that a witness acknowledged a checkpoint of the
	// log at cp.Size; cp.Note is the checkpoint with the witness's
	// cosignatures. The same record again does nothing; a witness's
	// acknowledgements are never removed by Haven.
	PutWitnessed(ctx context.Context, logID, witness string, cp Checkpoint) error

	// Witnessed returns, for each witness that acknowledged any checkpoint
	// of the log, the largest one it acknowledged, in witness name order.
	Witnessed(ctx context.Context, logID string) ([]Witnessed, error)

	// PutHandover stores a key hand-over note (see SignHandover). A second,
	// different hand-over from the same key is haven.ECONFLICT.
	PutHandover(ctx context.Context, fromKey string, note []byte) error

	// Handovers returns every stored hand-over note.
	Handovers(ctx context.Context) ([][]byte, error)

	// Logs returns the ids of the logs that hold any entry, checkpoint or
	// witness acknowledgement, in increasing order.
	Logs(ctx context.Context) ([]string, error)
}

// Witnessed is a witness's acknowledgement of a checkpoint, as stored.
type Witnessed struct {
	Witness string
	Checkpoint
}

// WriteProber is implemented by stores that can tell cheaply, without
// writing a row, whether an append could be written now (the table is
// there, writable and not locked). Log.Ready uses it.
type WriteProber interface {
	ProbeAppend(ctx context.Context) error
}
