package keyring_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"gocloud.dev/secrets/localsecrets"

	"haven"
	"haven/keyring"
	"haven/keyring/memstore"
)

func base64KeyURL(t *testing.T) string {
	t.Helper()
	var k [32]byte
	rand.Read(k[:])
	return "base64key://" + base64.URLEncoding.EncodeToString(k[:])
}

func TestKMSRootSealsThroughAKeeper(t *testing.T) {
	ctx := context.Background()
	u := base64KeyURL(t)
	root, err := keyring.OpenKMSRoot(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(root.ID(), "kms:base64key:") || strings.Contains(root.ID(), u[len("base64key://"):]) {
		t.Fatalf("KMS root id %q reveals the key or is unnamed", root.ID())
	}
	w, err := root.Wrap(ctx, []byte("practice key"), []byte("row 1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Unwrap(ctx, w, []byte("row 2")); err == nil {
		t.Fatal("KMS-wrapped key opened for another row")
	}
	w[len(w)-1] ^= 1
	if _, err := root.Unwrap(ctx, w, []byte("row 1")); err == nil {
		t.Fatal("altered KMS-wrapped key opened")
	}

	store := memstore.New()
	c := seedChart(t, openKeyring(t, store, root))
	again, err := keyring.OpenKMSRoot(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	c.check(t, openKeyring(t, store, again))

	other, err := keyring.OpenKMSRoot(ctx, base64KeyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Open(ctx, keyring.Config{Store: store, Root: other}); err == nil || !strings.Contains(err.Error(), root.ID()) {
		t.Fatalf("a different KMS key was accepted or not named: %v", err)
	}
}

func TestKMSKeyBehindTheSameNameIsCaughtAtOpen(t *testing.T) {
	var a, b [32]byte
	rand.Read(a[:])
	rand.Read(b[:])
	store := memstore.New()
	seedChart(t, openKeyring(t, store, keyring.NewKMSRoot("kms:test://root", localsecrets.NewKeeper(a))))
	_, err := keyring.Open(context.Background(), keyring.Config{Store: store, Root: keyring.NewKMSRoot("kms:test://root", localsecrets.NewKeeper(b))})
	if err == nil || !strings.Contains(err.Error(), "cannot unwrap") {
		t.Fatalf("a different key under the same KMS name was accepted: %v", err)
	}
}

func TestRootRotationMovesFromKeyFileToKMS(t *testing.T) {
	k, store, _ := newKeyring(t)
	c := seedChart(t, k)
	kms, err := keyring.OpenKMSRoot(context.Background(), base64KeyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.RotateRoot(context.Background(), kms, nil); err != nil {
		t.Fatal(err)
	}
	c.check(t, openKeyring(t, store, kms))
}

// fakeTransit answers the two calls of Vault's transit engine that the
// hashivault driver makes, sealing with AES-GCM, so the real driver runs
// end to end over loopback HTTP. broken makes it answer with nonsense.
type fakeTransit struct {
	aead   cipher.AEAD
	token  string
	broken atomic.Bool
}

func (f *fakeTransit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Vault-Token") != f.token {
		http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
		return
	}
	var in struct{ Plaintext, Ciphertext string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, `{"errors":["bad json"]}`, http.StatusBadRequest)
		return
	}
	if f.broken.Load() {
		w.Write([]byte(`{"data":{}}`))
		return
	}
	var data map[string]string
	switch r.URL.Path {
	case "/v1/transit/encrypt/haven-root":
		pt, _ := base64.StdEncoding.DecodeString(in.Plaintext)
		data = map[string]string{"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(f.aead.Seal(nil, nil, pt, nil))}
	case "/v1/transit/decrypt/haven-root":
		ct, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(in.Ciphertext, "vault:v1:"))
		if err != nil || len(ct) < 12 {
			http.Error(w, `{"errors":["invalid ciphertext"]}`, http.StatusBadRequest)
			return
		}
		pt, err := f.aead.Open(nil, nil, ct, nil)
		if err != nil {
			http.Error(w, `{"errors":["cipher: message authentication failed"]}`, http.StatusBadRequest)
			return
		}
		data = map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)}
	default:
		http.NotFound(w, r)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"data": data})
}

func TestHashiVaultURLRootRunsTheRealDriver(t *testing.T) {
	var key [32]byte
	rand.Read(key[:])
	block, _ := aes.NewCipher(key[:])
	aead, _ := cipher.NewGCMWithRandomNonce(block) // nonce || ciphertext, like Vault's transit
	transit := &fakeTransit{aead: aead, token: "test-token"}
	srv := httptest.NewServer(transit)
	defer srv.Close()
	t.Setenv("VAULT_SERVER_URL", srv.URL)
	t.Setenv("VAULT_SERVER_TOKEN", "test-token")

	ctx := context.Background()
	root, err := keyring.OpenKMSRoot(ctx, "hashivault://haven-root")
	if err != nil {
		t.Fatal(err)
	}
	if root.ID() != "kms:hashivault://haven-root" {
		t.Fatalf("id %q", root.ID())
	}
	store := memstore.New()
	c := seedChart(t, openKeyring(t, store, root))
	c.check(t, openKeyring(t, store, root))

	// A server answering nonsense makes the driver panic inside; the
	// keyring reports an unavailable KMS instead of crashing.
	transit.broken.Store(true)
	_, err = keyring.Open(ctx, keyring.Config{Store: store, Root: root})
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("broken KMS: %v", err)
	}
}

// TestRewrapUnderRootSealsEveryKeyAgain checks the re-wrap that follows a
// KMS key rotation: every live practice and index key is wrapped anew by
// the same root (a KMS seals with its newest version), all still open,
// and a re-wrap is refused while a root rotation is unfinished.
func TestRewrapUnderRootSealsEveryKeyAgain(t *testing.T) {
	var key [32]byte
	rand.Read(key[:])
	root := keyring.NewKMSRoot("kms:test://root", localsecrets.NewKeeper(key))
	store := memstore.New()
	k := openKeyring(t, store, root)
	c := seedChart(t, k)
	ctx := context.Background()
	before, _ := store.ListKeys(ctx, "", "", "", "", 10000)
	if err := k.RewrapUnderRoot(ctx, nil); err != nil {
		t.Fatal(err)
	}
	after, _ := store.ListKeys(ctx, "", "", "", "", 10000)
	rewrapped := 0
	for i := range before {
		if before[i].Kind != keyring.KindPractice && before[i].Kind != keyring.KindIndex {
			continue
		}
		if string(before[i].Wrapped) == string(after[i].Wrapped) {
			t.Fatalf("the %s key of %s was not wrapped again", before[i].Kind, before[i].PracticeID)
		}
		rewrapped++
	}
	if rewrapped == 0 {
		t.Fatal("no practice or index key to re-wrap: the check above proved nothing")
	}
	c.check(t, openKeyring(t, store, root))

	// Halfway through a move to another root, a re-wrap under the
	// configured one would undo it: refused.
	next, err := keyring.OpenKMSRoot(ctx, base64KeyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetRoot(ctx, root.ID(), next.ID()); err != nil {
		t.Fatal(err)
	}
	if err := openKeyring(t, store, root, next).RewrapUnderRoot(ctx, nil); haven.ErrorCode(err) != haven.ECONFLICT {
		t.Fatalf("re-wrap during an unfinished root rotation: %v", err)
	}
}
