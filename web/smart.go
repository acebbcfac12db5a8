package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"haven"
	"haven/audit"
	"haven/service"
	"haven/smart"
)

// SMART App Launch 2 and OAuth 2 (package smart holds the server; these
// are its endpoints): the SMART configuration, the authorization endpoint
// with Haven's own sign-in and a consent page, the token endpoint, and
// revocation. A token an app presents to /fhir/R4 is turned back into the
// user it acts for in fhirCaller, narrowed by its scopes and patient.

// smartTokenPrefix begins every access token the server hands out
// (fosite's prefixed HMAC tokens): a bearer token with it is a SMART
// token, not a Haven session, and is resolved by fhirCaller alone.
const smartTokenPrefix = "ory_at_"

// smartBearer returns the request's SMART access token, if it has one.
func smartBearer(r *http.Request) string {
	if t, fromCookie := presentedToken(r); !fromCookie && strings.HasPrefix(t, smartTokenPrefix) {
		return t
	}
	return ""
}

// origin is the server's origin as the client reached it.
func origin(r *http.Request) string {
	return strings.TrimSuffix(fhirRoot(r), FHIRBase)
}

// allowAnyOrigin lets a browser app on another origin read the answer: the
// token endpoint and the FHIR API take no cookie from such a request (no
// credentials are allowed), only the bearer token the app holds.
func allowAnyOrigin(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, If-None-Match")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Expose-Headers", "ETag, Location")
}

// smartPreflight answers a browser's CORS preflight for the token
// endpoint and the FHIR API.
func (s *Server) smartPreflight(w http.ResponseWriter, r *http.Request) {
	allowAnyOrigin(w)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) smartConfiguration(w http.ResponseWriter, r *http.Request) {
	allowAnyOrigin(w)
	body, _ := json.Marshal(smart.Configuration(origin(r), s.mtlsURL))
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// smartJWKS publishes the key id_tokens are signed with.
func (s *Server) smartJWKS(w http.ResponseWriter, r *http.Request) {
	allowAnyOrigin(w)
	body, _ := json.Marshal(s.smart.JWKS())
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Write(body)
}

// openIDConfiguration is the OpenID discovery document of the FHIR
// server, the id_token's issuer.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	allowAnyOrigin(w)
	body, _ := json.Marshal(smart.OpenIDConfiguration(origin(r)))
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// consentView is the consent page's data.
type consentView struct {
	App       string
	Asks      []string     // what it asks for, in plain words
	Patient   string       // the patient's name when it is given one
	Params    []url.Values // the authorization request, carried by the form
	FormToken string
}

// authorizeRequest reads and checks an authorization request: fosite's
// checks (client, redirect, PKCE, scopes), then SMART's and Haven's: the
// app is the signed-in user's practice's, its aud is this FHIR server, and
// a patient context it asks for is one the user has.
func (s *Server) authorizeRequest(w http.ResponseWriter, r *http.Request, decide bool) (fosite.AuthorizeRequester, *smart.Grant, bool) {
	ctx := r.Context()
	p := s.smart.Provider()
	ar, err := p.NewAuthorizeRequest(ctx, r)
	if err != nil {
		p.WriteAuthorizeError(ctx, w, ar, err)
		return nil, nil, false
	}
	a, _ := haven.ActorFromContext(ctx)
	cl, _ := ar.GetClient().(*smart.Client)
	if cl == nil || cl.Row.PracticeID != a.PracticeID {
		p.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("This app is not registered with your practice."))
		return nil, nil, false
	}
	if m := ar.GetRequestForm().Get("code_challenge_method"); m != "S256" {
		p.WriteAuthorizeError(ctx, w, ar, fosite.ErrInvalidRequest.WithHint("PKCE with S256 is required."))
		return nil, nil, false
	}
	if aud := ar.GetRequestForm().Get("aud"); aud != "" && strings.TrimRight(aud, "/") != fhirRoot(r) {
		p.WriteAuthorizeError(ctx, w, ar, fosite.ErrInvalidRequest.WithHint("aud is not this FHIR server."))
		return nil, nil, false
	}
	g := &smart.Grant{UserID: a.UserID, PracticeID: a.PracticeID, Role: a.Role, AuthTime: a.AuthTime}
	if launch := ar.GetRequestForm().Get("launch"); launch != "" {
		// An EHR launch: the patient the chart was opened for, as the
		// launch id says, for this user and app only.
		patient, err := s.smart.Launch(ctx, cl.Row.ID, launch, decide)
		if err != nil {
			p.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint(haven.ErrorMessage(err)))
			return nil, nil, false
		}
		g.Patient = patient
	} else if slices.Contains(ar.GetRequestedScopes(), "launch/patient") {
		switch {
		case a.Role == haven.RolePatient:
			g.Patient = a.UserID // her own record, the only one she has
		default:
			p.WriteAuthorizeError(ctx, w, ar, fosite.ErrInvalidRequest.WithHint("Open the app from the patient's chart."))
			return nil, nil, false
		}
	}
	return ar, g, true
}

