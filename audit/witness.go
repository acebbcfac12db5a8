package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"haven"

	"golang.org/x/mod/sumdb/note"
)

// Witness receives signed checkpoints and keeps, outside Haven's database,
// the newest one it saw of each log, refusing any that does not extend it.
// A copy the insider cannot reach is what turns a quiet rollback (truncate
// the log, restore an old backup, re-append) into a detected one: the
// witness holds a larger or different tree than the log now has.
type Witness interface {
	// Name identifies the witness in messages and in the store's record
	// of what it acknowledged (Store.PutWitnessed).
	Name() string

	// Publish asks the witness to keep signedNote, a checkpoint of logID.
	// known is the size the witness acknowledged before, as recorded (0
	// when none); prove returns the consistency proof from an older size
	// to the checkpoint's. It fails with a *WitnessError, keeping nothing,
	// when the witness holds a larger tree or one the checkpoint's does not
	// extend, and when it holds less than known: a witness that lost what
	// it held is reported, never silently seeded again.
	Publish(ctx context.Context, logID string, signedNote []byte, known uint64, prove Prover) (Acknowledgement, error)
}

// Prover returns the RFC 6962 consistency proof from the tree of size from
// to the tree of the checkpoint being published.
type Prover func(ctx context.Context, from uint64) ([][]byte, error)

// Acknowledgement is a witness's answer to a checkpoint it kept.
type Acknowledgement struct {
	// Note is the checkpoint with the witness's cosignatures appended (a
	// directory witness adds none).
	Note []byte
	// Held is the size the witness held for the log before it took the
	// checkpoint. Smaller than what it acknowledged before means it lost
	// what it held: it went missing or backwards.
	Held uint64
}

// WitnessReason says why a witness refused a checkpoint or could not be
// asked.
type WitnessReason string

const (
	// WitnessAhead: the witness holds a larger tree than the checkpoint's;
	// the log was rolled back.
	WitnessAhead WitnessReason = "ahead"
	// WitnessFork: the witness holds a tree the checkpoint's does not
	// extend; the log was rewritten.
	WitnessFork WitnessReason = "fork"
	// WitnessUnknownLog: the witness does not know the log's origin or
	// does not trust the key that signed it.
	WitnessUnknownLog WitnessReason = "unknown_log"
	// WitnessBackwards: the witness holds less than it acknowledged before:
	// its state was lost or replaced.
	WitnessBackwards WitnessReason = "backwards"
	// WitnessUnavailable: the witness could not be asked.
	WitnessUnavailable WitnessReason = "unavailable"
)

// WitnessError is a witness's refusal, or a failure to ask it. Its message
// names the witness, the log and sizes, nothing else, and includes the
// cause of an unavailable witness; Err keeps that cause for logs but is not
// unwrapped, so the witness's name is never lost behind a generic message.
type WitnessError struct {
	Witness string
	LogID   string
	Reason  WitnessReason
	Size    uint64 // the size the witness holds (Ahead, Fork, Backwards)
	Have    uint64 // the checkpoint's size, or what it acknowledged before (Backwards)
	// Acknowledged is, for UnknownLog, the size it acknowledged before
	// (0: it never knew the log).
	Acknowledged uint64
	Err          error
}

func (e *WitnessError) Error() string {
	var msg string
	switch e.Reason {
	case WitnessAhead:
		msg = fmt.Sprintf("audit witness %s holds log %s at size %d but the log has %d entries: the log was rolled back", e.Witness, e.LogID, e.Size, e.Have)
	case WitnessFork:
		msg = fmt.Sprintf("audit witness %s holds a tree of log %s at size %d that the log's tree of size %d does not extend: the log was rewritten", e.Witness, e.LogID, e.Size, e.Have)
	case WitnessUnknownLog:
		msg = fmt.Sprintf("audit witness %s does not know log %s or does not trust its key", e.Witness, e.LogID)
		if e.Acknowledged > 0 {
			msg = fmt.Sprintf("audit witness %s no longer takes checkpoints of log %s, though it acknowledged size %d: it went missing or backwards, or does not trust the log's key", e.Witness, e.LogID, e.Acknowledged)
		}
	case WitnessBackwards:
		msg = fmt.Sprintf("audit witness %s holds log %s at size %d but acknowledged size %d before: the witness went missing or backwards", e.Witness, e.LogID, e.Size, e.Have)
	default:
		msg = fmt.Sprintf("audit witness %s unavailable for log %s", e.Witness, e.LogID)
	}
	if e.Err != nil && e.Reason == WitnessUnavailable {
		msg += ": " + errorText(e.Err)
	}
	return msg
}

