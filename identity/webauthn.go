package identity

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"haven"
	"haven/store/sqlstore"
)

// The adapter between Haven and the WebAuthn library: the relying party
// (Haven's public origin), accounts and stored credentials in the
// library's form, and each ceremony's session data kept server-side until
// its answer comes. The ceremonies themselves are in passkeys.go and
// passkeys_enrol.go.

// relyingParty derives the relying party id and the origin from an
// https:// URL.
func relyingParty(publicURL string) (rpID, origin string, err error) {
	u, perr := url.Parse(strings.TrimSpace(publicURL))
	if perr != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		(u.Path != "" && u.Path != "/") {
		return "", "", haven.Errorf(haven.EINVALID, "the public URL must be an https:// origin such as https://clinic.example, got %q", publicURL)
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return "", "", haven.Errorf(haven.EINVALID, "passkeys need a host name in the public URL, not the IP address %s (on one machine use https://localhost:%s)", host, u.Port())
	}
	if err := protocol.ValidateRPID(host); err != nil {
		return "", "", haven.Wrap(haven.EINVALID, err, "the public URL's host is not a valid passkey domain")
	}
	origin = "https://" + host
	if port := u.Port(); port != "" && port != "443" {
		origin += ":" + port
	}
	return host, origin, nil
}

// passkeyUser is a Haven account as the WebAuthn library sees it. The user
// handle is the account id: random, not PHI, and different for the same
// person's accounts in two practices, so a passkey belongs to one account.
type passkeyUser struct {
	u             *haven.User
	name, display string
	creds         []webauthn.Credential
}

func (w *passkeyUser) WebAuthnID() []byte                         { return []byte(w.u.ID) }
func (w *passkeyUser) WebAuthnName() string                       { return w.name }
func (w *passkeyUser) WebAuthnDisplayName() string                { return w.display }
func (w *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// libraryCredential is a stored credential in the library's form.
func libraryCredential(r sqlstore.WebAuthnCredential) webauthn.Credential {
	flags := protocol.FlagUserPresent
	if r.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if r.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if r.BackupState {
		flags |= protocol.FlagBackupState
	}
	c := webauthn.Credential{ID: r.CredentialID, PublicKey: r.PublicKey, AttestationFormat: r.AttestationFormat,
		Flags: webauthn.NewCredentialFlags(flags), Authenticator: webauthn.Authenticator{AAGUID: r.AAGUID, SignCount: r.SignCount}}
	for _, t := range r.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

// userFor loads u's credentials for the library.
func (p *Passkeys) userFor(ctx context.Context, u *haven.User) (*passkeyUser, []sqlstore.WebAuthnCredential, error) {
	recs, err := p.id.db.WebAuthnCredentials(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	w := &passkeyUser{u: u, name: u.ID, display: u.ID}
	for _, r := range recs {
		w.creds = append(w.creds, libraryCredential(r))
	}
	return w, recs, nil
}

// challengeHash is how a challenge is stored and found: the SHA-256 of its
// base64url form, exactly as the browser echoes it in clientDataJSON.
func challengeHash(challenge string) []byte {
	h := sha256.Sum256([]byte("haven webauthn challenge v1\x00" + challenge))
	return h[:]
}

// store keeps a ceremony's session data until its answer comes.
func (p *Passkeys) store(ctx context.Context, kind, userID, binding string, sd *webauthn.SessionData) error {
	b, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	now := p.id.now()
	// Expired ceremonies go as new ones come (at most once a minute, to
	// spare a write per sign-in), so abandoned ones do not pile up.
	p.mu.Lock()
	purge := now.Sub(p.lastPurge) >= time.Minute || now.Before(p.lastPurge)
	if purge {
		p.lastPurge = now
	}
	p.mu.Unlock()
	if purge {
		if _, err := p.id.db.PurgeWebAuthnChallenges(ctx, now); err != nil {
			return err
		}
	}
	return p.id.db.CreateWebAuthnChallenge(ctx, sqlstore.WebAuthnChallenge{Hash: challengeHash(sd.Challenge), Kind: kind,
		UserID: userID, Binding: binding, SessionData: b, CreatedAt: now, ExpiresAt: now.Add(p.ttl)})
}

// take uses up the challenge a browser answered, if it was issued for kind
// and binding (and to userID, when one is given).
func (p *Passkeys) take(ctx context.Context, challenge, kind, binding, userID string) (*webauthn.SessionData, error) {
	row, err := p.id.db.UseWebAuthnChallenge(ctx, challengeHash(challenge), kind, binding, p.id.now())
	if err != nil {
		return nil, err
	}
	if userID != "" && row.UserID != userID {
		return nil, haven.Errorf(haven.ENOTFOUND, "challenge issued to another user")
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(row.SessionData, &sd); err != nil {
		return nil, err
	}
	return &sd, nil
}

// options encodes what the browser passes to navigator.credentials.
func options(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	return json.RawMessage(b), err
}
