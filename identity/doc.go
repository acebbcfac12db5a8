// Package identity owns who may come in, and for how long: sign-in with a
// password and a second factor (TOTP, recovery codes, passkeys), sessions
// with their timeouts, device challenges and revocation, step-up,
// throttling, password resets and setup links, invitations to a practice's
// workforce, patients' self-registration, and the admin's view of accounts.
// It puts the primitives of haven/auth together into flows that web calls.
//
// It is apart from service because it is a different job: service opens
// PHI for an actor who is already known; identity decides who that actor
// is. It never holds a key. What it needs of the spine it reaches through
// service.Gate, and only there: the access decision with its audit event
// (an admin opening another account), the audit log for security events,
// and sealing, where the gate chooses the key (an invited address under
// the practice's, a patient's TOTP secret under the patient's own, so
// erasing the patient erases it). Its own records (sessions, one-time
// tokens, factors, throttle counts) are in the database it is given;
// storage below sees only ciphertext, blind indexes and hashes.
//
// The wiring (cmd/haven) builds it over the service's gate and runs its
// purge; web holds it and never the gate.
package identity
