package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"haven"
	"haven/identity"
	"haven/service"
)

// This file connects the web layer to identity: the session middleware
// that authenticates every request afresh, cross-origin (CSRF) refusal,
// and the cookies. Handlers find the signed-in user with
// haven.ActorFromContext; none of them ever sees a token's stored form,
// a password hash or a TOTP secret's ciphertext.

// Cookie names. The __Host- prefix makes the browser refuse a cookie that
// is not Secure, has a Domain, or has a Path other than "/": no subdomain
// and no plain-HTTP page can set or overwrite them.
const (
	SessionCookie = "__Host-haven_session" // the session token
	PendingCookie = "__Host-haven_login"   // a sign-in waiting for its second factor
	DeviceCookie  = "__Host-haven_device"  // a random device id, for challenges and throttling
)

// deviceCookieAge keeps the device id for about a year and a month; it
// proves nothing alone, it only lets the server recognise a device that
// completed a full sign-in before.
const deviceCookieAge = 400 * 24 * time.Hour

type authCtxKey int

const (
	sessionCtxKey authCtxKey = iota // *identity.Current of the request's session
	endedCtxKey                     // a session cookie was presented but its session has ended
)

func sessionFromContext(ctx context.Context) *identity.Current {
	c, _ := ctx.Value(sessionCtxKey).(*identity.Current)
	return c
}

// withIdentity refuses cross-origin state changes and then authenticates
// the request. It sits outside observe in the chain so that the request
// observe sees is the one the mux routes (the route pattern reaches the
// logs and metrics).
func (s *Server) withIdentity(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	// The OAuth token and revocation endpoints are called by apps on other
	// origins by design; they take no cookie (their proof is the client's
	// authentication, the code's PKCE verifier or the token itself), so a
	// forged cross-origin post gains nothing there.
	cop.AddInsecureBypassPattern("POST /oauth2/token")
	cop.AddInsecureBypassPattern("POST /oauth2/revoke")
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Logger.Warn("cross-origin request refused", "request_id", RequestID(r.Context()), "method", r.Method,
			"client", clientAddr(r))
		writeError(w, r, http.StatusForbidden, haven.EFORBIDDEN, "cross-origin request refused")
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.id == nil {
			next.ServeHTTP(w, r)
			return
		}
		if r2, ok := s.authenticate(w, r); ok {
			next.ServeHTTP(w, r2)
		}
	}))
}

// presentedToken returns the token the request presents: an API client's
// bearer token, or the browser's session cookie.
func presentedToken(r *http.Request) (token string, fromCookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t), false
		}
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

// authenticate checks the request's session, if any, and returns the
// request with the actor and the session in its context; what a route
// lets a challenged session do is the route's gate's to decide
// (routes.go). It writes the response itself (and returns false) only
// when the request cannot go on: the database is down.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	token, fromCookie := presentedToken(r)
	if token == "" || (!fromCookie && strings.HasPrefix(token, smartTokenPrefix)) {
		// No session, or a SMART token, which is resolved where it is
		// honoured (fhirCaller) and nowhere else.
		return r, true
	}
	ctx := r.Context()
	c := clientFrom(r)
	var cur *identity.Current
	var err error
	patientID := patientRead(r)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/session/status":
		cur, err = s.id.Peek(ctx, token, c)
	case patientID != "":
		cur, err = s.id.ResumeReading(ctx, token, c, patientID)
	default:
		cur, err = s.id.Resume(ctx, token, c)
	}
	if err != nil {
		if haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			s.apiError(w, r, err)
			return nil, false
		}
		if fromCookie {
			clearAuthCookie(w, SessionCookie)
		}
		return r.WithContext(context.WithValue(ctx, endedCtxKey, true)), true
	}
	ctx = haven.NewContextWithActor(ctx, cur.Actor)
	ctx = service.WithSessionSettings(ctx, cur.Actor.PracticeID, cur.Settings)
	ctx = service.WithSessionPatient(ctx, cur.Actor.PracticeID, patientID, cur.Patient)
	ctx = context.WithValue(ctx, sessionCtxKey, cur)
	return r.WithContext(ctx), true
}

// patientReads are the paths of reads of one patient's record by its id,
// the most frequent requests a patient sends: the chart and its FHIR
// Patient resource.
var patientReads = []string{"/api/v1/patients/", FHIRBase + "/Patient/"}

// patientRead returns the id of the patient whose record r reads, if r is
// one of patientReads, else "". Only a hint for the session's statement
// (identity's ResumeReading): the handler still names the record, and the
// gate uses what was read with the session only for that record.
func patientRead(r *http.Request) string {
	if r.Method != http.MethodGet {
		return ""
	}
	for _, prefix := range patientReads {
		if id, ok := strings.CutPrefix(r.URL.Path, prefix); ok && haven.PlausibleID(id) {
			return id
		}
	}
	return ""
}

// returnPath is where to return after signing in or stepping up: the page
// itself for a GET, the page the form was on (by Referer, same origin
// only) otherwise.
func returnPath(r *http.Request) string {
	if r.Method == http.MethodGet {
		return r.URL.RequestURI()
	}
	if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host {
		return ref.RequestURI()
	}
	return "/app"
}

// safeNext returns next if it is a path on this site, else "/app": a
// redirect parameter must never send a user to another site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/app"
	}
	u, err := url.Parse(next)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/app"
	}
	return next
}

// clientFrom is what identity learns of the requester.
func clientFrom(r *http.Request) identity.Client {
	ua := r.UserAgent()
	if len(ua) > 512 {
		ua = ua[:512]
	}
	c := identity.Client{Addr: clientAddr(r), UserAgent: ua, RequestID: RequestID(r.Context())}
	if ck, err := r.Cookie(DeviceCookie); err == nil && validCookieValue(ck.Value) {
		c.DeviceCookie = ck.Value
	}
	return c
}

func validCookieValue(v string) bool {
	if len(v) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil
}

// ensureDeviceCookie gives the browser a device cookie if it has none, and
// returns the client with it, so the session begun now remembers it.
func ensureDeviceCookie(w http.ResponseWriter, r *http.Request) identity.Client {
	c := clientFrom(r)
	if c.DeviceCookie == "" {
		var b [32]byte
		rand.Read(b[:])
		c.DeviceCookie = base64.RawURLEncoding.EncodeToString(b[:])
		setAuthCookie(w, DeviceCookie, c.DeviceCookie, deviceCookieAge, http.SameSiteLaxMode)
	}
	return c
}

// setAuthCookie sets a __Host- cookie: Secure, HttpOnly, Path=/, no Domain.
func setAuthCookie(w http.ResponseWriter, name, value string, maxAge time.Duration, same http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: same,
		MaxAge: max(1, int(maxAge/time.Second))})
}

func clearAuthCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// setSessionCookie gives the browser its session cookie. SameSite=Lax keeps it
// off cross-site subrequests and form posts (with CrossOriginProtection as
// the main CSRF defence) while a link from an email still arrives signed in.
func setSessionCookie(w http.ResponseWriter, ns *identity.NewSession) {
	setAuthCookie(w, SessionCookie, ns.Token, ns.MaxAge, http.SameSiteLaxMode)
}
