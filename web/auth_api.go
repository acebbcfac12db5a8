package web

import (
	"net/http"
	"time"

	"haven"
	"haven/identity"
)

// The session API, for API clients and tests. Tokens travel in JSON
// bodies and the Authorization header; a browser calling it also gets the
// cookie. Bodies must be application/json (see decodeJSON).

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type choiceJSON struct {
	PracticeID   string     `json:"practice_id"`
	PracticeName string     `json:"practice_name"`
	Role         haven.Role `json:"role"`
	Pending      string     `json:"pending"`
}

type loginResponse struct {
	Stage         identity.LoginStage   `json:"stage"`
	Pending       string                `json:"pending,omitempty"`
	Factors       []identity.FactorKind `json:"factors,omitempty"`
	Choices       []choiceJSON          `json:"choices,omitempty"`
	Token         string                `json:"token,omitempty"`
	Expires       *time.Time            `json:"expires,omitempty"`
	RecoveryCodes []string              `json:"recovery_codes,omitempty"`
	RecoveryLeft  *int                  `json:"recovery_left,omitempty"`
}

func (s *Server) writeLogin(w http.ResponseWriter, res *identity.LoginResult) {
	out := loginResponse{Stage: res.Stage, Pending: res.Pending, Factors: res.Factors, RecoveryCodes: res.RecoveryCodes}
	for _, c := range res.Choices {
		out.Choices = append(out.Choices, choiceJSON{c.PracticeID, c.PracticeName, c.Role, c.Pending})
	}
	if res.Session != nil {
		out.Token = res.Session.Token
		out.Expires = &res.Session.Expires
		setSessionCookie(w, res.Session)
		if res.Session.Actor.MFA {
			left := res.RecoveryLeft
			out.RecoveryLeft = &left
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	res, err := s.id.Login(r.Context(), req.Email, req.Password, clientFrom(r))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeLogin(w, res)
}

type mfaRequest struct {
	Pending string              `json:"pending"`
	Kind    identity.FactorKind `json:"kind"`
	Code    string              `json:"code"`
}

func (s *Server) apiMFA(w http.ResponseWriter, r *http.Request) {
	var req mfaRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	if req.Kind == "" {
		req.Kind = identity.FactorTOTP
	}
	res, err := s.id.SecondFactor(r.Context(), req.Pending, req.Kind, req.Code, clientFrom(r))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeLogin(w, res)
}

type enrolRequest struct {
	Pending string `json:"pending"`
	Code    string `json:"code,omitempty"`
}

type enrolResponse struct {
	Secret  string    `json:"secret"`
	URI     string    `json:"uri"`
	Expires time.Time `json:"expires"`
}

func (s *Server) apiEnrol(w http.ResponseWriter, r *http.Request) {
	var req enrolRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	// An API client begins once and keeps what it was given.
	en, err := s.id.BeginPendingEnrolment(r.Context(), req.Pending, clientFrom(r), "")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, enrolResponse{Secret: en.Secret, URI: en.URI, Expires: en.Expires})
}

func (s *Server) apiEnrolConfirm(w http.ResponseWriter, r *http.Request) {
	var req enrolRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	res, err := s.id.ConfirmPendingEnrolment(r.Context(), req.Pending, req.Code, clientFrom(r))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeLogin(w, res)
}

type whoAmIResponse struct {
	UserID       string                `json:"user_id"`
	PracticeID   string                `json:"practice_id,omitempty"`
	PracticeName string                `json:"practice_name,omitempty"`
	Role         haven.Role            `json:"role"`
	SessionID    string                `json:"session_id"`
	MFA          bool                  `json:"mfa"`
	AuthTime     time.Time             `json:"auth_time"`
	Factors      []identity.FactorKind `json:"factors"`
	Expires      time.Time             `json:"expires"`
	WarnAt       time.Time             `json:"warn_at"`
}

func (s *Server) apiWhoAmI(w http.ResponseWriter, r *http.Request) {
	who, err := s.id.Who(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := whoAmIResponse{UserID: who.UserID, PracticeID: who.PracticeID, PracticeName: who.PracticeName, Role: who.Role,
		SessionID: who.SessionID, MFA: who.MFA, AuthTime: who.AuthTime, Factors: listJSON(who.Factors)}
	if cur := sessionFromContext(r.Context()); cur != nil {
		out.Expires, out.WarnAt = cur.Expires, cur.WarnAt
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiLogout(w http.ResponseWriter, r *http.Request) {
	if err := s.id.Logout(r.Context()); err != nil {
		s.apiError(w, r, err)
		return
	}
	clearAuthCookie(w, SessionCookie)
	w.WriteHeader(http.StatusNoContent)
}

type statusResponse struct {
	ExpiresIn  int  `json:"expires_in"` // seconds
	WarnIn     int  `json:"warn_in"`    // seconds
	Challenged bool `json:"challenged"`
}

// apiStatus answers the page's timer: GET only looks (it does not count
// as activity), POST (the "stay signed in" button) is activity and so
// moves the idle deadline.
func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	cur := sessionFromContext(r.Context())
	if cur == nil {
		s.apiError(w, r, haven.Errorf(haven.EUNAUTHORIZED, "please sign in"))
		return
	}
	warnIn, endIn := sessionTimers(cur)
	writeJSON(w, http.StatusOK, statusResponse{ExpiresIn: endIn, WarnIn: warnIn, Challenged: cur.Challenged})
}

// sessionTimers is what the page's timer is told, in whole seconds: when
// to warn, rounded down, and when the session ends, rounded up. A page
// must never leave for the sign-in page while the session still lives: a
// signed-in /login goes back into the app, and that visit is activity
// that would move the end again, round after round.
func sessionTimers(cur *identity.Current) (warnIn, endIn int) {
	warnIn = max(0, int(cur.WarnAt.Sub(cur.At)/time.Second))
	endIn = max(0, int((cur.Expires.Sub(cur.At)+time.Second-1)/time.Second))
	return warnIn, endIn
}

// apiKeepAlive is the "stay signed in" button: activity now.
func (s *Server) apiKeepAlive(w http.ResponseWriter, r *http.Request) {
	if err := s.id.KeepAlive(r.Context()); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type stepUpRequest struct {
	Password string              `json:"password,omitempty"`
	Kind     identity.FactorKind `json:"kind,omitempty"`
	Code     string              `json:"code,omitempty"`
}

func (s *Server) apiStepUp(w http.ResponseWriter, r *http.Request) {
	var req stepUpRequest
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	if req.Kind == "" && req.Code != "" {
		req.Kind = identity.FactorTOTP
	}
	if err := s.id.StepUp(r.Context(), identity.StepUpRequest{Password: req.Password, Factor: req.Kind, Proof: req.Code}, clientFrom(r)); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
