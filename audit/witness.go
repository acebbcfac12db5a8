package audit

import (
	"bytes"
	"context"
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
)

// Witness receives signed checkpoints and keeps them outside Haven's
// database. A copy the insider cannot reach is what turns a quiet rollback
// (truncate the log, restore an old backup, re-append) into a detected one:
// the verifier finds the log shorter than, or different from, what was
// published.
type Witness interface {
	Publish(ctx context.Context, logID string, signedNote []byte) error
}

// maxNote bounds a checkpoint note read from a witness or sent to one.
const maxNote = 16 << 10

// DirWitness publishes checkpoints as files <Dir>/<logID>/<size>.note. The
// directory can live on another machine's mount, write-once storage or a
// backup medium. A file, once written, is never replaced with different
// content: that would be the witness helping a rollback.
type DirWitness struct {
	Dir string
}

// Publish writes signedNote atomically (write a temporary file, then link
// it into place, which fails if the name exists). Publishing the same note
// twice is fine; a different note for the same size is haven.ECONFLICT.
func (w DirWitness) Publish(ctx context.Context, logID string, signedNote []byte) error {
	if !isLogID(logID) {
		return haven.Errorf(haven.EINVALID, "audit witness: bad log id")
	}
	size, err := noteSize(signedNote)
	if err != nil {
		return err
	}
	dir := filepath.Join(w.Dir, logID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "audit witness directory unavailable")
	}
	name := filepath.Join(dir, strconv.FormatUint(size, 10)+".note")
	if same, err := sameFile(name, signedNote); err == nil {
		if same {
			return nil
		}
		return haven.Errorf(haven.ECONFLICT, "audit witness already holds a different checkpoint for log %s at size %d", logID, size)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "audit witness directory unavailable")
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(signedNote)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o640)
	}
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot write audit witness file")
	}
	if err := os.Link(tmp.Name(), name); err != nil {
		if errors.Is(err, os.ErrExist) { // a concurrent publisher won; same content is fine
			if same, err2 := sameFile(name, signedNote); err2 == nil && same {
				return nil
			}
			return haven.Errorf(haven.ECONFLICT, "audit witness already holds a different checkpoint for log %s at size %d", logID, size)
		}
		return haven.Wrap(haven.EUNAVAILABLE, err, "cannot write audit witness file")
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable
		d.Sync()
		d.Close()
	}
	return nil
}

func sameFile(name string, want []byte) (bool, error) {
	got, err := os.ReadFile(name)
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, want), nil
}

// noteSize reads the tree size from a checkpoint note without checking its
// signature; the witness stores, the verifier judges.
func noteSize(signedNote []byte) (uint64, error) {
	if len(signedNote) > maxNote {
		return 0, haven.Errorf(haven.EINVALID, "audit checkpoint too large")
	}
	text, _, ok := bytes.Cut(signedNote, []byte("\n\n"))
	if !ok {
		return 0, haven.Errorf(haven.EINVALID, "malformed audit checkpoint")
	}
	h, err := ParseTreeHead(string(text) + "\n")
	if err != nil {
		return 0, err
	}
	return h.Size, nil
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

// HTTPWitness publishes checkpoints by POSTing the signed note to URL as
// text/plain. The log id travels inside the note's origin line and in the
// Haven-Audit-Log header. A 2xx answer is success; 409 means the witness
// holds a different checkpoint at that size (a fork), which is reported as
// haven.ECONFLICT.
type HTTPWitness struct {
	URL    string
	Client *http.Client // nil: a client with a 10-second timeout
}

var defaultWitnessClient = &http.Client{Timeout: 10 * time.Second}

// Publish sends signedNote to the witness.
func (w HTTPWitness) Publish(ctx context.Context, logID string, signedNote []byte) error {
	if !isLogID(logID) {
		return haven.Errorf(haven.EINVALID, "audit witness: bad log id")
	}
	if len(signedNote) > maxNote {
		return haven.Errorf(haven.EINVALID, "audit checkpoint too large")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(signedNote))
	if err != nil {
		return haven.Wrap(haven.EINVALID, err, "bad audit witness URL")
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("Haven-Audit-Log", logID)
	c := w.Client
	if c == nil {
		c = defaultWitnessClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return haven.Wrap(haven.EUNAVAILABLE, err, "audit witness unreachable")
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusConflict:
		return haven.Errorf(haven.ECONFLICT, "audit witness holds a different checkpoint for log %s", logID)
	default:
		return haven.Wrap(haven.EUNAVAILABLE, fmt.Errorf("status %d", resp.StatusCode), "audit witness refused the checkpoint")
	}
}
