package sfu

import (
	"sync"

	"haven"
	"haven/video/signal"
	"haven/video/token"
)

// Sender is a participant's signaling channel, seen from the SFU: the
// WebSocket in production, a channel in tests. Send must not block for
// long (buffer, and drop the connection if the buffer fills); Close ends
// the channel, after which the participant is gone.
type Sender interface {
	Send(signal.Message) error
	Close()
}

// Room is one visit's call.
type Room struct {
	sfu     *SFU
	visitID string

	mu      sync.Mutex
	seats   map[string]*Participant // by participant id
	tracks  map[string]*forward     // by server-chosen track id
	invited map[string]bool         // guests the clinician invited
	ended   bool
	gone    bool // emptied and dropped from the SFU; joins go to a new room
}

// errGone is returned by Join on a room that emptied meanwhile; SFU.Join
// retries on the visit's new room.
var errGone = haven.Errorf(haven.ECONFLICT, "the call was reset; join again")

func newRoom(s *SFU, visitID string) *Room {
	return &Room{sfu: s, visitID: visitID, seats: map[string]*Participant{}, tracks: map[string]*forward{}, invited: map[string]bool{}}
}

func (r *Room) isGone() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gone
}

// VisitID is the visit this room belongs to.
func (r *Room) VisitID() string { return r.visitID }

// JoinRequest is one participant arriving, after their join token has been
// redeemed.
type JoinRequest struct {
	ParticipantID string
	Role          token.Role
	Signal        Sender
	// ICEServers go to the participant's browser in the joined message
	// (the TURN server, with credentials minted for them).
	ICEServers []signal.ICEServer
}

// Join seats a participant (prefer SFU.Join, which cannot lose a race with
// the room emptying): it creates their peer connection, sends them
// "joined" with the peers already present, tells the others, and sends the
// first offer. A participant who is already seated (a reconnect after a
// network drop, with a fresh token) replaces their old connection, which
// is closed; replaced reports that.
//
// A guest is seated only if the clinician invited them (Invite); a room that
// ended, or whose seats are taken, refuses.
func (r *Room) Join(j JoinRequest) (p *Participant, replaced bool, err error) {
	if !haven.PlausibleID(j.ParticipantID) || !j.Role.Valid() || j.Signal == nil {
		return nil, false, haven.Errorf(haven.EINVALID, "join needs a participant id, a role and a signaling channel")
	}
	p, err = newParticipant(r, j)
	if err != nil {
		return nil, false, err
	}

	r.mu.Lock()
	if err = r.admitsLocked(j.ParticipantID, j.Role); err == nil && r.gone {
		err = errGone
	}
	if err != nil {
		r.mu.Unlock()
		p.pc.Close()
		return nil, false, err
	}
	old := r.seats[j.ParticipantID]
	if old != nil {
		r.unseatLocked(old)
	}
	r.seats[j.ParticipantID] = p
	peers := r.peersLocked(p)
	r.mu.Unlock()

	if old != nil {
		old.close(signal.Message{Type: signal.Error, Code: haven.ECONFLICT, Text: "You joined this visit from another connection."})
	}
	p.send(signal.Message{Type: signal.Joined, Participant: p.ID, Role: string(p.Role), Peers: peers, ICEServers: j.ICEServers})
	if old == nil {
		r.broadcast(p, signal.Message{Type: signal.PeerJoined, Peer: ptr(p.peer())})
	} else {
		r.broadcast(p, signal.Message{Type: signal.State, Peer: ptr(p.peer())})
	}
	r.renegotiate(nil) // p's first offer, and the others drop old's tracks
	return p, old != nil, nil
}

// Invite lets guestID join as a guest. Only a seated clinician may invite;
// the caller also mints the guest's token and records the invitation.
func (r *Room) Invite(by *Participant, guestID string) error {
	if by == nil || by.room != r || by.Role != token.Clinician || by.isClosed() {
		return haven.Errorf(haven.EFORBIDDEN, "only the clinician in the call may invite")
	}
	if !haven.PlausibleID(guestID) {
		return haven.Errorf(haven.EINVALID, "invitee must be a participant id")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return haven.Errorf(haven.ECONFLICT, "the visit has ended")
	}
	if s := r.seats[guestID]; s != nil && s.Role != token.Guest {
		return haven.Errorf(haven.ECONFLICT, "that participant is already in the call")
	}
	r.invited[guestID] = true
	return nil
}

// End ends the visit for everyone: every participant gets "ended" and is
// disconnected, and the room refuses joins from now on. Only a seated
// clinician may end a visit.
func (r *Room) End(by *Participant) error {
	if by == nil || by.room != r || by.Role != token.Clinician || by.isClosed() {
		return haven.Errorf(haven.EFORBIDDEN, "only the clinician may end the visit")
	}
	r.sfu.mu.Lock()
	r.sfu.markEnded(r.visitID)
	r.sfu.mu.Unlock()
	r.end()
	return nil
}

func (r *Room) end() {
	r.closeAll(signal.Message{Type: signal.Ended})
}

func (r *Room) closeAll(last signal.Message) {
	r.mu.Lock()
	r.ended = true
	seated := make([]*Participant, 0, len(r.seats))
	for _, p := range r.seats {
		seated = append(seated, p)
		r.unseatLocked(p)
	}
	r.mu.Unlock()
	for _, p := range seated {
		p.close(last)
	}
}

