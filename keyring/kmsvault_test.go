package keyring_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/keyring"
	"haven/keyring/keyringtest"
	"haven/keyring/memstore"
)

// wrappedByVault returns how many live practice and index keys in store
// are sealed by each Vault transit key version ("vault:v1:" ...).
func wrappedByVault(t *testing.T, store *memstore.Store) map[string]int {
	t.Helper()
	keys, err := store.ListKeys(context.Background(), "", "", "", "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, k := range keys {
		if k.State == keyring.StateDestroyed || (k.Kind != keyring.KindPractice && k.Kind != keyring.KindIndex) {
			continue
		}
		s := string(k.Wrapped)
		i := strings.Index(s, "vault:v")
		if i < 0 {
			t.Fatalf("the %s key of %s is not sealed by Vault transit", k.Kind, k.PracticeID)
		}
		out[s[i:i+len("vault:v")+1]]++
	}
	return out
}

// TestVaultTransitRoot runs the KMS root against a real Vault server's
// transit engine: keys are wrapped there and open from a fresh keyring;
// a rotation of the transit key followed by RewrapUnderRoot moves every
// key to the new version, after which the old one can be switched off;
// while Vault is down the keyring fails closed with a clear error and
// writes nothing, and it opens again when Vault is back.
func TestVaultTransitRoot(t *testing.T) {
	v := keyringtest.StartVault(t)
	v.CreateTransitKey("haven-root")
	for _, kv := range v.Env() {
		k, val, _ := strings.Cut(kv, "=")
		t.Setenv(k, val)
	}
	ctx := context.Background()
	root, err := keyring.OpenKMSRoot(ctx, "hashivault://haven-root")
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	k := openKeyring(t, store, root)
	c := seedChart(t, k)
	c.check(t, openKeyring(t, store, root))
	if got := wrappedByVault(t, store); got["vault:v1"] == 0 || len(got) != 1 {
		t.Fatalf("wrapped keys by transit version: %v", got)
	}

	// Rotation. Switching the old version off before Haven re-wrapped
	// fails closed: the check below can fail.
	if ver := v.RotateTransitKey("haven-root"); ver != 2 {
		t.Fatalf("transit key version %d after one rotation", ver)
	}
	v.SetMinDecryptionVersion("haven-root", 2)
	if _, err := keyring.Open(ctx, keyring.Config{Store: store, Root: root}); err == nil {
		t.Fatal("keys sealed by a switched-off transit version still opened")
	}
	v.SetMinDecryptionVersion("haven-root", 1)
	if err := k.RewrapUnderRoot(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := wrappedByVault(t, store); got["vault:v2"] == 0 || len(got) != 1 {
		t.Fatalf("after the re-wrap, keys by transit version: %v", got)
	}
	v.SetMinDecryptionVersion("haven-root", 2)
	c.check(t, openKeyring(t, store, root))

	// Outage: Vault killed. A node starting now cannot open the keys and
	// says why; nothing is written to the key table meanwhile.
	before, _ := store.ListKeys(ctx, "", "", "", "", 10000)
	v.Stop()
	start := time.Now()
	_, err = keyring.Open(ctx, keyring.Config{Store: store, Root: root})
	if err == nil {
		t.Fatal("the keyring opened with Vault down")
	}
	if haven.ErrorCode(err) != haven.EUNAVAILABLE || !strings.Contains(err.Error(), "kms:hashivault://haven-root") {
		t.Fatalf("error with Vault down is not a clear unavailable KMS: %v", err)
	}
	t.Logf("with Vault down, Open failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	// A running keyring keeps what it already unwrapped (for at most its
	// cache lifetime); a key it must have Vault wrap, a new practice's, is
	// refused as unavailable and nothing is stored.
	c.check(t, k)
	ad := keyring.AD{PracticeID: "p3", PatientID: "dave", Kind: "note", RecordID: "r-dave", Field: "body"}
	if _, err := k.Seal(ctx, ad, []byte("note of dave at p3")); haven.ErrorCode(err) != haven.EUNAVAILABLE {
		t.Fatalf("sealing under a new practice key with Vault down: %v", err)
	}
	after, _ := store.ListKeys(ctx, "", "", "", "", 10000)
	if len(after) != len(before) {
		t.Fatalf("the key table changed while Vault was down: %d keys, then %d", len(before), len(after))
	}
	for i := range before {
		if string(before[i].Wrapped) != string(after[i].Wrapped) || before[i].State != after[i].State {
			t.Fatalf("key %s changed while Vault was down", before[i].ID)
		}
	}

	v.Start()
	c.check(t, openKeyring(t, store, root))
	mustOpen(t, k, ad, mustSeal(t, k, ad, "note of dave at p3"), "note of dave at p3")
}
