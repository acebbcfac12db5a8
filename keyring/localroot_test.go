package keyring_test

import (
	"bytes"
	"context"
	"crypto/fips140"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"haven"
	"haven/keyring"
)

func TestLocalRootIsCreatedPrivateAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "root.key")
	r, err := keyring.OpenLocalRoot(path, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Created() {
		t.Fatal("first open did not report creating the key")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	ctx := context.Background()
	w, err := r.Wrap(ctx, []byte("practice key bytes"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := keyring.OpenLocalRoot(path, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Created() || r2.ID() != r.ID() || !strings.HasPrefix(r.ID(), "local:") {
		t.Fatalf("reopen: created=%v id %s vs %s", r2.Created(), r2.ID(), r.ID())
	}
	got, err := r2.Unwrap(ctx, w, []byte("ad"))
	if err != nil || string(got) != "practice key bytes" {
		t.Fatalf("unwrap after reopen = %q, %v", got, err)
	}
	if _, err := r2.Unwrap(ctx, w, []byte("other ad")); err == nil {
		t.Fatal("unwrap with different associated data succeeded")
	}
}

func TestMissingKeyFileIsNotSilentlyCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	_, err := keyring.OpenLocalRoot(path, nil, false)
	wantCode(t, err, haven.ENOTFOUND)
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error does not name the file: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a key file appeared: %v", err)
	}
}

func TestKeyFileReadableByOthersIsRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o601} {
		path := filepath.Join(t.TempDir(), "root.key")
		if _, err := keyring.OpenLocalRoot(path, nil, true); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := keyring.OpenLocalRoot(path, nil, false)
		wantCode(t, err, haven.EINVALID)
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %04o: error names neither file nor fix: %v", mode, err)
		}
	}
}

func TestPassphraseKeyFileUsesOWASPArgon2idParameters(t *testing.T) {
	needArgon2(t)
	path := filepath.Join(t.TempDir(), "root.key")
	if _, err := keyring.OpenLocalRoot(path, []byte("passphrase"), true); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// time 1, memory 46 MiB, one lane: OWASP's first argon2id setting.
	want := []byte{0, 0, 0, 1, 0, 0, 0xb8, 0, 1}
	if got := raw[25:34]; !bytes.Equal(got, want) {
		t.Fatalf("argon2id parameters % x, want % x", got, want)
	}
}

func TestWrongPassphraseFailsClearly(t *testing.T) {
	needArgon2(t)
	keyring.UseCheapArgon2(t)
	path := filepath.Join(t.TempDir(), "root.key")
	r, err := keyring.OpenLocalRoot(path, []byte("correct horse battery staple"), true)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("correct horse")) {
		t.Fatal("passphrase stored in the key file")
	}
	_, err = keyring.OpenLocalRoot(path, []byte("correct horse battery stapler"), false)
	wantCode(t, err, haven.EUNAUTHORIZED)
	if !strings.Contains(err.Error(), "wrong passphrase") || !strings.Contains(err.Error(), path) {
		t.Fatalf("unclear error: %v", err)
	}
	// create=true must not replace a key it cannot open.
	if _, err := keyring.OpenLocalRoot(path, []byte("guess"), true); err == nil {
		t.Fatal("wrong passphrase with create=true succeeded")
	}
	if _, err := keyring.OpenLocalRoot(path, nil, false); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("missing passphrase: %v", err)
	}
	r2, err := keyring.OpenLocalRoot(path, []byte("correct horse battery staple"), false)
	if err != nil || r2.ID() != r.ID() {
		t.Fatalf("right passphrase: %v", err)
	}
}

func TestPlainKeyFileWithPassphraseIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	if _, err := keyring.OpenLocalRoot(path, nil, true); err != nil {
		t.Fatal(err)
	}
	_, err := keyring.OpenLocalRoot(path, []byte("a passphrase"), false)
	wantCode(t, err, haven.EINVALID)
}

func TestCorruptedKeyFileFails(t *testing.T) {
	keyring.UseCheapArgon2(t)
	passes := [][]byte{nil, []byte("passphrase")}
	if fips140.Enabled() {
		passes = passes[:1] // passphrase files are refused in FIPS mode (TestPassphraseKeyFileIsRefusedInFIPSMode)
	}
	for _, pass := range passes {
		path := filepath.Join(t.TempDir(), "root.key")
		if _, err := keyring.OpenLocalRoot(path, pass, true); err != nil {
			t.Fatal(err)
		}
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// Flip one bit in every byte (plain file) or in each field of the
		// passphrase-sealed one (each open costs an argon2id run): magic,
		// version, mode, id, time, memory, threads, salt, nonce, sealed
		// key, tag are all covered.
		positions := []int{0, 7, 8, 9, 28, 32, 33, 34, 50, 62, len(orig) - 1}
		if pass == nil {
			positions = positions[:0]
			for i := range orig {
				positions = append(positions, i)
			}
		}
		for _, i := range positions {
			b := bytes.Clone(orig)
			b[i] ^= 0x01
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := keyring.OpenLocalRoot(path, pass, false); err == nil {
				t.Fatalf("passphrase=%v: bit flipped at byte %d went unnoticed", pass != nil, i)
			}
		}
		for _, b := range [][]byte{orig[:len(orig)-1], append(bytes.Clone(orig), 0), nil} {
			os.WriteFile(path, b, 0o600)
			if _, err := keyring.OpenLocalRoot(path, pass, false); err == nil {
				t.Fatalf("file of %d bytes accepted", len(b))
			}
		}
	}
}

func TestDifferentKeyFileFailsAtKeyringOpen(t *testing.T) {
	k, store, rootA := newKeyring(t)
	ad := keyring.AD{PracticeID: "p1", PatientID: "alice", Kind: "note", RecordID: "n1", Field: "body"}
	mustSeal(t, k, ad, "sensitive")

	rootB := newRoot(t, "other.key")
	_, err := keyring.Open(context.Background(), keyring.Config{Store: store, Root: rootB})
	if err == nil {
		t.Fatal("keyring opened with a different key file")
	}
	if !strings.Contains(err.Error(), rootA.ID()) || !strings.Contains(err.Error(), rootB.ID()) {
		t.Fatalf("error does not name both roots: %v", err)
	}
}

// needArgon2 stops a test of passphrase-protected key files in FIPS 140-3
// mode, after checking that such a file is refused there with a message
// naming the way out, so make test-fips still shows what it does instead.
func needArgon2(t *testing.T) {
	t.Helper()
	if !fips140.Enabled() {
		return
	}
	_, err := keyring.OpenLocalRoot(filepath.Join(t.TempDir(), "root.key"), []byte("passphrase"), true)
	if err == nil || !strings.Contains(err.Error(), "not FIPS 140-3 approved") || !strings.Contains(err.Error(), "--kms") {
		t.Fatalf("a passphrase key file in FIPS mode: %v, want a refusal that names KMS", err)
	}
	t.Skip("argon2id key files are refused in FIPS 140-3 mode (refusal checked)")
}

// In FIPS 140-3 mode a passphrase file made earlier is refused before
// argon2id runs, rather than silently using a non-approved KDF.
func TestPassphraseKeyFileIsRefusedInFIPSMode(t *testing.T) {
	if !fips140.Enabled() {
		t.Skip("runs under make test-fips (GODEBUG=fips140=only)")
	}
	path := filepath.Join(t.TempDir(), "root.key")
	if _, err := keyring.OpenLocalRoot(path, []byte("passphrase"), true); err == nil {
		t.Fatal("a passphrase key file was created in FIPS mode")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused key file was left behind: %v", err)
	}
}
