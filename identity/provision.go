package identity

import (
	"context"
	"strings"
	"unicode/utf8"

	"haven"
	"haven/auth/session"
	"haven/service"
)

// ProvisionPractice brings a clinic onto Haven: it creates the practice and
// invites its first administrator, who then brings in everyone else. It is
// the platform operator's command (`haven practice create`), run on the
// server with the root key at hand, so like the other operator commands it
// is audited as the operator's, in the new practice's log, rather than
// decided for a signed-in actor: no account exists yet that could ask.
//
// It returns the practice and the invitation link. The link is emailed
// when the server has an outbox, and returned as well because a brand-new
// server may not send mail yet; whoever holds it can become the practice's
// administrator until it is used or expires, so the operator hands it over
// as they would a password.
func (id *Service) ProvisionPractice(ctx context.Context, name, adminEmail string) (*haven.Practice, string, error) {
	if err := CheckNewPractice(name, adminEmail); err != nil {
		return nil, "", err
	}
	name, email := strings.TrimSpace(name), haven.NormalizeEmail(adminEmail)
	if id.outbox == nil {
		return nil, "", haven.Errorf(haven.EUNAVAILABLE, "email is not configured on this server")
	}
	p, err := id.gate.CreatePractice(ctx, name)
	if err != nil {
		return nil, "", err
	}
	token, hash := session.NewToken()
	// Audited before the invitation exists, as every access is: if the
	// audit append fails, no one holds a link to an unrecorded practice.
	if err := id.gate.Record(ctx, service.OperatorEvent(p.ID, "practice.provision", "practice", p.ID, "")); err != nil {
		return nil, "", err
	}
	if err := id.issueInvitation(ctx, p.ID, email, haven.RolePracticeAdmin, service.OperatorActorID, Client{Addr: "local"}, token, hash); err != nil {
		return nil, "", err
	}
	return p, id.link("/invite/" + token), nil
}

// CheckNewPractice validates ProvisionPractice's input without touching
// anything, so the command can refuse bad input before it opens a store.
func CheckNewPractice(name, adminEmail string) error {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 200 || strings.ContainsFunc(name, isControl) {
		return haven.Errorf(haven.EINVALID, "practice name must be 1 to 200 characters of text")
	}
	if !haven.ValidEmail(haven.NormalizeEmail(adminEmail)) {
		return haven.Errorf(haven.EINVALID, "the administrator's email address is not valid")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
