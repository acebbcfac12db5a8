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

func (h *authHandlers) registerAdminRoutes(s *Server) {
	s.mux.HandleFunc("GET /api/v1/invitations", h.apiInvitations)
	s.mux.HandleFunc("POST /api/v1/invitations", h.apiInvite)
	s.mux.HandleFunc("POST /api/v1/users/{id}/disable", h.apiSetDisabled(true))
	s.mux.HandleFunc("POST /api/v1/users/{id}/enable", h.apiSetDisabled(false))
	s.mux.HandleFunc("POST /api/v1/users/{id}/mfa/reset", h.apiResetMFA)
	s.mux.HandleFunc("POST /api/v1/patients/{id}/account-setup", h.apiAccountSetup)
	h.registerAdminPages(s) // the same, as pages (admin_pages.go)
}

type invitationJSON struct {
	Email   string     `json:"email"`
	Role    haven.Role `json:"role"`
	Created string     `json:"created,omitempty"`
	Expires string     `json:"expires,omitempty"`
}

func (h *authHandlers) apiInvitations(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	invs, err := h.id.Invitations(r.Context())
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	out := []invitationJSON{}
	for _, i := range invs {
		out = append(out, invitationJSON{Email: i.Email, Role: i.Role, Created: i.CreatedAt.Format(time.RFC3339),
			Expires: i.Expires.Format(time.RFC3339)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *authHandlers) apiInvite(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	var req invitationJSON
	if err := decodeJSON(r, &req); err != nil {
		h.apiError(w, r, err)
		return
	}
	if err := h.id.Invite(r.Context(), req.Email, req.Role, clientFrom(r)); err != nil {
		h.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h *authHandlers) apiSetDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := h.s.requireSignIn(w, r); !ok {
			return
		}
		if err := h.id.SetDisabled(r.Context(), r.PathValue("id"), disabled); err != nil {
			h.apiError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *authHandlers) apiResetMFA(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	if err := h.id.ResetMFA(r.Context(), r.PathValue("id")); err != nil {
		h.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *authHandlers) apiAccountSetup(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.s.requireSignIn(w, r); !ok {
		return
	}
	if err := h.id.SendAccountSetup(r.Context(), r.PathValue("id"), clientFrom(r)); err != nil {
		h.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
