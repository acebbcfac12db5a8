package service

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"strings"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/outbox"
	"haven/keyring"
	"haven/policy"
	"haven/store/sqlstore"
)

// Verifying a contact: every email Haven sends carries a short code
// (composeEmail is the one place an email is put together). Only a keyed
// hash of the code is stored, with the blind index of the address it went
// to, the email's kind and when it was sent. A patient who doubts an email
// enters its code in her account: the answer is that her practice sent
// it, on a date and about what kind of thing, or that it did not come
// from us. The code answers only its recipient: entered by anyone else, or
// in another practice, it is "not from us", as a made-up one is. She may
// also report a suspicious message, which raises an alert for the
// compliance officer.

// Email kinds, as stored with their codes and shown to a patient who
// checks one. Words, never content.
const (
	EmailInvitation    = "invitation"
	EmailRegistration  = "registration"
	EmailAccountExists = "account_exists"
	EmailPasswordReset = "password_reset"
	EmailAccountSetup  = "account_setup"
	EmailVendorNotice  = "vendor_agreement"
	EmailVisitReminder = "visit_reminder"
	EmailMessageNotice = "message_notice"
	EmailRecordNotice  = "record_notice"
)

// EmailKindWords says what an email of each kind was about.
var EmailKindWords = map[string]string{
	EmailInvitation:    "an invitation to join the practice on Haven",
	EmailRegistration:  "a link to confirm your email address",
	EmailAccountExists: "a note that you already have an account",
	EmailPasswordReset: "a link to reset your password",
	EmailAccountSetup:  "a link to set up your account",
	EmailVendorNotice:  "a notice about a vendor agreement",
	EmailVisitReminder: "a reminder of an upcoming visit",
	EmailMessageNotice: "a notice that a new message is waiting in Haven",
	EmailRecordNotice:  "a notice that something new is in your record",
}

// RuleSuspiciousMessage is the alert a patient's report of a suspicious
// message raises.
const RuleSuspiciousMessage = "suspicious_message"

// contactCodeAlphabet is Crockford's base32: no I, L, O or U, so a code
// read aloud or typed from a phone is not mistaken.
const contactCodeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ContactCodeLen is the number of characters of a code (40 bits), shown as
// two groups of four.
const ContactCodeLen = 8

// newContactCode returns a random code in its normal form (no dash).
func newContactCode() string {
	var b [ContactCodeLen]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = contactCodeAlphabet[b[i]&31]
	}
	return string(b[:])
}

// NormalizeContactCode reads a code as a person typed it: case, spaces and
// dashes ignored, and the letters Crockford's alphabet leaves out read as
// the digits they look like. It returns false for anything that is not a
// code.
func NormalizeContactCode(s string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch r {
		case ' ', '-', '\t':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if r > 127 || !strings.ContainsRune(contactCodeAlphabet, r) {
			return "", false
		}
		b.WriteRune(r)
		if b.Len() > ContactCodeLen {
			return "", false
		}
	}
	if b.Len() != ContactCodeLen {
		return "", false
	}
	return b.String(), true
}

// FormatContactCode shows a normalized code as XXXX-XXXX.
func FormatContactCode(c string) string {
	if len(c) != ContactCodeLen {
		return c
	}
	return c[:4] + "-" + c[4:]
}

func (s *Service) contactCodeHash(ctx context.Context, code string) ([]byte, error) {
	return s.keys.BlindIndex(ctx, keyring.PlatformPracticeID, "contact_code", []byte(code))
}

// contactFooter is what every email ends with.
func contactFooter(code string) string {
	return "\n\n--\nVerification code: " + FormatContactCode(code) + "\n" +
		"To check that this email came from your practice, sign in to Haven yourself (do not use a link you doubt) " +
		"and enter this code under Account, \"Check a message\". Haven never asks for your password or a sign-in code by email.\n"
}

// composeEmail is how every email of Haven's is made: text with the
// verification code appended, its hash stored for the recipient to check.
// It holds no PHI beyond what the caller put in (which must be none). An
// email whose code cannot be stored is not sent.
func (s *Service) composeEmail(ctx context.Context, practiceID, kind, to, subject, text string) (outbox.Message, error) {
	if _, ok := EmailKindWords[kind]; !ok {
		return outbox.Message{}, haven.Errorf(haven.EINTERNAL, "unknown email kind %q", kind)
	}
	recipient, err := s.emailIndex(ctx, to)
	if err != nil {
		return outbox.Message{}, err
	}
	for range 3 {
		code := newContactCode()
		h, err := s.contactCodeHash(ctx, code)
		if err != nil {
			return outbox.Message{}, err
		}
		err = s.db.PutContactCode(ctx, sqlstore.ContactCode{Hash: h, PracticeID: practiceID, Recipient: recipient, Kind: kind, SentAt: s.now()})
		if haven.ErrorCode(err) == haven.ECONFLICT {
			continue // the same code twice: draw another
		}
		if err != nil {
			return outbox.Message{}, haven.Wrap(haven.EUNAVAILABLE, err, "cannot store the email's verification code")
		}
		return outbox.Message{To: to, Subject: subject, Text: text + contactFooter(code)}, nil
	}
	return outbox.Message{}, haven.Errorf(haven.EUNAVAILABLE, "cannot draw a verification code")
}

