package main

import (
	"context"
	"time"

	"haven"
	"haven/auth/outbox"
	"haven/identity"
)

// purgeEvery is how often ended sessions, expired tokens and forgotten
// throttle counts are purged.
const purgeEvery = time.Hour

// startIdentity builds sign-in, sessions and accounts over the service:
// emails (reset links, invitations, verifications) go to mail, and their
// links point at publicURL. Passkeys are scoped to publicURL's host; they
// stay off (nil), with the reason in the log, where it is an IP address,
// which cannot scope a passkey (a name such as localhost can). The purge
// runs every purgeEvery until ctx ends or stop is called. stop waits for a
// purge in progress and for emails still being written; call it before
// the database closes.
func startIdentity(ctx context.Context, env *Env, st *stack, mail outbox.Outbox, publicURL string) (id *identity.Service, passkeys *identity.Passkeys, stop func()) {
	id = identity.New(st.svc.Gate(), identity.Config{DB: st.db, Outbox: mail, BaseURL: publicURL})
	passkeys, err := identity.NewPasskeys(id, identity.PasskeyConfig{PublicURL: publicURL})
	if err != nil {
		env.Logger.Warn("passkeys are off", "reason", haven.ErrorMessage(err))
		passkeys = nil
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(purgeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := id.Purge(ctx); err != nil && ctx.Err() == nil {
					env.Logger.Error("identity purge", "err", err)
				}
			}
		}
	}()
	return id, passkeys, func() {
		cancel()
		<-done
		id.Close()
	}
}