// errorText renders err on one line, a haven.Error by its message.
func errorText(err error) string {
	var he *haven.Error
	if errors.As(err, &he) {
		return he.Message
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// maxNote bounds a checkpoint note read from a witness or sent to one.
const maxNote = 16 << 10

// DirWitness publishes checkpoints as files <Dir>/<logID>/<size>.note, and
// the newest as <Dir>/<logID>/latest. The directory can live on another
// machine's mount, write-once storage or a backup medium; on the same disk
// as the database it proves nothing to whoever can write both, and is for
// one machine and demos only. A file, once written, is never replaced with
// different content, and a checkpoint that does not extend the newest one
// is refused: that would be the witness helping a rollback.
type DirWitness struct {
	Dir string
}

// Name is "dir:" and the directory's absolute path.
func (w DirWitness) Name() string {
	if abs, err := filepath.Abs(w.Dir); err == nil {
		return "dir:" + abs
	}
	return "dir:" + w.Dir
}

// noteHead reads the tree head from a checkpoint note without checking its
// signature; the witness stores, the verifier judges.
func noteHead(signedNote []byte) (TreeHead, error) {
	if len(signedNote) > maxNote {
		return TreeHead{}, haven.Errorf(haven.EINVALID, "audit checkpoint too large")
	}
	text, _, ok := bytes.Cut(signedNote, []byte("\n\n"))
	if !ok {
		return TreeHead{}, haven.Errorf(haven.EINVALID, "malformed audit checkpoint")
	}
	return ParseTreeHead(string(text) + "\n")
}

// noteSize reads the tree size from a checkpoint note without checking its
// signature.
func noteSize(signedNote []byte) (uint64, error) {
	h, err := noteHead(signedNote)
	return h.Size, err
}

// Latest returns the newest checkpoint the directory holds for logID, or
// nil when it holds none (or the directory is gone).
func (w DirWitness) Latest(logID string) ([]byte, error) {
	if !isLogID(logID) {
		return nil, haven.Errorf(haven.EINVALID, "audit witness: bad log id")
	}
	b, err := os.ReadFile(filepath.Join(w.Dir, logID, "latest"))
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read audit witness file")
	}
	// A directory written before "latest" existed: the largest file.
	all, err := w.Checkpoints(logID)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return all[len(all)-1], nil
}

// Publish writes signedNote atomically (write a temporary file, then link
// it into place, which fails if the name exists) after checking that it
// extends the newest checkpoint held. Publishing the same note twice is
// fine.
func (w DirWitness) Publish(ctx context.Context, logID string, signedNote []byte, known uint64, prove Prover) (Acknowledgement, error) {
	werr := func(reason WitnessReason, size, have uint64, err error) error {
		return &WitnessError{Witness: w.Name(), LogID: logID, Reason: reason, Size: size, Have: have, Err: err}
	}
	if !isLogID(logID) {
		return Acknowledgement{}, haven.Errorf(haven.EINVALID, "audit witness: bad log id")
	}
	head, err := noteHead(signedNote)
	if err != nil {
		return Acknowledgement{}, err
	}
	latest, err := w.Latest(logID)
	if err != nil {
		return Acknowledgement{}, werr(WitnessUnavailable, 0, head.Size, err)
	}
	var held uint64
	if latest != nil {
		old, err := noteHead(latest)
		if err != nil {
			return Acknowledgement{}, werr(WitnessUnavailable, 0, head.Size, err)
		}
		held = old.Size
	}
	if held < known {
		return Acknowledgement{}, werr(WitnessBackwards, held, known, nil)
	}
	if latest != nil {
		old, _ := noteHead(latest)
		switch {
		case old.Size > head.Size:
			return Acknowledgement{}, werr(WitnessAhead, old.Size, head.Size, nil)
		case old.Size == head.Size:
			if !bytes.Equal(old.Root, head.Root) {
				return Acknowledgement{}, werr(WitnessFork, old.Size, head.Size, nil)
			}
		default:
			p, err := prove(ctx, old.Size)
			if err != nil {
				return Acknowledgement{}, werr(WitnessUnavailable, old.Size, head.Size, err)
			}
			if VerifyConsistency(old.Size, head.Size, p, old.Root, head.Root) != nil {
				return Acknowledgement{}, werr(WitnessFork, old.Size, head.Size, nil)
			}
		}
	}
	dir := filepath.Join(w.Dir, logID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return Acknowledgement{}, werr(WitnessUnavailable, held, head.Size, err)
	}
	name := filepath.Join(dir, strconv.FormatUint(head.Size, 10)+".note")
	if err := writeOnce(dir, name, signedNote); err != nil {
		return Acknowledgement{}, werr(WitnessUnavailable, held, head.Size, err)
	}
	if held < head.Size || latest == nil {
		if err := replaceFile(dir, filepath.Join(dir, "latest"), signedNote); err != nil {
			return Acknowledgement{}, werr(WitnessUnavailable, held, head.Size, err)
		}
	}
	return Acknowledgement{Note: signedNote, Held: held}, nil
}

// writeOnce creates name holding b, unless a file of that name exists for
// the same tree (a note with other signatures over the same text is the
// same checkpoint).
func writeOnce(dir, name string, b []byte) error {
	if old, err := os.ReadFile(name); err == nil {
		if sameTree(old, b) {
			return nil
		}
		return fmt.Errorf("a different checkpoint is held at this size")
	}
	tmp, err := writeTemp(dir, b)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, name); err != nil {
		if old, err2 := os.ReadFile(name); err2 == nil && sameTree(old, b) {
			return nil // a concurrent publisher won with the same checkpoint
		}
		return err
	}
	syncDir(dir)
	return nil
}

