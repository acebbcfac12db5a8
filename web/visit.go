package web

import (
	"context"
	"crypto/rand"
	"net/http"
	"strconv"
	"time"

	"haven"
	"haven/service"
	"haven/video"
	"haven/video/livekit"
	"haven/video/sfu"
	"haven/video/signal"
	"haven/video/token"
	"haven/video/turn"
)

// Video visits on the web: the patient's visit list and booking, the
// pre-visit check, the clinician's waiting room, the call page, their JSON
// endpoints, and the call's WebSocket (package video's handler), wired to
// the service so every join, refusal, leave, end and invitation is decided
// and audited there. The media never passes through these handlers.

// VideoConfig is what the visit pages need of the video stack. The server
// process builds it (an SFU, a TURN server, the join-token key and the
// spent-token store) and keeps ownership: closing them is its job.
type VideoConfig struct {
	// SFU is the embedded SFU; LiveKit, instead, a LiveKit server that
	// carries the media (--video-engine livekit). Exactly one is set.
	SFU      *sfu.SFU
	LiveKit  *livekit.Engine
	TURN     *turn.Server // nil: browsers get no relay and must reach the SFU directly
	TokenKey []byte       // the same key the service mints join tokens with
	Spent    token.Spent  // shared by every node, so a token works once anywhere
	// Origin is the site's own origin for the WebSocket's origin check;
	// empty means the request's own scheme and host.
	Origin string
	// Now is the clock tokens are checked against and the pages show
	// times by; time.Now when nil (tests move it).
	Now func() time.Time
	// RecheckEvery is how often a seated participant's session and visit
	// are checked again, so a revoked session or a visit ended elsewhere
	// leaves the call within it; zero means video.DefaultRecheckEvery.
	RecheckEvery time.Duration
}

// CallPath is the call's WebSocket endpoint; {visit} is the visit id.
const CallPath = "/api/v1/visits/{visit}/call"

// useVideo builds the call endpoint (package video's handler) over the
// service, which decides and audits every join, refusal, leave, end and
// invitation.
func (s *Server) useVideo(vc VideoConfig) error {
	if vc.Now == nil {
		vc.Now = time.Now
	}
	svc := s.svc
	s.sfu, s.livekit, s.now = vc.SFU, vc.LiveKit, vc.Now
	calls, err := video.NewHandler(video.Config{
		SFU:      vc.SFU,
		LiveKit:  vc.LiveKit,
		TokenKey: vc.TokenKey,
		Spent:    vc.Spent,
		Origin:   vc.Origin,
		Now:      vc.Now,
		Authorize: func(ctx context.Context, c token.Claims) error {
			return svc.CallAllowed(ctx, c)
		},
		// A join is decided once; a call lasts. The seat is held only
		// while the sign-in that took it holds and the visit stays open.
		Recheck: func(ctx context.Context, r *http.Request, c token.Claims) error {
			if err := s.sessionStillLive(ctx, r); err != nil {
				return err
			}
			return svc.CallStillOpen(ctx, c)
		},
		RecheckEvery: vc.RecheckEvery,
		ICEServers: func(ctx context.Context, c token.Claims) ([]signal.ICEServer, error) {
			if vc.TURN == nil {
				return nil, nil
			}
			cred, err := vc.TURN.Credentials(c.ParticipantID, 0)
			if err != nil {
				return nil, err
			}
			return []signal.ICEServer{{URLs: cred.URLs, Username: cred.Username, Credential: cred.Password}}, nil
		},
		// On LiveKit, the names the call page shows: the same as its
		// data-names and /people give, after the same checks (CallSeat).
		Names: func(ctx context.Context, c token.Claims) (map[string]string, error) {
			seat, err := svc.CallSeat(ctx, c.VisitID)
			if err != nil {
				return nil, err
			}
			return seat.Names, nil
		},
		Invite: func(ctx context.Context, visitID, _, guestID string) error {
			return svc.InviteGuest(ctx, visitID, guestID)
		},
		EndVisit: func(ctx context.Context, visitID, _ string) error {
			return svc.EndVisit(ctx, visitID)
		},
		Audit: func(ctx context.Context, e video.Event) error {
			return svc.RecordCall(ctx, service.CallEvent{Action: e.Action, VisitID: e.VisitID,
				Refused: e.Action == video.ActionJoinRefused || e.Action == video.ActionCut, Reason: e.Reason, Subject: e.Subject})
		},
	})
	if err != nil {
		return err
	}
	s.calls = calls
	return nil
}

// handleCall is the call's WebSocket.
func (s *Server) handleCall(w http.ResponseWriter, r *http.Request) { s.calls.ServeHTTP(w, r) }

func (s *Server) apiClinicians(w http.ResponseWriter, r *http.Request) {
	docs, err := s.svc.Clinicians(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"clinicians": listJSON(docs)})
}

// StateWait is how long a state request waits for a change before it
// answers with the state unchanged; the page then asks again. It stays
// well under the server's write timeout.
const StateWait = 25 * time.Second

func (s *Server) apiState(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	seen := service.VisitWatch{State: q.Get("seen"), Messages: -1}
	// With messages=N the answer also comes when the visit's waiting-room
	// thread no longer holds N messages (the page then reads it).
	if m := q.Get("messages"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || n > service.MaxVisitMessages {
			s.apiError(w, r, errBadParam("messages"))
			return
		}
		seen.Messages = n
	}
	wait := StateWait
	if seen.State == "" {
		wait = 0
	}
	got, err := s.svc.WatchVisit(r.Context(), r.PathValue("id"), seen, wait)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, got)
}