// Admits reports whether Join would seat participantID as role now, and
// whether that would replace a connection of theirs (a reconnect). It lets
// the caller audit a join before it happens; Join checks again.
func (r *Room) Admits(participantID string, role token.Role) (reconnect bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seats[participantID] != nil, r.admitsLocked(participantID, role)
}

func (r *Room) admitsLocked(participantID string, role token.Role) error {
	seated := r.seats[participantID] != nil
	switch {
	case r.ended:
		return haven.Errorf(haven.ECONFLICT, "the visit has ended")
	case role == token.Guest && !r.invited[participantID]:
		return haven.Errorf(haven.EFORBIDDEN, "a guest may join only at the clinician's invitation")
	case !seated && len(r.seats) >= r.sfu.cfg.MaxParticipants:
		return haven.Errorf(haven.ECONFLICT, "the call is full")
	}
	return nil
}

// leave unseats p (if it is still seated: a replaced connection is not)
// and tells the others. It reports whether p was seated.
func (r *Room) leave(p *Participant) bool {
	r.mu.Lock()
	seated := r.seats[p.ID] == p
	if seated {
		r.unseatLocked(p)
	}
	empty := seated && len(r.seats) == 0
	if empty {
		r.gone = true
	}
	r.mu.Unlock()
	p.close(signal.Message{})
	if !seated {
		return false
	}
	r.broadcast(p, signal.Message{Type: signal.PeerLeft, Participant: p.ID})
	r.renegotiate(nil)
	if empty {
		r.sfu.dropRoom(r)
	}
	return true
}

// unseatLocked removes p and its published tracks; r.mu is held.
func (r *Room) unseatLocked(p *Participant) {
	if r.seats[p.ID] == p {
		delete(r.seats, p.ID)
	}
	for id, f := range r.tracks {
		if f.owner == p {
			delete(r.tracks, id)
		}
	}
}

// Peers returns who is seated, as the others see them.
func (r *Room) Peers() []signal.Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peersLocked(nil)
}

func (r *Room) peersLocked(except *Participant) []signal.Peer {
	out := make([]signal.Peer, 0, len(r.seats))
	for _, p := range r.seats {
		if p != except {
			out = append(out, p.peer())
		}
	}
	return out
}

// broadcast sends m to everyone seated but from.
func (r *Room) broadcast(from *Participant, m signal.Message) {
	r.mu.Lock()
	to := make([]*Participant, 0, len(r.seats))
	for _, p := range r.seats {
		if p != from {
			to = append(to, p)
		}
	}
	r.mu.Unlock()
	for _, p := range to {
		p.send(m)
	}
}

// relayWrappedKey passes a media key that from sealed for one participant
// to that participant alone, naming from as its sender: the server writes
// the sender's id, so no one can pass a key off as another's. The server
// cannot open the key (it is sealed with a key only the two browsers can
// derive). A recipient who is not seated (they have just left) is no
// error: the key is simply dropped, as the sender will learn from the
// peer-left message.
func (r *Room) relayWrappedKey(from *Participant, to, sealed string) error {
	if to == from.ID {
		return haven.Errorf(haven.EINVALID, "a sealed key is for another participant")
	}
	r.mu.Lock()
	p := r.seats[to]
	seated := r.seats[from.ID] == from
	r.mu.Unlock()
	if !seated {
		return haven.Errorf(haven.ECONFLICT, "you have left the call")
	}
	if p != nil {
		p.send(signal.Message{Type: signal.WrapKey, Participant: from.ID, Key: sealed})
	}
	return nil
}

// addTrack publishes f to the room, unless its owner has left meanwhile.
func (r *Room) addTrack(f *forward) bool {
	r.mu.Lock()
	ok := r.seats[f.owner.ID] == f.owner
	if ok {
		r.tracks[f.id] = f
	}
	r.mu.Unlock()
	if ok {
		r.renegotiate(f.owner)
	}
	return ok
}

// removeTrack withdraws f (its publisher stopped sending it).
func (r *Room) removeTrack(f *forward) {
	r.mu.Lock()
	_, ok := r.tracks[f.id]
	if ok && r.tracks[f.id] == f {
		delete(r.tracks, f.id)
	}
	r.mu.Unlock()
	if ok {
		r.renegotiate(f.owner)
	}
}

// subscriptions returns the tracks p should receive: everyone's but its own.
func (r *Room) subscriptions(p *Participant) map[string]*forward {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*forward, len(r.tracks))
	if r.seats[p.ID] != p {
		return out
	}
	for id, f := range r.tracks {
		if f.owner != p {
			out[id] = f
		}
	}
	return out
}

// renegotiate brings every seated participant but skip up to date with the
// room's tracks, each in its own goroutine so one slow browser does not
// hold up the rest.
func (r *Room) renegotiate(skip *Participant) {
	r.mu.Lock()
	seated := make([]*Participant, 0, len(r.seats))
	for _, p := range r.seats {
		if p != skip {
			seated = append(seated, p)
		}
	}
	r.mu.Unlock()
	for _, p := range seated {
		go p.negotiate()
	}
}

// forwardsOf returns the tracks p publishes.
func (r *Room) forwardsOf(p *Participant) []*forward {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*forward
	for _, f := range r.tracks {
		if f.owner == p {
			out = append(out, f)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