// smartAuthorize shows the consent page for a signed-in user (the route
// sends anyone else to Haven's sign-in, which returns here).
func (s *Server) smartAuthorize(w http.ResponseWriter, r *http.Request) {
	ar, g, ok := s.authorizeRequest(w, r, false)
	if !ok {
		return
	}
	cl := ar.GetClient().(*smart.Client)
	v := consentView{App: cl.Row.Name, FormToken: formToken(w, r)}
	for _, sc := range ar.GetRequestedScopes() {
		if words := smart.Words(sc); words != "" && !slices.Contains(v.Asks, words) {
			v.Asks = append(v.Asks, words)
		}
	}
	if g.Patient == actorOf(r).UserID {
		v.Patient = "your own record"
	} else if g.Patient != "" {
		v.Patient = "the record of the patient whose chart you opened it from"
	}
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, val := range q[k] {
			v.Params = append(v.Params, url.Values{"k": {k}, "v": {val}})
		}
	}
	pg := s.newPage(r, "Allow "+cl.Row.Name+"?")
	pg.Data = v
	// The answer leads, by a redirect, to the app's registered redirect
	// address (fosite checked it is one): this page's policy lets its form
	// go there and nowhere else.
	if u := ar.GetRedirectURI(); u != nil && u.Host != "" {
		w.Header().Set("Content-Security-Policy", strings.Replace(ContentSecurityPolicy, "form-action 'self'", "form-action 'self' "+u.Scheme+"://"+u.Host, 1))
	}
	s.render(w, r, http.StatusOK, "smart_consent.html", pg)
}

