package keyring

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"

	"github.com/hashicorp/vault/api"
	"gocloud.dev/secrets"
	// hashivault:// makes a Vault (or API-compatible) transit key the
	// root: the deployment shape beyond one machine.
	"gocloud.dev/secrets/hashivault"

	"haven"
)

// KMSRoot is a root key held by a key management service and reached
// through a gocloud.dev secrets keeper: the key never enters Haven's
// memory; practice keys are sent to the KMS to be wrapped and unwrapped.
type KMSRoot struct {
	id     string
	keeper *secrets.Keeper
}

// OpenKMSRoot opens the keeper at keeperURL, e.g. "hashivault://haven-root"
// (Vault transit; the server and token come from VAULT_SERVER_URL or
// VAULT_ADDR and VAULT_SERVER_TOKEN or VAULT_TOKEN). Other gocloud schemes
// work when their driver package is linked in.
func OpenKMSRoot(ctx context.Context, keeperURL string) (*KMSRoot, error) {
	u, err := url.Parse(keeperURL)
	if err != nil || u.Scheme == "" {
		return nil, haven.Errorf(haven.EINVALID, "KMS root must be a URL such as hashivault://KEY")
	}
	var keeper *secrets.Keeper
	if u.Scheme == hashivault.Scheme {
		keeper, err = openVaultKeeper(ctx, u)
	} else {
		keeper, err = secrets.OpenKeeper(ctx, keeperURL)
	}
	if err != nil {
		return nil, haven.Wrap(haven.EINVALID, err, "cannot open KMS root "+kmsID(u))
	}
	return &KMSRoot{id: kmsID(u), keeper: keeper}, nil
}

// openVaultKeeper opens a Vault transit keeper with a client made from
// the environment as it is now. The driver's own default opener reads the
// environment once per process and keeps that server for good, so a
// second root (a test's, or a command run after VAULT_ADDR changed) would
// silently talk to the first server.
func openVaultKeeper(ctx context.Context, u *url.URL) (*secrets.Keeper, error) {
	addr := firstEnv("VAULT_SERVER_URL", "VAULT_ADDR")
	if addr == "" {
		return nil, haven.Errorf(haven.EINVALID, "set VAULT_ADDR (or VAULT_SERVER_URL) to the Vault server's address")
	}
	cfg := api.DefaultConfig() // VAULT_CACERT and the other client settings
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	cfg.Address = addr
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if token := firstEnv("VAULT_SERVER_TOKEN", "VAULT_TOKEN"); token != "" {
		client.SetToken(token)
	}
	return (&hashivault.URLOpener{Client: client}).OpenKeeperURL(ctx, u)
}

// firstEnv is the first of the variables that is set.
func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// NewKMSRoot wraps an open keeper; id names it in key records and status
// (it must not be secret and must stay the same across restarts).
func NewKMSRoot(id string, keeper *secrets.Keeper) *KMSRoot {
	return &KMSRoot{id: id, keeper: keeper}
}

// kmsID names a keeper URL without its query. The base64key scheme carries
// the key itself in the URL, so it is named by a fingerprint instead.
func kmsID(u *url.URL) string {
	if u.Scheme == "base64key" {
		sum := sha256.Sum256([]byte("haven.kms.id.v1|" + u.Host + u.Path))
		return "kms:base64key:" + hex.EncodeToString(sum[:8])
	}
	return "kms:" + u.Scheme + "://" + u.Host + u.Path
}

// ID returns "kms:" and the keeper URL without query.
func (r *KMSRoot) ID() string { return r.id }

// A KMS keeper takes no associated data, so format 1 puts it inside what
// the KMS encrypts and checks it after decryption:
//
//	0x01 | KMS ciphertext of (0x01 | len(ad) u32 | ad | plaintext)
const kmsFormatV1 = 0x01

// Wrap has the KMS encrypt plaintext together with ad.
func (r *KMSRoot) Wrap(ctx context.Context, plaintext, ad []byte) ([]byte, error) {
	msg := make([]byte, 0, 5+len(ad)+len(plaintext))
	msg = append(msg, kmsFormatV1)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(ad)))
	msg = append(append(msg, ad...), plaintext...)
	defer clear(msg)
	ct, err := guard(func() ([]byte, error) { return r.keeper.Encrypt(ctx, msg) })
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "KMS root "+r.id+" cannot wrap")
	}
	return append([]byte{kmsFormatV1}, ct...), nil
}

// Unwrap has the KMS decrypt and checks the ad that was sealed with it.
func (r *KMSRoot) Unwrap(ctx context.Context, wrapped, ad []byte) ([]byte, error) {
	if len(wrapped) < 2 || wrapped[0] != kmsFormatV1 {
		return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "KMS-wrapped key is malformed")
	}
	msg, err := guard(func() ([]byte, error) { return r.keeper.Decrypt(ctx, wrapped[1:]) })
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "KMS root "+r.id+" cannot unwrap (wrong KMS key, altered record, or KMS unavailable)")
	}
	defer clear(msg)
	if len(msg) < 5 || msg[0] != kmsFormatV1 {
		return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "KMS-wrapped key is malformed")
	}
	n := binary.BigEndian.Uint32(msg[1:5])
	if uint64(n) > uint64(len(msg)-5) || subtle.ConstantTimeCompare(msg[5:5+n], ad) != 1 {
		return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "KMS-wrapped key belongs to another record")
	}
	return append([]byte(nil), msg[5+n:]...), nil
}

// Close releases the keeper.
func (r *KMSRoot) Close() error { return r.keeper.Close() }

// guard turns a panic in a KMS driver into an error: the Vault driver
// type-asserts the server's reply, and a misbehaving server must not be
// able to crash every node.
func guard(f func() ([]byte, error)) (b []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("KMS driver panicked: %v", p)
		}
	}()
	return f()
}
