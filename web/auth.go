package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"haven"
	"haven/auth/outbox"
	"haven/service"
)

// This file connects the web layer to identity: the session middleware
// that authenticates every request afresh, cross-origin (CSRF) refusal,
// and the cookies. Handlers find the signed-in user with
// haven.ActorFromContext; none of them ever sees a token's stored form,
// a password hash or a TOTP secret's ciphertext.

// Cookie names. The __Host- prefix makes the browser refuse a cookie that
// is not Secure, has a Domain, or has a Path other than "/": no subdomain
// and no plain-HTTP authPage can set or overwrite them.
const (
	SessionCookie = "__Host-haven_session" // the session token
	PendingCookie = "__Host-haven_login"   // a sign-in waiting for its second factor
	DeviceCookie  = "__Host-haven_device"  // a random device id, for challenges and throttling
)

// deviceCookieAge keeps the device id for about a year and a month; it
// proves nothing alone, it only lets the server recognise a device that
// completed a full sign-in before.
const deviceCookieAge = 400 * 24 * time.Hour

type authState struct {
	id *service.Identity
}

// identity returns the server's sign-in state, or nil before UseIdentity.
func (s *Server) identity() *authState { return s.auth }

// UseIdentity turns on sign-in: it registers the sign-in, account and
// session API routes, and makes withIdentity (in the Handler chain)
// authenticate every request with id.
func (s *Server) UseIdentity(id *service.Identity) {
	a := &authState{id: id}
	s.auth = a
	s.registerAuthRoutes(a)
}

// UseLocalIdentity is UseIdentity for a server: emails (reset links,
// invitations, verifications) go to mail, and their links point at
// baseURL. It returns a function that waits for emails still being
// written, to call before the database closes.
func (s *Server) UseLocalIdentity(ctx context.Context, svc *service.Service, mail outbox.Outbox, baseURL string) (wait func()) {
	id := service.NewIdentity(svc, service.IdentityConfig{Outbox: mail, BaseURL: baseURL})
	s.UseIdentity(id)
	s.usePasskeysAt(id, baseURL) // passkeys, scoped to the public URL's host (auth_webauthn.go)
	// Ended sessions, expired tokens and forgotten throttle counts are
	// purged hourly until ctx ends.
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := id.Purge(ctx); err != nil && ctx.Err() == nil {
					s.Logger.Error("identity purge", "err", err)
				}
			}
		}
	}()
	return func() {
		<-done
		id.Close()
	}
}

type authCtxKey int

const (
	sessionCtxKey authCtxKey = iota // *service.Current of the request's session
	endedCtxKey                     // a session cookie was presented but its session has ended
)

func sessionFromContext(ctx context.Context) *service.Current {
	c, _ := ctx.Value(sessionCtxKey).(*service.Current)
	return c
}

// withIdentity refuses cross-origin state changes and then authenticates
// the request. It sits outside observe in the chain so that the request
// observe sees is the one the mux routes (the route pattern reaches the
// logs and metrics).
func (s *Server) withIdentity(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Logger.Warn("cross-origin request refused", "request_id", RequestID(r.Context()), "method", r.Method,
			"client", clientAddr(r))
		code := haven.EFORBIDDEN
		writeError(w, r, &code, http.StatusForbidden, "cross-origin request refused")
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := s.identity()
		if a == nil {
			next.ServeHTTP(w, r)
			return
		}
		if r2, ok := s.authenticate(w, r, a); ok {
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

// challengeAllowed lists what a challenged session may still reach: the
// step-up that lifts the challenge, signing out, and static files.
func challengeAllowed(r *http.Request) bool {
	p := r.URL.Path
	return p == "/account/step-up" || p == "/logout" || p == "/api/v1/session/step-up" || strings.HasPrefix(p, "/static/") ||
		p == "/account/step-up/webauthn" || p == "/account/step-up/webauthn/options" || // a passkey step-up (auth_webauthn.go)
		(p == "/api/v1/session" && r.Method == http.MethodDelete) || (p == "/api/v1/session/status" && r.Method == http.MethodGet)
}

// authenticate checks the request's session, if any, and returns the
// request with the actor in its context. It writes the response itself
// (and returns false) only when the request cannot go on: the database is
// down, or a challenged session asks for anything but its step-up.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, a *authState) (*http.Request, bool) {
	token, fromCookie := presentedToken(r)
	if token == "" {
		return r, true
	}
	ctx := r.Context()
	c := clientFrom(r)
	var cur *service.Current
	var err error
	if r.Method == http.MethodGet && r.URL.Path == "/api/v1/session/status" {
		cur, err = a.id.Peek(ctx, token, c)
	} else {
		cur, err = a.id.Resume(ctx, token, c)
	}
	if err != nil {
		if haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			s.Error(w, r, err)
			return nil, false
		}
		if fromCookie {
			clearAuthCookie(w, SessionCookie)
		}
		return r.WithContext(context.WithValue(ctx, endedCtxKey, true)), true
	}
	ctx = haven.NewContextWithActor(ctx, cur.Actor)
	ctx = context.WithValue(ctx, sessionCtxKey, cur)
	if cur.Challenged && !challengeAllowed(r) {
		if isAPIPath(r) {
			code := haven.ESTEPUP
			writeError(w, r, &code, http.StatusForbidden, "this session moved to another network or device; confirm it is you at /api/v1/session/step-up")
			return nil, false
		}
		http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape(returnPath(r)), http.StatusSeeOther)
		return nil, false
	}
	return r.WithContext(ctx), true
}