func (s *Server) apiCheckIn(w http.ResponseWriter, r *http.Request) {
	vis, err := s.svc.CheckIn(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"state": vis.State})
}

func (s *Server) apiJoinToken(w http.ResponseWriter, r *http.Request) {
	pass, err := s.svc.CallToken(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pass)
}

func (s *Server) apiAdmit(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.svc.Admit(r.Context(), id); err != nil {
		s.apiError(w, r, err)
		return
	}
	// With LiveKit, the visit's room is made now; it is made again at the
	// first join if this fails (LiveKit down, or refused by the vendor
	// registry), and the join then says why.
	if s.livekit != nil {
		if err := s.livekit.CreateRoom(r.Context(), id); err != nil {
			s.Logger.Warn("creating the call's LiveKit room", "err", haven.ErrorCode(err))
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"state": "admitted"})
}

// apiCancel cancels a booked or waiting visit (the clinician's "remove"
// from the waiting room, or the patient's cancel); any call room it has
// closes with it. Removing a waiting patient cancels rather than returns
// the visit to booked: a patient sent back to booked could check in again
// at once and reappear in the queue, so removal would not hold, and a
// cancelled visit frees its slot for the clinic to book again. The
// patient's waiting page sees the state change and says so.
func (s *Server) apiCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.svc.CancelVisit(r.Context(), id); err != nil {
		s.apiError(w, r, err)
		return
	}
	s.closeRoom(id)
	writeJSON(w, http.StatusOK, map[string]string{"state": "cancelled"})
}

// apiEnd ends an admitted visit from outside the call (the waiting room):
// durable state first, then whoever is still in the room is disconnected.
func (s *Server) apiEnd(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.svc.EndVisit(r.Context(), id); err != nil {
		s.apiError(w, r, err)
		return
	}
	s.closeRoom(id)
	writeJSON(w, http.StatusOK, map[string]string{"state": "ended"})
}

func (s *Server) closeRoom(visitID string) {
	if !haven.PlausibleID(visitID) {
		return
	}
	if s.sfu != nil {
		s.sfu.End(visitID)
	}
	if s.livekit != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.livekit.Close(ctx, visitID); err != nil {
			s.Logger.Warn("closing the call's LiveKit room", "err", haven.ErrorCode(err))
		}
	}
}

// waitingEntry is one line of the clinician's queue.
type waitingEntry struct {
	ID          string     `json:"id"`
	PatientName string     `json:"patient_name"`
	Reason      string     `json:"reason"`
	State       string     `json:"state"`
	Start       time.Time  `json:"start"`
	End         time.Time  `json:"end"`
	CheckedInAt *time.Time `json:"checked_in_at,omitempty"`
	Messages    int        `json:"messages"` // the visit's waiting-room thread length
}

func (s *Server) apiWaitingRoom(w http.ResponseWriter, r *http.Request) {
	vs, err := s.svc.WaitingQueue(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]waitingEntry, 0, len(vs))
	for _, x := range vs {
		out = append(out, waitingEntry{ID: x.ID, PatientName: x.PatientName, Reason: x.Reason, State: x.State,
			Start: x.Start, End: x.End, CheckedInAt: x.CheckedInAt, Messages: x.Messages})
	}
	writeJSON(w, http.StatusOK, map[string]any{"visits": out, "now": s.now().UTC()})
}

// MaxNetworkCheck bounds the network check's download.
const MaxNetworkCheck = 1 << 20

// apiNetworkCheck answers the pre-visit page's network check: n random
// (incompressible) bytes, timed by the browser. It carries nothing about
// anyone; it requires a session only so it is no free bandwidth.
func (s *Server) apiNetworkCheck(w http.ResponseWriter, r *http.Request) {
	n := 0
	if q := r.URL.Query().Get("bytes"); q != "" {
		var err error
		if n, err = strconv.Atoi(q); err != nil || n < 0 || n > MaxNetworkCheck {
			s.apiError(w, r, errBadParam("bytes"))
			return
		}
	}
	b := make([]byte, n)
	rand.Read(b)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// sessionStillLive checks the session that opened r (a call's upgrade)
// afresh, as the session middleware checks every request: EUNAUTHORIZED
// once it is revoked, expired or replaced, ESTEPUP once it is challenged.
// It records no activity (Peek): the call page keeps its session alive
// itself, so a client that does not is not kept signed in by its socket.
func (s *Server) sessionStillLive(ctx context.Context, r *http.Request) error {
	signedIn, _ := haven.ActorFromContext(ctx)
	token, _ := presentedToken(r)
	if s.id == nil || token == "" || signedIn.SessionID == "" {
		return haven.Errorf(haven.EUNAUTHORIZED, "please sign in")
	}
	cur, err := s.id.Peek(ctx, token, clientFrom(r))
	if err != nil {
		return err
	}
	if cur.Actor.SessionID != signedIn.SessionID || cur.Actor.UserID != signedIn.UserID {
		return haven.Errorf(haven.EUNAUTHORIZED, "please sign in")
	}
	if cur.Challenged {
		return haven.Errorf(haven.ESTEPUP, "this session moved to another network or device")
	}
	return nil
}
