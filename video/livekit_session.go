package video

import (
	"context"
	"time"

	"haven"
	"haven/video/signal"
)

// runLiveKit is a session when LiveKit carries the media. The join is
// decided exactly as for the embedded SFU (token redeemed, Authorize,
// audited); then, instead of an offer, the page is handed a LiveKit token
// for the visit's room, and this connection stays open as the call's
// control channel: leave and end go over it, Recheck runs on it, and
// when it closes — the participant left, was cut, or their page went
// away — they are removed from the LiveKit room. So no one stays in a
// LiveKit room whom Haven is not still checking.
func (s *session) runLiveKit(ctx context.Context) {
	c, ok := s.admit(ctx)
	if !ok {
		return
	}
	g, err := s.h.cfg.LiveKit.Token(ctx, s.visitID, c)
	if err != nil {
		s.refuse(ctx, haven.ErrorCode(err), err)
		return
	}
	// A join that cannot be audited does not happen: the token minted
	// above is never handed out, and expires unused.
	if err := s.h.cfg.Audit(ctx, s.event(Event{Action: ActionJoin})); err != nil {
		s.sendError(haven.Wrap(haven.EUNAVAILABLE, err, "the audit log is unavailable; try again shortly"))
		return
	}
	s.grant = g
	if err := s.Send(signal.Message{Type: signal.LiveKit, URL: g.URL, Token: g.Token, Participant: g.Identity, Role: string(c.Role)}); err != nil {
		s.leaveLiveKit(context.WithoutCancel(ctx))
		return
	}
	s.sendNames(ctx)
	reason := "disconnected"
	defer func() {
		if s.leaveLiveKit(context.WithoutCancel(ctx)) {
			s.audit(ctx, Event{Action: ActionLeave, Reason: reason})
		}
	}()
	defer s.rechecking(ctx)()
	for {
		m, ok := s.next(ctx)
		if !ok {
			return
		}
		switch m.Type {
		case signal.Leave:
			reason = "left"
			return
		case signal.Names:
			s.sendNames(ctx)
		case signal.End:
			if !s.endVisit(ctx) {
				continue
			}
			s.closeLiveKit(context.WithoutCancel(ctx))
			_ = s.Send(signal.Message{Type: signal.Ended})
			reason = "ended"
			return
		case signal.Invite:
			if s.mayInvite(ctx, m) {
				s.invited(ctx, m)
			}
		default:
			// Media, mute state and keys travel on LiveKit.
			s.sendError(haven.Errorf(haven.EINVALID, "this call runs on LiveKit: only leave, end, invite and names are sent here"))
		}
	}
}

// sendNames tells this admitted participant the others' names keyed by
// their LiveKit identities (pseudonyms), as Config.Names gives them; its
// own is left out. A failure to look them up is not worth the call: the
// page shows roles instead, and may ask again.
func (s *session) sendNames(ctx context.Context) {
	if s.h.cfg.Names == nil {
		return
	}
	byID, err := s.h.cfg.Names(ctx, s.claims)
	if err != nil {
		return
	}
	names := make(map[string]string, len(byID))
	for id, name := range byID {
		if id == s.claims.ParticipantID || name == "" {
			continue
		}
		names[s.h.cfg.LiveKit.Identity(s.visitID, id)] = name
	}
	_ = s.Send(signal.Message{Type: signal.Names, Names: names})
}

// leaveLiveKit removes this connection's participant from the LiveKit
// room, unless they reconnected on this node since (the newer connection
// keeps them in). It reports whether this connection held a seat.
func (s *session) leaveLiveKit(ctx context.Context) bool {
	s.leftMu.Lock()
	if s.left || s.grant.Token == "" {
		s.leftMu.Unlock()
		return false
	}
	s.left = true
	s.leftMu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Taking access away goes ahead whatever the registry says; a failure
	// leaves LiveKit's own timeouts and the room's deletion at the
	// visit's end to finish it.
	_ = s.h.cfg.LiveKit.Release(rctx, s.visitID, s.claims.ParticipantID, s.grant)
	return true
}

// closeLiveKit deletes the visit's LiveKit room: everyone is disconnected.
func (s *session) closeLiveKit(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = s.h.cfg.LiveKit.Close(rctx, s.visitID)
	s.leftMu.Lock()
	s.left = true
	s.leftMu.Unlock()
}
