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
