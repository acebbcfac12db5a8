package web

import (
	"net/http"
	"time"

	"haven"
)

// The account administration API: a practice admin invites, disables and
// re-enables people and resets a lost second factor; the front desk sends
// a registered patient the link to choose a password. Every decision is
// policy's and is audited by the service; a factor reset also needs the
// admin's own recent step-up (answered with the "step_up" error code).

type invitationJSON struct {
	Email   string     `json:"email"`
	Role    haven.Role `json:"role"`
	Created string     `json:"created,omitempty"`
	Expires string     `json:"expires,omitempty"`
}

func (s *Server) apiInvitations(w http.ResponseWriter, r *http.Request) {
	invs, err := s.id.Invitations(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := []invitationJSON{}
	for _, i := range invs {
		out = append(out, invitationJSON{Email: i.Email, Role: i.Role, Created: i.CreatedAt.Format(time.RFC3339),
			Expires: i.Expires.Format(time.RFC3339)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiInvite(w http.ResponseWriter, r *http.Request) {
	var req invitationJSON
	if err := decodeJSON(r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.id.Invite(r.Context(), req.Email, req.Role, clientFrom(r)); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) apiDisableUser(w http.ResponseWriter, r *http.Request) { s.apiSetDisabled(w, r, true) }
func (s *Server) apiEnableUser(w http.ResponseWriter, r *http.Request)  { s.apiSetDisabled(w, r, false) }

func (s *Server) apiSetDisabled(w http.ResponseWriter, r *http.Request, disabled bool) {
	if err := s.id.SetDisabled(r.Context(), r.PathValue("id"), disabled); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiResetMFA(w http.ResponseWriter, r *http.Request) {
	if err := s.id.ResetMFA(r.Context(), r.PathValue("id")); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiAccountSetup(w http.ResponseWriter, r *http.Request) {
	if err := s.id.SendAccountSetup(r.Context(), r.PathValue("id"), clientFrom(r)); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
