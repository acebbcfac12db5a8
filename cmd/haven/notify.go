package main

import (
	"context"
	"time"

	"haven/auth/outbox"
	"haven/service"
)

// noticeEvery is how often `haven serve` looks for people to tell of a new
// secure message, besides the moment a message on this node asks for it.
// Every node runs the loop; the database decides which node sends each
// notice (service.Notices), so more nodes never mean more emails.
const noticeEvery = 30 * time.Second

// startNotices runs the message notice sender in the background, mailing
// through the same outbox as identity's emails and the visit reminders,
// until ctx ends or the returned stop is called. stop waits for a run in
// progress to finish, so the database and the outbox are not closed under
// it.
func startNotices(ctx context.Context, env *Env, st *stack, mail outbox.Outbox, publicURL string) (stop func()) {
	n := service.NewNotices(st.svc, service.NoticeConfig{Outbox: mail, BaseURL: publicURL})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx, noticeEvery, func(sent int, err error) {
			// Counts and error codes only: errors name people by id at most.
			if err != nil {
				env.Logger.Error("message notices", "sent", sent, "err", err)
				return
			}
			env.Logger.Info("message notices sent", "count", sent)
		})
	}()
	return func() {
		cancel()
		<-done
	}
}
