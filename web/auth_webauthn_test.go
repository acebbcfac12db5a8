package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// postOptions is the page script's options request: a same-origin POST
// with no body.
func (c *client) postOptions(path string) *http.Response {
	return c.do("POST", path, nil, map[string]string{"Sec-Fetch-Site": "same-origin", "Accept": "application/json"})
}

type passkeyOptions struct {
	PublicKey struct {
		Challenge        string              `json:"challenge"`
		RPID             string              `json:"rpId"`
		RP               struct{ ID string } `json:"rp"`
		Allow            []json.RawMessage   `json:"allowCredentials"`
		UserVerification string              `json:"userVerification"`
	} `json:"publicKey"`
}

// TestPasswordlessOptionsSayNothingAboutAnyone: the passwordless sign-in
// begins without an email, names no credential, demands user
// verification, and gives each request its own challenge, bound to a
// device cookie it sets.
func TestPasswordlessOptionsSayNothingAboutAnyone(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	st.withPasskeys()
	c := st.client(firefox)
	seen := map[string]bool{}
	for range 2 {
		r := c.postOptions("/login/passkey/options")
		expectStatus(t, r, http.StatusOK)
		var o passkeyOptions
		if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
			t.Fatal(err)
		}
		if o.PublicKey.RPID != "localhost" || len(o.PublicKey.Allow) != 0 || o.PublicKey.UserVerification != "required" ||
			len(o.PublicKey.Challenge) < 43 || seen[o.PublicKey.Challenge] {
			t.Fatalf("passwordless options %+v", o)
		}
		seen[o.PublicKey.Challenge] = true
	}
	if c.cookie("__Host-haven_device") == nil {
		t.Fatal("no device cookie to bind the challenge to")
	}
	// An answer that is not one shows the sign-in page with an error,
	// and signs no one in.
	r := c.post("/login/passkey", url.Values{"credential": {`{"id":"x"}`}})
	expectStatus(t, r, http.StatusBadRequest)
	if page := readAll(t, r); !strings.Contains(page, `id="error"`) || !strings.Contains(page, `id="passkey-sign-in"`) {
		t.Fatalf("refusal page:\n%s", page)
	}
	if c.cookie("__Host-haven_session") != nil {
		t.Fatal("a session cookie was set")
	}
}

// TestPasskeyPostsFromAnotherSiteAreRefused: the answer forms are state
// changes like any other; a cross-site page cannot post them.
func TestPasskeyPostsFromAnotherSiteAreRefused(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	st.withPasskeys()
	c := st.client(firefox)
	for _, path := range []string{"/login/passkey", "/login/passkey/options", "/account/passkeys/options", "/account/passkeys"} {
		r := c.do("POST", path, strings.NewReader("credential=x"), map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
		expectStatus(t, r, http.StatusForbidden)
	}
}

// TestAddingPasskeyNeedsAFreshAuthentication: registration options are
// refused with code step_up once the sign-in is older than the step-up
// window, so the page sends the user to confirm it is them first.
func TestAddingPasskeyNeedsAFreshAuthentication(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	st.withPasskeys()
	c := st.client(firefox)
	expectRedirect(t, c.post("/login", url.Values{"email": {patientEmail}, "password": {stackPassword}}), "/app")
	expectStatus(t, c.postOptions("/account/passkeys/options"), http.StatusOK)
	page := readAll(t, c.get("/account/passkeys"))
	if !strings.Contains(page, `data-passkey="register"`) || !strings.Contains(page, `src="/static/webauthn.js"`) {
		t.Fatalf("passkeys page:\n%s", page)
	}

	st.clock.Advance(10 * time.Minute)
	r := c.postOptions("/account/passkeys/options")
	expectStatus(t, r, http.StatusForbidden)
	if body := readAll(t, r); !strings.Contains(body, `"step_up"`) {
		t.Fatalf("stale registration answered %s", body)
	}
	// Signed out, nothing.
	expectStatus(t, st.client(firefox).postOptions("/account/passkeys/options"), http.StatusUnauthorized)
}

// TestChallengedSessionMayStepUpWithPasskey: a session that moved to
// another device may reach the passkey step-up (and nothing else). The
// options routes answer webauthn.js in JSON, so elsewhere the refusal is
// the "step_up" code the script sends the browser to step up on, not a
// redirect its fetch would follow to an HTML page.
func TestChallengedSessionMayStepUpWithPasskey(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	st.withPasskeys()
	c := st.client(firefox)
	c.signIn(doctor, "")
	c.ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/140.0 Safari/537.36"
	refused := c.postOptions("/account/passkeys/options")
	expectStatus(t, refused, http.StatusForbidden)
	if body := readAll(t, refused); !strings.Contains(body, `"code":"step_up"`) {
		t.Fatalf("passkey options of a challenged session: %s", body)
	}
	// This clinician has no passkey yet: the step-up options say so,
	// rather than sending the session away.
	r := c.postOptions("/account/step-up/webauthn/options")
	expectStatus(t, r, http.StatusBadRequest)
	if body := readAll(t, r); !strings.Contains(body, "no passkey") {
		t.Fatalf("step-up options: %s", body)
	}
}

func TestPasskeyScriptIsAModuleWithoutInlineCode(t *testing.T) {
	t.Parallel()
	st := newAuthStack(t, false)
	st.withPasskeys()
	c := st.client(firefox)
	page := readAll(t, c.get("/login"))
	if !strings.Contains(page, `<script type="module" src="/static/webauthn.js"></script>`) || strings.Contains(page, "onclick") {
		t.Fatalf("login page:\n%s", page)
	}
	js := readAll(t, c.get("/static/webauthn.js"))
	for _, want := range []string{"navigator.credentials.get", "navigator.credentials.create", "export function fromBase64url"} {
		if !strings.Contains(js, want) {
			t.Errorf("webauthn.js lacks %q", want)
		}
	}
}