// smartDecide carries out the user's answer on the consent page: a code
// to the app's redirect, or access_denied.
func (s *Server) smartDecide(w http.ResponseWriter, r *http.Request) {
	if !s.checkFormToken(w, r) {
		return
	}
	ar, g, ok := s.authorizeRequest(w, r, true)
	if !ok {
		return
	}
	ctx := r.Context()
	p := s.smart.Provider()
	a, _ := haven.ActorFromContext(ctx)
	ev := audit.ForActor(a, "smart.authorize")
	ev.ResourceKind, ev.ResourceID, ev.PatientID, ev.Purpose = "smart_client", ar.GetClient().GetID(), g.Patient, audit.PurposePatientRequest
	if r.PostFormValue("decision") != "allow" {
		ev.Decision, ev.Reason = haven.DecisionDeny, "user_declined"
		if err := s.smart.Record(ctx, ev); err != nil {
			s.pageError(w, r, err)
			return
		}
		p.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The user did not allow the app."))
		return
	}
	for _, sc := range ar.GetRequestedScopes() {
		ar.GrantScope(sc)
	}
	ev.Decision = haven.DecisionAllow
	if err := s.smart.Record(ctx, ev); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.smart.OpenID(g, ar, fhirRoot(r)) // the id_token's claims, when the app asked for openid
	resp, err := p.NewAuthorizeResponse(ctx, ar, g)
	if err != nil {
		s.smartFailed(r, "authorize", err)
		p.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	p.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// smartToken is the token endpoint: a code (with its PKCE verifier) or a
// refresh token for an app, a signed assertion for a backend system. The
// answer names the patient in context, as SMART asks.
func (s *Server) smartToken(w http.ResponseWriter, r *http.Request) {
	allowAnyOrigin(w)
	ctx := r.Context()
	p := s.smart.Provider()
	g := &smart.Grant{}
	ar, err := p.NewAccessRequest(ctx, r, g)
	if err != nil {
		p.WriteAccessError(ctx, w, ar, err)
		return
	}
	cl, _ := ar.GetClient().(*smart.Client)
	if cl == nil {
		p.WriteAccessError(ctx, w, ar, fosite.ErrInvalidClient)
		return
	}
	if err := s.countClient(r, cl.Row.ID); err != nil {
		s.limitedAnswer(w, r, err)
		return
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		if !smart.Allowed(cl.Row, clientAddr(r)) {
			s.recordClient(ctx, r, cl.Row.ID, cl.Row.PracticeID, "smart.token", haven.DecisionDeny, "network_not_allowed")
			p.WriteAccessError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The client may not call from this network."))
			return
		}
		for _, sc := range ar.GetRequestedScopes() {
			ar.GrantScope(sc)
		}
		g.PracticeID = cl.Row.PracticeID
		ar.SetSession(g)
	}
	// Tokens asked for over a connection with a client certificate are
	// bound to it (RFC 8705); a bound grant is renewed only with it.
	if sg, ok := ar.GetSession().(*smart.Grant); ok {
		if err := s.smart.BindToken(r, sg); err != nil {
			s.recordClient(ctx, r, cl.Row.ID, cl.Row.PracticeID, "smart.token", haven.DecisionDeny, "certificate_not_presented")
			p.WriteAccessError(ctx, w, ar, err)
			return
		}
	}
	resp, err := p.NewAccessResponse(ctx, ar)
	if err != nil {
		s.smartFailed(r, "token", err)
		p.WriteAccessError(ctx, w, ar, err)
		return
	}
	if sg, ok := ar.GetSession().(*smart.Grant); ok && sg.Patient != "" {
		resp.SetExtra("patient", sg.Patient)
	}
	if err := s.recordClient(ctx, r, cl.Row.ID, cl.Row.PracticeID, "smart.token", haven.DecisionAllow, ""); err != nil {
		s.apiError(w, r, err)
		return
	}
	p.WriteAccessResponse(ctx, w, ar, resp)
}

// smartRevoke is RFC 7009 revocation: the token (and its family) ends at
// once on every node, since every use is checked against the database.
func (s *Server) smartRevoke(w http.ResponseWriter, r *http.Request) {
	allowAnyOrigin(w)
	ctx := r.Context()
	p := s.smart.Provider()
	err := p.NewRevocationRequest(ctx, r)
	p.WriteRevocationResponse(ctx, w, err)
}

// countClient counts a request against its OAuth client's rate limit,
// shared by every node as the other limits are.
func (s *Server) countClient(r *http.Request, clientID string) error {
	if s.limits == nil || s.limits.PerClient <= 0 {
		return nil
	}
	return s.countRequest("client:"+clientID, s.limits.PerClient, "client")
}

// recordClient audits an act of a client with no user behind it (a token
// issued, a backend system refused), in its practice's log, naming it.
func (s *Server) recordClient(ctx context.Context, r *http.Request, clientID, practiceID, action, decision, reason string) error {
	a, _ := haven.ActorFromContext(ctx)
	if a.PracticeID == "" {
		a = haven.Actor{PracticeID: practiceID, ClientAddr: clientAddr(r), RequestID: RequestID(ctx)}
	}
	a.SessionID = "smart:" + clientID
	ev := audit.ForActor(a, action)
	ev.ResourceKind, ev.ResourceID, ev.Purpose, ev.Decision, ev.Reason = "smart_client", clientID, audit.PurposeSecurity, decision, reason
	return s.smart.Record(ctx, ev)
}

// smartCaller resolves a SMART access token to the actor it acts for and
// its scopes. Each use is in the audit log with the client: the actor's
// session is "smart:<client id>", so every read the gate records for the
// token names the client.
func (s *Server) smartCaller(r *http.Request, token string) (context.Context, haven.Actor, *smart.Access, error) {
	ctx := r.Context()
	if s.smart == nil {
		return nil, haven.Actor{}, nil, haven.Errorf(haven.EUNAUTHORIZED, "please sign in")
	}
	acc, err := s.smart.Resolve(ctx, token, r, clientAddr(r), RequestID(ctx))
	if err != nil {
		if acc != nil && acc.Refused != "" {
			// A token used from outside its client's networks, or
			// without the certificate it is bound to.
			if rerr := s.recordClient(ctx, r, acc.ClientID, acc.Actor.PracticeID, "smart.fhir", haven.DecisionDeny, acc.Refused); rerr != nil {
				return nil, haven.Actor{}, nil, rerr
			}
		}
		return nil, haven.Actor{}, nil, err
	}
	if err := s.countClient(r, acc.ClientID); err != nil {
		return nil, haven.Actor{}, nil, err
	}
	ctx = haven.NewContextWithActor(ctx, acc.Actor)
	if acc.Patient != "" {
		ctx = service.WithPatientContext(ctx, acc.Patient)
	}
	return ctx, acc.Actor, acc, nil
}

// scopeAllows refuses what a token's scopes do not grant: op on typ, and
// says which resources of typ they reach when narrowed scopes are all
// that grant it (SMART 2's patient/Observation.rs?category=laboratory;
// nil is every one). A backend system's token is read by its system/
// scopes alone (a user's or a patient's scope means nothing without one),
// and a refusal names the client in the audit log as its reads do.
func (s *Server) scopeAllows(r *http.Request, acc *smart.Access, typ string, op byte) (smart.Narrowing, error) {
	if acc == nil {
		return nil, nil
	}
	if acc.System {
		if ok, only := smart.Reach(acc.Scopes, "system", typ, op); ok {
			return only, nil
		}
		if err := s.recordClient(r.Context(), r, acc.ClientID, acc.Actor.PracticeID, "smart.fhir", haven.DecisionDeny, "scope_not_granted"); err != nil {
			return nil, err
		}
		return nil, haven.Errorf(haven.EFORBIDDEN, "the token's scopes do not allow this")
	}
	ok, only := smart.Reach(acc.Scopes, "user", typ, op)
	// patient/ scopes reach only the patient in context: a token without
	// one has no patient to read.
	if acc.Patient != "" && (!ok || only != nil) {
		if pok, ponly := smart.Reach(acc.Scopes, "patient", typ, op); pok {
			switch {
			case ponly == nil:
				only = nil
			case ok:
				only = append(only, ponly...)
			default:
				only = ponly
			}
			ok = true
		}
	}
	if !ok {
		return nil, haven.Errorf(haven.EFORBIDDEN, "the token's scopes do not allow this")
	}
	return only, nil
}

// outsideNarrowing refuses a resource a token's narrowed scopes do not
// reach (read by its id), audited as the token's other refusals are: 403,
// as for a type beyond its scopes. ctx and a are the token's
// (fhirCallerNarrowed).
func (s *Server) outsideNarrowing(ctx context.Context, r *http.Request, a haven.Actor) error {
	if client, ok := strings.CutPrefix(a.SessionID, "smart:"); ok {
		if err := s.recordClient(ctx, r, client, a.PracticeID, "smart.fhir", haven.DecisionDeny, "scope_narrowed"); err != nil {
			return err
		}
	}
	return haven.Errorf(haven.EFORBIDDEN, "the token's scopes do not reach this resource")
}

// smartFailed logs why the OAuth server refused or failed a request
// (fosite's error and its debug detail, which name no token and no PHI),
// for the operator; the client sees only the OAuth error.
func (s *Server) smartFailed(r *http.Request, step string, err error) {
	e := fosite.ErrorToRFC6749Error(err)
	s.Logger.Warn("oauth request refused", "step", step, "request_id", RequestID(r.Context()), "error", e.ErrorField,
		"hint", e.HintField, "debug", e.DebugField)
}

func actorOf(r *http.Request) haven.Actor {
	x, _ := haven.ActorFromContext(r.Context())
	return x
}

// smartLaunch is a chart's "Open in app" (EHR launch): once the gate lets
// the user read the patient's record (decided and audited as a FHIR read
// of her Patient), the app's launch address with a launch id standing for
// her. It is a link, not a form: the browser follows it to the app, which
// a form's policy (form-action) would stop. A forged link gains nothing:
// the app still asks the user, and the launch id is hers alone.
func (s *Server) smartLaunch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := s.svc.FHIRResource(ctx, "Patient", id); err != nil {
		s.pageError(w, r, err)
		return
	}
	to, err := s.smart.NewLaunch(ctx, r.PathValue("client"), id, fhirRoot(r))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
