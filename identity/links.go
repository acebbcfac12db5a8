package identity

import (
	"context"
	"fmt"
	"strings"
	"time"

	"haven"
	"haven/auth/session"
	"haven/store/sqlstore"
)

// What the single-use links identity emails share (password reset,
// account setup, invitations, registration): their URLs, the token of a
// reset or setup link, the clinic an email names, the words for a link's
// lifetime, and the one answer to a link that is used up or expired.

// link returns the public URL of path.
func (id *Service) link(path string) string { return strings.TrimRight(id.baseURL, "/") + path }

// issueLink stores a single-use token of kind for u and returns its token.
func (id *Service) issueLink(ctx context.Context, kind string, u *haven.User, ttl time.Duration, c Client) (string, error) {
	token, hash := session.NewToken()
	now := id.now()
	err := id.db.CreateAuthToken(ctx, sqlstore.AuthToken{Hash: hash, Kind: kind, UserID: u.ID, PracticeID: u.PracticeID,
		Role: u.Role, ClientAddr: c.Addr, CreatedAt: now, ExpiresAt: now.Add(ttl)})
	return token, err
}

func (id *Service) practiceName(ctx context.Context, practiceID string) string {
	if practiceID == "" {
		return "Haven"
	}
	if p, err := id.db.FindPracticeByID(ctx, practiceID); err == nil {
		return p.Name
	}
	return "your clinic"
}

// human says a link's lifetime in an email: "1 day", "7 days", "one hour".
func human(d time.Duration) string {
	switch {
	case d == 24*time.Hour:
		return "1 day"
	case d%(24*time.Hour) == 0 && d >= 24*time.Hour:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0 && d > time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d == time.Hour:
		return "one hour"
	}
	return d.String()
}

// LinkInfo describes a reset or setup link before it is used.
type LinkInfo struct {
	PracticeName string
	Role         haven.Role
	Expires      time.Time
}

var errLinkGone = haven.Errorf(haven.ENOTFOUND, "this link has expired or was already used; ask for a new one")
