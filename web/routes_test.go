package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"haven/identity"
	"haven/internal/testkit"
	"haven/internal/testkit/stack"
	"haven/smart"
	"haven/video/sfu"
	"haven/video/token"
	"haven/web"
)

// newFullServer builds a server the way `haven serve` does, with every
// part on (passkeys too: a host name scopes them), on SQLite.
func newFullServer(t *testing.T) *web.Server {
	t.Helper()
	stk := stack.New(t, testkit.SQLite(t), stack.WallClock(), stack.NoBlobs())
	db, svc := stk.DB, stk.Service
	id := identity.New(svc.Gate(), identity.Config{DB: db, BaseURL: "https://localhost"})
	t.Cleanup(id.Close)
	pk, err := identity.NewPasskeys(id, identity.PasskeyConfig{PublicURL: "https://localhost"})
	if err != nil {
		t.Fatal(err)
	}
	media, err := sfu.New(sfu.Config{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { media.Close() })
	apps, err := smart.New(context.Background(), svc.Gate(), db, "https://localhost")
	if err != nil {
		t.Fatal(err)
	}
	return newWebServer(t, web.Config{Ready: db, Service: svc, Identity: id, Passkeys: pk,
		Video: &web.VideoConfig{SFU: media, TokenKey: make([]byte, token.KeySize), Spent: db.SpentTokens()}, SMART: apps})
}

// TestEveryRouteThatNeedsASessionAsksForOne holds the route table's "who"
// column against a fully built server: every route that needs a session,
// asked without one, answers as a signed-out request should before its
// handler runs (401 with the unauthorized code for the API and the
// WebSocket, the sign-in page that returns here for a page); and every API
// route sits under /api/ or answers JSON as one (the passkey options).
func TestEveryRouteThatNeedsASessionAsksForOne(t *testing.T) {
	t.Parallel()
	base, client, _ := startServer(t, newFullServer(t))
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	wildcard := regexp.MustCompile(`\{[^}]*\}`)
	asked := 0
	for _, rt := range web.RouteTable() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = wildcard.ReplaceAllString(strings.TrimSuffix(path, "{$}"), "X1234")
		if strings.HasPrefix(path, "/api/") != (rt.Kind == "API" || rt.Kind == "WebSocket") && !strings.HasSuffix(path, "/options") {
			t.Errorf("%s is a %s route", rt.Pattern, rt.Kind)
		}
		if !rt.Session {
			continue
		}
		if len(rt.Roles) == 0 {
			t.Errorf("%s needs a session, but policy lets no role call it", rt.Pattern)
		}
		asked++
		req, _ := http.NewRequest(method, base+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error        struct{ Code string } `json:"error"`
			ResourceType string                `json:"resourceType"`
			Issue        []struct{ Code string }
		}
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		switch rt.Kind {
		case "page":
			loc := res.Header.Get("Location")
			if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
				t.Errorf("%s %s without a session: %d to %q, want the sign-in page", method, path, res.StatusCode, loc)
			}
		case "FHIR":
			if res.StatusCode != http.StatusUnauthorized || body.ResourceType != "OperationOutcome" || len(body.Issue) != 1 || body.Issue[0].Code != "login" {
				t.Errorf("%s %s without a session: %d %+v, want 401 and an OperationOutcome", method, path, res.StatusCode, body)
			}
		default:
			if res.StatusCode != http.StatusUnauthorized || body.Error.Code != "unauthorized" {
				t.Errorf("%s %s without a session: %d %q, want 401 unauthorized", method, path, res.StatusCode, body.Error.Code)
			}
		}
	}
	if asked < 80 {
		t.Fatalf("only %d routes need a session; the table is not what the test expects", asked)
	}
}