// ComposeEmail is composeEmail for identity's emails (invitations,
// resets, registrations).
func (g *Gate) ComposeEmail(ctx context.Context, practiceID, kind, to, subject, text string) (outbox.Message, error) {
	return g.s.composeEmail(ctx, practiceID, kind, to, subject, text)
}

// ContactCheck is the answer to a code.
type ContactCheck struct {
	Genuine bool
	SentAt  time.Time // when genuine
	Kind    string
	About   string // EmailKindWords[Kind]
}

// contactResource is the signed-in patient's own account.
func contactResource(a haven.Actor) policy.Resource {
	return policy.Resource{Kind: policy.KindContact, ID: a.UserID, PracticeID: a.PracticeID, PatientID: a.UserID}
}

// CheckContactCode answers whether the email carrying code was sent by the
// signed-in patient's practice to her. A code that is malformed, unknown,
// another practice's or sent to someone else answers "not from us", all
// alike. Every check is audited.
func (s *Service) CheckContactCode(ctx context.Context, code string) (*ContactCheck, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.ContactVerify, contactResource(a)); err != nil {
		return nil, err
	}
	// Guessing codes is bounded by the audit log itself, on every node:
	// this check is already in it.
	recent, err := s.db.SearchAudit(ctx, haven.AuditQuery{LogID: a.PracticeID, ActorID: a.UserID, Action: string(policy.ContactVerify),
		Since: s.now().Add(-time.Hour), Limit: MaxContactChecksPerHour + 1})
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot check the code")
	}
	if len(recent) > MaxContactChecksPerHour {
		return nil, haven.Errorf(haven.ETOOMANY, "too many codes checked in the last hour; try again later, or report the message")
	}
	return s.lookContactCode(ctx, a, code)
}

// MaxContactChecksPerHour bounds one patient's checks of codes: plenty
// for her own emails, and 2^40 codes are not guessed at this rate.
const MaxContactChecksPerHour = 20

func (s *Service) lookContactCode(ctx context.Context, a haven.Actor, code string) (*ContactCheck, error) {
	no := &ContactCheck{}
	norm, ok := NormalizeContactCode(code)
	if !ok {
		return no, nil
	}
	h, err := s.contactCodeHash(ctx, norm)
	if err != nil {
		return nil, err
	}
	c, err := s.db.FindContactCode(ctx, h)
	if haven.ErrorCode(err) == haven.ENOTFOUND {
		return no, nil
	}
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot check the code")
	}
	u, err := s.db.FindUserByID(ctx, a.UserID)
	if err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot check the code")
	}
	if c.PracticeID != a.PracticeID || u.PracticeID != a.PracticeID || subtle.ConstantTimeCompare(c.Recipient, u.EmailIndex) != 1 {
		return no, nil
	}
	return &ContactCheck{Genuine: true, SentAt: c.SentAt, Kind: c.Kind, About: EmailKindWords[c.Kind]}, nil
}

// ReportSuspiciousMessage records the signed-in patient's report of a
// message she doubts and raises an alert for the compliance officer. The
// code, if she has one, is checked and the alert says whether it was
// genuine; nothing she typed is stored.
func (s *Service) ReportSuspiciousMessage(ctx context.Context, code string) (*ContactCheck, error) {
	a, err := haven.SignedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.authorize(ctx, policy.ContactVerify, contactResource(a)); err != nil {
		return nil, err
	}
	chk := &ContactCheck{}
	detail := "a patient reported a suspicious message that carried no code"
	if strings.TrimSpace(code) != "" {
		if chk, err = s.lookContactCode(ctx, a, code); err != nil {
			return nil, err
		}
		detail = "a patient reported a suspicious message whose code was not one the practice sent her"
		if chk.Genuine {
			detail = "a patient reported a suspicious message whose code was one the practice sent her: the email may have been altered, or the account misused"
		}
	}
	ev := audit.ForActor(a, "contact.report")
	ev.ResourceKind, ev.ResourceID, ev.PatientID = string(policy.KindContact), a.UserID, a.UserID
	ev.Decision, ev.Reason, ev.Purpose = haven.DecisionAllow, string(policy.ReasonSelf), string(policy.PurposePatientRequest)
	seq, err := s.record(ctx, ev)
	if err != nil {
		return nil, err
	}
	if err := s.db.CreateAlert(ctx, &haven.Alert{ID: haven.NewID(), PracticeID: a.PracticeID, Rule: RuleSuspiciousMessage,
		ActorID: a.UserID, PatientID: a.UserID, Detail: detail, AuditSeq: seq}); err != nil {
		return nil, haven.Wrap(haven.EUNAVAILABLE, err, "cannot raise the alert")
	}
	return chk, nil
}
