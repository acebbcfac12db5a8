package main

import (
	"context"
	"time"

	"haven/auth/outbox"
	"haven/service"
)

// reminderEvery is how often `haven serve` looks for visits whose reminder
// is due. Every node runs the loop; the database decides which node sends
// each reminder (service.Reminders), so more nodes never mean more emails.
const reminderEvery = time.Minute

// startReminders runs the visit reminder sender in the background, mailing
// through the same outbox as identity's emails, until ctx ends or the
// returned stop is called. stop waits for a run in progress to finish, so
// the database and the outbox are not closed under it.
func startReminders(ctx context.Context, env *Env, st *stack, mail outbox.Outbox, publicURL string) (stop func()) {
	rem := service.NewReminders(st.svc, service.ReminderConfig{Outbox: mail, BaseURL: publicURL})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rem.Run(ctx, reminderEvery, func(sent int, err error) {
			// Counts and error codes only: errors name visits by id at most.
			if err != nil {
				env.Logger.Error("visit reminders", "sent", sent, "err", err)
				return
			}
			env.Logger.Info("visit reminders sent", "count", sent)
		})
	}()
	return func() {
		cancel()
		<-done
	}
}

// baaReminderEvery is how often `haven serve` looks for vendor agreements
// that end within haven.BAAReminderLead; the database decides which node
// announces each one (service.BAAReminders).
const baaReminderEvery = time.Hour

// startBAAReminders announces ending vendor agreements to the practices'
// admins (alert and email) until ctx ends or stop is called.
func startBAAReminders(ctx context.Context, env *Env, st *stack, mail outbox.Outbox, publicURL string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(baaReminderEvery)
		defer t.Stop()
		for {
			if n, err := st.svc.BAAReminders(ctx, mail, publicURL); err != nil && ctx.Err() == nil {
				env.Logger.Error("vendor agreement reminders", "sent", n, "err", err)
			} else if n > 0 {
				env.Logger.Info("vendor agreement reminders sent", "count", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