func sameTree(a, b []byte) bool {
	ha, err1 := noteHead(a)
	hb, err2 := noteHead(b)
	return err1 == nil && err2 == nil && ha.Size == hb.Size && bytes.Equal(ha.Root, hb.Root) && ha.Origin == hb.Origin
}

// replaceFile atomically replaces name with b.
func replaceFile(dir, name string, b []byte) error {
	tmp, err := writeTemp(dir, b)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(dir)
	return nil
}

func writeTemp(dir string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o640)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes new names in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Checkpoints returns every checkpoint the directory holds for logID, in
// increasing size order, for the verifier.
func (w DirWitness) Checkpoints(logID string) ([][]byte, error) {
	if !isLogID(logID) {
		return nil, haven.Errorf(haven.EINVALID, "audit witness: bad log id")
	}
	dir := filepath.Join(w.Dir, logID)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "audit witness directory unavailable")
	}
	type file struct {
		size uint64
		name string
	}
	var files []file
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".note")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		size, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue
		}
		files = append(files, file{size, e.Name()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].size < files[j].size })
	out := make([][]byte, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot read audit witness file")
		}
		out = append(out, b)
	}
	return out, nil
}

// Logs returns the ids of the logs the directory holds checkpoints of.
func (w DirWitness) Logs() ([]string, error) {
	ents, err := os.ReadDir(w.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "audit witness directory unavailable")
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && isLogID(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// TlogWitness is an independent witness spoken to over C2SP tlog-witness
// (c2sp.org/tlog-witness): POST <URL>/add-checkpoint with the size the
// witness is believed to hold, a consistency proof from it, and the signed
// checkpoint; the witness answers with its cosignature, or with the size it
// holds (409), or refuses an inconsistent tree (422). Its verifier key
// checks every cosignature it returns.
//
// The witness must know each log's origin ("<key name>/<log id>") and
// trust the log's key under that name (LogVerifierKey), as the protocol
// requires.
type TlogWitness struct {
	URL    string
	key    note.Verifier
	Client *http.Client // nil: a client with a 10-second timeout
}

// NewTlogWitness returns the witness at url (its submission prefix) whose
// cosignatures verify with verifierKey.
func NewTlogWitness(url, verifierKey string) (*TlogWitness, error) {
	k, err := ParseWitnessKey(verifierKey)
	if err != nil {
		return nil, err
	}
	return &TlogWitness{URL: strings.TrimSuffix(url, "/"), key: k}, nil
}

// Name is the witness's key name and key hash.
func (w *TlogWitness) Name() string { return fmt.Sprintf("%s+%08x", w.key.Name(), w.key.KeyHash()) }

// Verifier returns the witness's cosignature verifier.
func (w *TlogWitness) Verifier() note.Verifier { return w.key }

var defaultWitnessClient = &http.Client{Timeout: 10 * time.Second}

// Publish implements the add-checkpoint call, retrying once with the size
// the witness says it holds.
func (w *TlogWitness) Publish(ctx context.Context, logID string, signedNote []byte, known uint64, prove Prover) (Acknowledgement, error) {
	if !isLogID(logID) {
		return Acknowledgement{}, haven.Errorf(haven.EINVALID, "audit witness: bad log id")
	}
	head, err := noteHead(signedNote)
	if err != nil {
		return Acknowledgement{}, err
	}
	werr := func(reason WitnessReason, size uint64, err error) error {
		return &WitnessError{Witness: w.Name(), LogID: logID, Reason: reason, Size: size, Have: head.Size, Err: err}
	}
	old := min(known, head.Size)
	for attempt := 0; attempt < 4; attempt++ {
		var body bytes.Buffer
		fmt.Fprintf(&body, "old %d\n", old)
		if old > 0 && old < head.Size {
			p, err := prove(ctx, old)
			if err != nil {
				return Acknowledgement{}, werr(WitnessUnavailable, old, err)
			}
			for _, h := range p {
				body.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
			}
		}
		body.WriteString("\n")
		body.Write(signedNote)
		status, answer, err := w.post(ctx, body.Bytes())
		if err != nil {
			return Acknowledgement{}, werr(WitnessUnavailable, 0, err)
		}
		switch status {
		case http.StatusOK:
			cosigned := append(bytes.Clone(signedNote), answer...)
			if n, err := note.Open(cosigned, note.VerifierList(w.key)); err != nil || len(n.Sigs) == 0 {
				return Acknowledgement{}, werr(WitnessUnavailable, 0, fmt.Errorf("the witness's answer carries no valid cosignature"))
			}
			return Acknowledgement{Note: cosigned, Held: old}, nil
		case http.StatusConflict:
			size, err := strconv.ParseUint(strings.TrimSuffix(string(answer), "\n"), 10, 64)
			if err != nil {
				return Acknowledgement{}, werr(WitnessUnavailable, 0, fmt.Errorf("malformed 409 answer"))
			}
			switch {
			case size < known:
				return Acknowledgement{}, &WitnessError{Witness: w.Name(), LogID: logID, Reason: WitnessBackwards, Size: size, Have: known}
			case size > head.Size:
				return Acknowledgement{}, werr(WitnessAhead, size, nil)
			case size == old:
				// The size was right, so the roots differ (the spec's 409
				// for an equal size with another root).
				return Acknowledgement{}, werr(WitnessFork, size, nil)
			}
			old = size
		case http.StatusUnprocessableEntity:
			return Acknowledgement{}, werr(WitnessFork, old, nil)
		case http.StatusNotFound, http.StatusForbidden:
			return Acknowledgement{}, werr(WitnessUnknownLog, 0, nil)
		default:
			return Acknowledgement{}, werr(WitnessUnavailable, 0, fmt.Errorf("status %d", status))
		}
	}
	return Acknowledgement{}, werr(WitnessUnavailable, 0, fmt.Errorf("the witness's size kept changing"))
}

func (w *TlogWitness) post(ctx context.Context, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return 0, nil, haven.Wrap(haven.EINVALID, err, "bad audit witness URL")
	}
	c := w.Client
	if c == nil {
		c = defaultWitnessClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, haven.Wrap(haven.EUNAVAILABLE, err, "audit witness unreachable")
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxNote))
	if err != nil {
		return 0, nil, haven.Wrap(haven.EUNAVAILABLE, err, "audit witness unreachable")
	}
	return resp.StatusCode, answer, nil
}