// isAPIPath reports whether r is for the JSON API rather than a authPage.
func isAPIPath(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/")
}

// returnPath is where to return after signing in or stepping up: the authPage
// itself for a GET, the authPage the form was on (by Referer, same origin
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
func clientFrom(r *http.Request) service.Client {
	ua := r.UserAgent()
	if len(ua) > 512 {
		ua = ua[:512]
	}
	c := service.Client{Addr: clientAddr(r), UserAgent: ua, RequestID: RequestID(r.Context())}
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
func ensureDeviceCookie(w http.ResponseWriter, r *http.Request) service.Client {
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
func setSessionCookie(w http.ResponseWriter, ns *service.NewSession) {
	setAuthCookie(w, SessionCookie, ns.Token, ns.MaxAge, http.SameSiteLaxMode)
}

// setRetryAfter sets Retry-After for a throttled answer.
func setRetryAfter(w http.ResponseWriter, err error) {
	if d := service.RetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
}

// StepUpRedirect answers a authPage request that failed with haven.ESTEPUP by
// sending the browser to the step-up authPage, which returns it to where it
// was; it reports false (and writes nothing) for API requests, whose JSON
// error code "step_up" tells the client to POST /api/v1/session/step-up.
// Error handlers call it before writing an ESTEPUP error.
func (s *Server) StepUpRedirect(w http.ResponseWriter, r *http.Request) bool {
	if isAPIPath(r) || s.identity() == nil {
		return false
	}
	http.Redirect(w, r, "/account/step-up?next="+url.QueryEscape(returnPath(r)), http.StatusSeeOther)
	return true
}

// renderAuth renders a authPage with a status, writing nothing until the
// template has executed, so a template fault is a clean 500.
func (s *Server) renderAuth(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		s.Logger.Error("render", "template", name, "request_id", RequestID(r.Context()), "err", err)
		writeError(w, r, nil, http.StatusInternalServerError, "Internal error.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// authPage is what every identity authPage's template receives.
type authPage struct {
	Title    string
	Actor    *haven.Actor // signed in, or nil
	WarnIn   int          // seconds until the idle warning
	EndIn    int          // seconds until the session ends
	Flash    string
	Error    string
	Next     string
	Data     any
	Practice string
}

// newAuthPage fills the common parts for r.
func (s *Server) newAuthPage(r *http.Request, title string) *authPage {
	p := &authPage{Title: title}
	if a, ok := haven.ActorFromContext(r.Context()); ok {
		p.Actor = &a
	}
	if cur := sessionFromContext(r.Context()); cur != nil {
		p.WarnIn = max(0, int(cur.WarnAt.Sub(cur.At)/time.Second))
		p.EndIn = max(0, int(cur.Expires.Sub(cur.At)/time.Second))
	}
	return p
}

// authPageError shows err on a authPage: sign-in and step-up become redirects,
// everything else a short message with its status.
func (s *Server) authPageError(w http.ResponseWriter, r *http.Request, err error) {
	code := haven.ErrorCode(err)
	switch code {
	case haven.EUNAUTHORIZED:
		http.Redirect(w, r, "/login?next="+url.QueryEscape(returnPath(r)), http.StatusSeeOther)
		return
	case haven.ESTEPUP:
		s.StepUpRedirect(w, r)
		return
	case haven.ETOOMANY:
		setRetryAfter(w, err)
	}
	status, ok := statusByCode[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.Logger.Error("request failed", "request_id", RequestID(r.Context()), "code", code, "err", err)
	}
	p := s.newAuthPage(r, "Something went wrong")
	p.Error = haven.ErrorMessage(err)
	s.renderAuth(w, r, status, "auth_message.html", p)
}

// requireSignIn returns the request's actor, or answers as a signed-out
// request should (a redirect to sign in for pages, 401 for the API).
func (s *Server) requireSignIn(w http.ResponseWriter, r *http.Request) (haven.Actor, bool) {
	if a, ok := haven.ActorFromContext(r.Context()); ok {
		return a, true
	}
	if isAPIPath(r) {
		s.Error(w, r, haven.Errorf(haven.EUNAUTHORIZED, "please sign in"))
		return haven.Actor{}, false
	}
	q := url.Values{"next": {returnPath(r)}}
	if ended, _ := r.Context().Value(endedCtxKey).(bool); ended {
		q.Set("ended", "1")
	}
	http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
	return haven.Actor{}, false
}
