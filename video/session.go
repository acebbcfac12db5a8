package video

import (
	"context"
	"time"

	"github.com/coder/websocket"

	"haven"
	"haven/video/sfu"
	"haven/video/signal"
	"haven/video/token"
)

// run is the session: a join, then messages until the participant leaves,
// is replaced, the visit ends, the call is cut or the connection drops.
func (s *session) run(ctx context.Context) {
	if s.h.cfg.LiveKit != nil {
		s.runLiveKit(ctx)
		return
	}
	if !s.join(ctx) {
		return
	}
	reason := "disconnected"
	defer func() {
		if s.p.Leave() {
			s.audit(ctx, Event{Action: ActionLeave, Reason: reason})
		}
	}()
	defer s.rechecking(ctx)()
	for {
		m, ok := s.next(ctx)
		if !ok {
			return
		}
		if m.Type == signal.Leave {
			reason = "left"
			return
		}
		if !s.handle(ctx, m) {
			return
		}
	}
}

// rechecking runs the recheck's watcher beside the session, when there is
// a recheck, and returns what stops it and waits for it: the watcher reads
// the request, so it must be done before the handler returns.
func (s *session) rechecking(ctx context.Context) (stop func()) {
	if s.h.cfg.Recheck == nil {
		return func() {}
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.watch(wctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// next reads the participant's next message. It reports false when the
// connection dropped, or when a message over the rate or one that cannot
// be read ends the session (the client is told why).
func (s *session) next(ctx context.Context) (signal.Message, bool) {
	typ, b, err := s.conn.Read(ctx)
	if err != nil {
		return signal.Message{}, false
	}
	if !s.limiter.Allow() {
		s.sendError(haven.Errorf(haven.ETOOMANY, "too many signaling messages"))
		return signal.Message{}, false
	}
	m, err := s.parse(typ, b)
	if err != nil {
		s.sendError(err)
		return signal.Message{}, false
	}
	return m, true
}

func (s *session) parse(typ websocket.MessageType, b []byte) (signal.Message, error) {
	if typ != websocket.MessageText {
		return signal.Message{}, haven.Errorf(haven.EINVALID, "signaling messages are text")
	}
	return signal.Parse(b)
}

// join waits for the join message and seats the participant. It reports
// whether they were seated; every refusal is audited and told to the
// client before the connection closes.
func (s *session) join(ctx context.Context) bool {
	c, ok := s.admit(ctx)
	if !ok {
		return false
	}
	var ice []signal.ICEServer
	var err error
	if s.h.cfg.ICEServers != nil {
		if ice, err = s.h.cfg.ICEServers(ctx, c); err != nil {
			s.refuse(ctx, "no_relay", haven.Wrap(haven.EUNAVAILABLE, err, "the media relay is unavailable"))
			return false
		}
	}
	room, err := s.h.cfg.SFU.Room(s.visitID)
	if err != nil {
		s.refuse(ctx, haven.ErrorCode(err), err)
		return false
	}
	reconnect, err := room.Admits(c.ParticipantID, c.Role)
	if err != nil {
		s.refuse(ctx, haven.ErrorCode(err), err)
		return false
	}
	// A join that cannot be audited does not happen.
	ev := Event{Action: ActionJoin}
	if reconnect {
		ev.Reason = "reconnect"
	}
	if err := s.h.cfg.Audit(ctx, s.event(ev)); err != nil {
		s.sendError(haven.Wrap(haven.EUNAVAILABLE, err, "the audit log is unavailable; try again shortly"))
		return false
	}
	p, _, err := s.h.cfg.SFU.Join(s.visitID, sfu.JoinRequest{ParticipantID: c.ParticipantID, Role: c.Role, Signal: s, ICEServers: ice})
	if err != nil {
		// Lost a race with an end or the last seat since Admits.
		s.refuse(ctx, haven.ErrorCode(err), err)
		return false
	}
	s.p = p
	return true
}

// admit waits for the join message, redeems its token and asks
// Authorize: the checks every join passes, whichever engine carries the
// media. Every refusal is audited and told to the client.
func (s *session) admit(ctx context.Context) (token.Claims, bool) {
	jctx, cancel := context.WithTimeout(ctx, s.h.cfg.JoinTimeout)
	typ, b, err := s.conn.Read(jctx)
	cancel()
	if err != nil {
		return token.Claims{}, false
	}
	m, err := s.parse(typ, b)
	if err == nil && m.Type != signal.Join {
		err = haven.Errorf(haven.EINVALID, "send join first")
	}
	if err != nil {
		s.refuse(ctx, "no_token", err)
		return token.Claims{}, false
	}
	c, err := token.Redeem(ctx, s.h.cfg.TokenKey, s.h.cfg.Spent, m.Token, s.visitID, s.participant, s.h.cfg.Now())
	if err != nil {
		reason := token.Reason(err)
		if reason == "" {
			reason = haven.ErrorCode(err)
		}
		s.refuse(ctx, reason, err)
		return token.Claims{}, false
	}
	s.claims = c
	if s.h.cfg.Authorize != nil {
		if err := s.h.cfg.Authorize(ctx, c); err != nil {
			s.refuse(ctx, "not_authorized", err)
			return token.Claims{}, false
		}
	}
	return c, true
}

// handle carries out one message; it reports whether the session goes on.
func (s *session) handle(ctx context.Context, m signal.Message) bool {
	switch m.Type {
	case signal.End:
		if !s.endVisit(ctx) {
			return true
		}
		if err := s.p.Room().End(s.p); err != nil {
			s.sendError(err)
			return true
		}
		return false
	case signal.Invite:
		if !s.mayInvite(ctx, m) {
			return true
		}
		if err := s.p.Room().Invite(s.p, m.Participant); err != nil {
			s.sendError(err)
			return true
		}
		s.invited(ctx, m)
		return true
	default:
		if err := s.p.Handle(m); err != nil {
			s.sendError(err)
		}
		return true
	}
}

// endVisit is a clinician's end of the visit, whichever engine carries
// the call: audited and told to the service. It reports false, telling the
// client, when the participant may not end it. Ending only takes access
// away, so it goes ahead even if the audit log is down.
func (s *session) endVisit(ctx context.Context) bool {
	if s.claims.Role != token.Clinician {
		s.sendError(haven.Errorf(haven.EFORBIDDEN, "only the clinician may end the visit"))
		return false
	}
	s.audit(ctx, Event{Action: ActionEnd})
	if s.h.cfg.EndVisit != nil {
		if err := s.h.cfg.EndVisit(ctx, s.visitID, s.participant); err != nil {
			s.sendError(err)
		}
	}
	return true
}

// mayInvite decides and audits a clinician's invitation of a guest,
// whichever engine carries the call. It reports false, telling the
// client, when the participant may not invite or the invitation cannot
// be audited (an invitation not in the log does not happen).
func (s *session) mayInvite(ctx context.Context, m signal.Message) bool {
	if s.claims.Role != token.Clinician {
		s.sendError(haven.Errorf(haven.EFORBIDDEN, "only the clinician may invite"))
		return false
	}
	if err := s.h.cfg.Audit(ctx, s.event(Event{Action: ActionInvite, Subject: m.Participant})); err != nil {
		s.sendError(haven.Wrap(haven.EUNAVAILABLE, err, "the audit log is unavailable; try again shortly"))
		return false
	}
	return true
}

// invited has the service record an invitation the call has made; the
// guest's join is then checked like any other (Authorize).
func (s *session) invited(ctx context.Context, m signal.Message) {
	if s.h.cfg.Invite != nil {
		if err := s.h.cfg.Invite(ctx, s.visitID, s.participant, m.Participant); err != nil {
			s.sendError(err)
		}
	}
}

// refuse audits a refused join and tells the client why.
func (s *session) refuse(ctx context.Context, reason string, err error) {
	s.audit(ctx, Event{Action: ActionJoinRefused, Reason: reason})
	s.sendError(err)
}

// audit records e, best effort (for events that happen regardless).
func (s *session) audit(ctx context.Context, e Event) {
	_ = s.h.cfg.Audit(ctx, s.event(e))
}

func (s *session) event(e Event) Event {
	e.VisitID = s.visitID
	e.ParticipantID = s.participant
	e.Role = s.claims.Role
	e.TokenID = s.claims.TokenID
	return e
}

// watch asks Recheck every RecheckEvery whether the participant may stay,
// and cuts the call when they may not, until ctx ends or the session is
// over.
func (s *session) watch(ctx context.Context) {
	t := time.NewTicker(s.h.cfg.RecheckEvery)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
		err := s.h.cfg.Recheck(ctx, s.r, s.claims)
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return // the session ended while we asked
		}
		reason := cutReason(err)
		switch reason {
		case "":
			if failures++; failures < RecheckFailures {
				continue
			}
			reason = CutUnverifiable
		case CutVisitClosed:
			s.endForEveryone(ctx)
			return
		}
		s.cut(ctx, reason)
		return
	}
}

// cutReason classifies a Recheck error: a definite answer cuts at once,
// "" means no answer (try again).
func cutReason(err error) string {
	switch haven.ErrorCode(err) {
	case haven.EUNAUTHORIZED:
		return CutSessionEnded
	case haven.ESTEPUP:
		return CutSessionChallenged
	case haven.ECONFLICT:
		return CutVisitClosed
	case haven.EFORBIDDEN, haven.ENOTFOUND:
		return CutNoLongerAllowed
	}
	return ""
}

// cut tells the participant why, takes their seat (their media stops and
// the others see them leave) and closes the connection. The removal comes
// first and does not wait for the audit log: taking access away never
// waits.
func (s *session) cut(ctx context.Context, reason string) {
	switch reason {
	case CutSessionEnded:
		s.sendError(haven.Errorf(haven.EUNAUTHORIZED, "Your session has ended, so you have left the call. Sign in again to rejoin."))
	case CutSessionChallenged:
		s.sendError(haven.Errorf(haven.ESTEPUP, "Your session moved to another network or device. Confirm it is you, then rejoin."))
	case CutNoLongerAllowed:
		s.sendError(haven.Errorf(haven.EFORBIDDEN, "You are no longer part of this call."))
	default:
		s.sendError(haven.Errorf(haven.EUNAVAILABLE, "Haven could not confirm your session, so you have left the call. Rejoin in a moment."))
	}
	if s.leave(context.WithoutCancel(ctx)) {
		// The connection closing ends the session and its context; the
		// record of why must still be written.
		s.audit(context.WithoutCancel(ctx), Event{Action: ActionCut, Reason: reason})
	}
	s.Close()
}

// leave takes the participant's seat: in the embedded SFU, or in the
// LiveKit room (LiveKit disconnects them). It reports whether this call
// took it (false when it was already gone).
func (s *session) leave(ctx context.Context) bool {
	if s.h.cfg.LiveKit != nil {
		return s.leaveLiveKit(ctx)
	}
	return s.p.Leave()
}

// closeRoom ends the visit's call for everyone on this node's engine.
func (s *session) closeRoom(ctx context.Context) {
	if s.h.cfg.LiveKit != nil {
		s.closeLiveKit(ctx)
		return
	}
	s.h.cfg.SFU.End(s.visitID)
}

// endForEveryone closes the room of a visit that is over (ended or
// cancelled on another node, whose room this node never heard from):
// every participant gets "ended" and is disconnected, as an end from the
// call would have done, and the room refuses joins from now on. The cut
// is audited for the participant whose check found it.
func (s *session) endForEveryone(ctx context.Context) {
	s.closeRoom(context.WithoutCancel(ctx))
	s.audit(context.WithoutCancel(ctx), Event{Action: ActionCut, Reason: CutVisitClosed})
	s.Close()
}
