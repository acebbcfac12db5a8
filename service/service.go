// Package service is the only code in Haven that turns sealed values into
// PHI and back. Every operation follows the spine: policy.Decide on the
// actor in the context, an audit event committed before any PHI leaves,
// then the keyring opens or seals. Handlers in web call these methods and
// never see a key; storage below sees only ciphertext and blind indexes.
package service

import (
	"context"
	"sync"
	"time"

	"haven"
	"haven/audit"
	"haven/auth/password"
	"haven/blob"
	"haven/keyring"
	"haven/store/sqlstore"
)

// Service holds the pieces the spine needs. Build one with New.
type Service struct {
	db        *sqlstore.DB
	keys      *keyring.Keyring
	audit     *audit.Log
	blobs     blob.Store
	videoKey  []byte
	passwords *password.Hasher
	processor haven.Processor // nil: card payments are off
	erasures  ErasureLedger   // nil: erasures are not recorded outside backups
	sameDisk  bool            // every audit witness is on the data's disk
	now       func() time.Time

	detectOnce sync.Once
	det        *detector
	bg         sync.WaitGroup // work a request leaves behind (reportProbe)

	// notices wakes the message notice sender when a message asks for an
	// email (message_notices.go); it holds at most one wake-up.
	notices chan struct{}
	// rx wakes the prescription sender when a prescription or a
	// cancellation is queued (rx_outbox.go); it holds at most one wake-up.
	rx chan struct{}
	// labs wakes the lab sender when an order is queued (lab_outbox.go).
	labs chan struct{}
}

// Config is what New needs.
type Config struct {
	DB        *sqlstore.DB
	Keys      *keyring.Keyring
	Audit     *audit.Log       // required: no audit, no PHI
	Blobs     blob.Store       // encrypted file content; nil disables files
	VideoKey  []byte           // 32-byte HMAC key for join tokens, shared by every node; nil disables video
	Passwords *password.Hasher // default: a pool sized for this machine
	Processor haven.Processor  // the card processor; nil turns card payments off
	Erasures  ErasureLedger    // where erasures are recorded outside backups; nil records none
	Now       func() time.Time // default: time.Now in UTC; tests inject a clock
	// WitnessesOnDataDisk says every audit witness is a directory on the
	// data's own disk: whoever can rewrite the database can rewrite them,
	// so they prove no rollback (the evidence report says so).
	WitnessesOnDataDisk bool
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{db: cfg.DB, keys: cfg.Keys, audit: cfg.Audit, blobs: cfg.Blobs, videoKey: cfg.VideoKey, passwords: cfg.Passwords, processor: cfg.Processor, erasures: cfg.Erasures, now: cfg.Now, sameDisk: cfg.WitnessesOnDataDisk,
		notices: make(chan struct{}, 1), rx: make(chan struct{}, 1), labs: make(chan struct{}, 1)}
	if s.passwords == nil {
		s.passwords = password.NewHasher(password.HasherConfig{})
	}
	if s.now == nil {
		s.now = func() time.Time { return time.Now().UTC() }
	}
	return s
}

// Wait returns once the work requests left running in the background
// (reports of probes to the practice they targeted) has finished: call it
// before closing the audit log at shutdown.
func (s *Service) Wait() { s.bg.Wait() }

// Passwords returns the pool that hashes passwords, for the server's
// start-up to size the runtime around it (see password.Hasher.ReserveProcs).
func (s *Service) Passwords() *password.Hasher { return s.passwords }

// emailIndex is the blind index that finds an account at sign-in. It uses
// the platform's index key, not a practice's, because sign-in happens before
// anyone knows which practice the person belongs to.
func (s *Service) emailIndex(ctx context.Context, email string) ([]byte, error) {
	return s.keys.BlindIndex(ctx, keyring.PlatformPracticeID, "email", []byte(haven.NormalizeEmail(email)))
}

// keyPractice maps a record's practice to the keyring's: platform records
// (operators) live under the platform's own keys.
func keyPractice(practiceID string) string {
	if practiceID == "" {
		return keyring.PlatformPracticeID
	}
	return practiceID
}
