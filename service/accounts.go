package service

import (
	"context"
	"strings"

	"haven"
	"haven/auth/password"
	"haven/keyring"
)

// CreatePractice provisions a tenant. Its keys are created lazily by the
// keyring on first use, wrapped under the root.
func (s *Service) CreatePractice(ctx context.Context, name string) (*haven.Practice, error) {
	p := &haven.Practice{ID: haven.NewID(), Name: strings.TrimSpace(name), CreatedAt: s.now()}
	if err := s.db.CreatePractice(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// NewUser is what CreateUser needs; Email, Name and Password are plaintext
// here and nowhere below.
type NewUser struct {
	PracticeID string
	Role       haven.Role
	Email      string
	Name       string
	Password   string
}

// CreateUser creates an account with its email and name sealed, its email
// blind-indexed for sign-in, and its password hashed with argon2id after the
// breached-password check.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (*haven.User, error) {
	email := haven.NormalizeEmail(nu.Email)
	if !haven.ValidEmail(email) {
		return nil, haven.Errorf(haven.EINVALID, "email address is not valid")
	}
	if n := len(strings.TrimSpace(nu.Name)); n == 0 || n > 200 {
		return nil, haven.Errorf(haven.EINVALID, "name must be 1 to 200 characters")
	}
	if err := password.Check(nu.Password); err != nil {
		return nil, err
	}
	if nu.Role == haven.RolePatient {
		return nil, haven.Errorf(haven.EINVALID, "patients are registered with a chart, not as bare accounts")
	}
	u := &haven.User{ID: haven.NewID(), PracticeID: nu.PracticeID, Role: nu.Role, CreatedAt: s.now()}
	var err error
	if err := s.sealUser(ctx, u, email, nu.Name); err != nil {
		return nil, err
	}
	if u.PasswordHash, err = s.passwords.Hash(ctx, nu.Password); err != nil {
		return nil, err
	}
	if err := s.db.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// sealUser fills u's blind-indexed, sealed email and sealed name. A
// patient's are sealed under the patient's own data key, so shredding the
// patient erases their login address too; the workforce's under the
// practice's.
func (s *Service) sealUser(ctx context.Context, u *haven.User, email, name string) error {
	var err error
	if u.EmailIndex, err = s.emailIndex(ctx, email); err != nil {
		return err
	}
	if err := u.Validate(); err != nil {
		return err
	}
	ad := userAD(u, "email")
	if u.Email, err = s.keys.Seal(ctx, ad, []byte(haven.NormalizeEmail(email))); err != nil {
		return err
	}
	u.Name, err = s.keys.Seal(ctx, userAD(u, "name"), []byte(strings.TrimSpace(name)))
	return err
}

func userAD(u *haven.User, field string) keyring.AD {
	ad := keyring.AD{PracticeID: keyPractice(u.PracticeID), Kind: "user", RecordID: u.ID, Field: field}
	if u.Role == haven.RolePatient {
		ad.PatientID = u.ID
	}
	return ad
}

// UserProfile is a user's opened contact details.
type UserProfile struct {
	ID, PracticeID, Email, Name string
	Role                        haven.Role
}

// openUser opens a user's sealed email and name. Callers have decided and
// audited the access already.
func (s *Service) openUser(ctx context.Context, u *haven.User) (*UserProfile, error) {
	email, err := s.keys.Open(ctx, userAD(u, "email"), u.Email)
	if err != nil {
		return nil, err
	}
	name, err := s.keys.Open(ctx, userAD(u, "name"), u.Name)
	if err != nil {
		return nil, err
	}
	return &UserProfile{ID: u.ID, PracticeID: u.PracticeID, Role: u.Role, Email: string(email), Name: string(name)}, nil
}

// PracticeNames returns every practice's id by its name. Names are
// public, and ids are not secrets (a practice's registration page is at
// /register/{id}).
func (s *Service) PracticeNames(ctx context.Context) (map[string]string, error) {
	ps, err := s.db.ListPractices(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(ps))
	for _, p := range ps {
		names[p.Name] = p.ID
	}
	return names, nil
}

// ProvisionPassword sets a user's password from an operator's tool (the
// demo seed, `haven user` commands): it is not a sign-in path and needs no
// session, so it is never reachable from the web.
func (s *Service) ProvisionPassword(ctx context.Context, userID, pw string) error {
	if err := password.Check(pw); err != nil {
		return err
	}
	h, err := s.passwords.Hash(ctx, pw)
	if err != nil {
		return err
	}
	return s.db.SetPasswordHash(ctx, userID, h)
}

// Practices lists every practice (names are the clinics' public names, not
// PHI), for the operator.
func (s *Service) Practices(ctx context.Context) ([]*haven.Practice, error) {
	return s.db.ListPractices(ctx)
}
