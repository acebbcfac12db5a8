package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/store/sqlstore"
)

// threadScene is a practice with a clinician and a patient, stored
// directly (sealed values are opaque bytes here).
type threadScene struct {
	practice, doc, patient string
}

func newThreadScene(t *testing.T, db *sqlstore.DB) threadScene {
	t.Helper()
	ctx := context.Background()
	u := newMember(t, db, haven.RoleClinician)
	doc := u.ID
	pat := &haven.User{ID: haven.NewID(), PracticeID: u.PracticeID, Role: haven.RolePatient, EmailIndex: []byte(haven.NewID()),
		Email: haven.Sealed{1}, Name: haven.Sealed{2}}
	if err := db.CreatePatient(ctx, pat, &haven.Patient{ID: pat.ID, PracticeID: u.PracticeID, MRNIndex: []byte(haven.NewID()),
		MRN: haven.Sealed{3}, Demographics: haven.Sealed{4}, Contact: haven.Sealed{5}}, nil); err != nil {
		t.Fatal(err)
	}
	return threadScene{practice: u.PracticeID, doc: doc, patient: pat.ID}
}

func (sc threadScene) thread(id, audience string) *haven.Thread {
	return &haven.Thread{ID: id, PracticeID: sc.practice, PatientID: sc.patient, Audience: audience, Subject: haven.Sealed{9}, StartedBy: sc.patient}
}

func (sc threadScene) message(threadID, sender string) *haven.Message {
	return &haven.Message{ID: haven.NewID(), ThreadID: threadID, PracticeID: sc.practice, PatientID: sc.patient, SenderID: sender,
		Body: haven.Sealed{7}, SealedAs: "message"}
}

// TestMessagesTakeTheirPlaceInTheThread: a thread and its first message
// are stored together; each later message is the next in order, moves
// the thread's count, last sender and change stamp, marks the sender as
// having read it, keeps its attachments, and reopens a done thread when
// asked; a full thread takes nothing; an unknown thread is not found.
func TestMessagesTakeTheirPlaceInTheThread(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		sc := newThreadScene(t, db)
		th := sc.thread(haven.NewID(), haven.AudienceCareTeam)
		first := sc.message(th.ID, sc.patient)
		if err := db.AddMessage(ctx, sqlstore.NewMessage{Thread: th, Message: first, Max: 3, Notify: []string{sc.doc}}); err != nil {
			t.Fatal(err)
		}
		if first.Seq != 1 || th.Messages != 1 {
			t.Fatalf("first message seq %d, thread holds %d", first.Seq, th.Messages)
		}
		got, err := db.FindThread(ctx, th.ID)
		if err != nil || got.Messages != 1 || got.LastSender != sc.patient || got.Audience != haven.AudienceCareTeam || string(got.Subject) != "\x09" || got.DoneUS != 0 {
			t.Fatalf("stored %+v %v", got, err)
		}
		changed := got.ChangedUS
		if err := db.SetThreadDone(ctx, th.ID, sc.doc, true); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.FindThread(ctx, th.ID); got.DoneUS == 0 || got.DoneBy != sc.doc || got.ChangedUS <= changed {
			t.Fatalf("done: %+v", got)
		}
		// Files must exist to be attached.
		fid := haven.NewID()
		if err := db.CreateFile(ctx, &haven.File{ID: fid, PracticeID: sc.practice, PatientID: sc.patient, UploadedBy: sc.patient, Name: haven.Sealed{8},
			ContentType: "text/plain; charset=utf-8", Size: 1, BlobKey: "files/x/" + fid}); err != nil {
			t.Fatal(err)
		}
		reply := sc.message(th.ID, sc.doc)
		reply.FileIDs = []string{fid}
		if err := db.AddMessage(ctx, sqlstore.NewMessage{Message: reply, Max: 3}); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.FindThread(ctx, th.ID); got.DoneUS == 0 {
			t.Fatal("the clinician's reply reopened the thread")
		}
		again := sc.message(th.ID, sc.patient)
		if err := db.AddMessage(ctx, sqlstore.NewMessage{Message: again, Max: 3, Reopen: true}); err != nil {
			t.Fatal(err)
		}
		got, _ = db.FindThread(ctx, th.ID)
		if got.DoneUS != 0 || got.Messages != 3 || got.LastSender != sc.patient {
			t.Fatalf("after the patient's reply: %+v", got)
		}
		if err := db.AddMessage(ctx, sqlstore.NewMessage{Message: sc.message(th.ID, sc.doc), Max: 3}); haven.ErrorCode(err) != haven.ETOOMANY {
			t.Fatalf("a full thread: %v", err)
		}
		if err := db.AddMessage(ctx, sqlstore.NewMessage{Message: sc.message(haven.NewID(), sc.doc), Max: 3}); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("an unknown thread: %v", err)
		}
		ms, err := db.ThreadMessages(ctx, th.ID)
		if err != nil || len(ms) != 3 {
			t.Fatalf("%d messages, %v", len(ms), err)
		}
		for i, m := range ms {
			if m.Seq != i+1 {
				t.Errorf("message %d has seq %d", i, m.Seq)
			}
		}
		if ms[1].ID != reply.ID || len(ms[1].FileIDs) != 1 || ms[1].FileIDs[0] != fid || len(ms[0].FileIDs) != 0 {
			t.Fatalf("attachments: %+v", ms)
		}
		reads, err := db.ThreadReads(ctx, sc.doc, []string{th.ID, haven.NewID()})
		if err != nil || len(reads) != 1 || reads[th.ID] != 2 {
			t.Fatalf("the clinician's read mark: %v %v", reads, err)
		}
		// A read mark never moves back.
		if err := db.MarkRead(ctx, th.ID, sc.doc, 1); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkRead(ctx, th.ID, sc.patient, 3); err != nil {
			t.Fatal(err)
		}
		if reads, _ := db.ThreadReads(ctx, sc.doc, []string{th.ID}); reads[th.ID] != 2 {
			t.Fatalf("the mark moved back: %v", reads)
		}
		// The notice asked for is pending.
		due, err := db.DueNotices(ctx, micros(time.Now()), 10)
		if err != nil || len(due) != 1 || due[0].UserID != sc.doc || due[0].PracticeID != sc.practice {
			t.Fatalf("due notices %+v %v", due, err)
		}
	})
}

func micros(t time.Time) int64 { return t.UnixMicro() }

// TestConcurrentMessagesTakeDistinctPlaces: senders racing on one thread
// each get their own place; none is lost or doubled.
func TestConcurrentMessagesTakeDistinctPlaces(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		sc := newThreadScene(t, db)
		th := sc.thread(haven.NewID(), haven.AudienceFrontDesk)
		if err := db.AddMessage(ctx, sqlstore.NewMessage{Thread: th, Message: sc.message(th.ID, sc.patient), Max: 100}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- db.AddMessage(ctx, sqlstore.NewMessage{Message: sc.message(th.ID, sc.doc), Max: 100})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		ms, err := db.ThreadMessages(ctx, th.ID)
		if err != nil || len(ms) != 9 || ms[8].Seq != 9 {
			t.Fatalf("%d messages, %v", len(ms), err)
		}
		if got, _ := db.FindThread(ctx, th.ID); got.Messages != 9 {
			t.Fatalf("the thread counts %d", got.Messages)
		}
	})
}

// TestAVisitThreadIsMadeByItsFirstMessage: the thread of a visit has the
// visit's id, is made once whoever writes first, and its count is what
// the waiting page and the queue watch.
func TestAVisitThreadIsMadeByItsFirstMessage(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		sc := newThreadScene(t, db)
		start := time.Now().UTC().Truncate(time.Second)
		var ids []string
		for i := range 3 {
			at := start.Add(time.Duration(i) * time.Hour)
			v := &haven.Visit{ID: haven.NewID(), PracticeID: sc.practice, PatientID: sc.patient, ClinicianID: sc.doc, Start: at, End: at.Add(30 * time.Minute),
				State: haven.VisitWaiting, Reason: haven.Sealed{6}, BookedBy: sc.patient}
			if err := db.CreateVisit(ctx, v); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, v.ID)
		}
		for i, n := range []int{3, 0, 1} {
			for k := range n {
				sender := sc.doc
				if k == 1 {
					sender = sc.patient
				}
				th := &haven.Thread{ID: ids[i], PracticeID: sc.practice, PatientID: sc.patient, VisitID: ids[i], Audience: haven.AudienceVisit, StartedBy: sender}
				if err := db.AddMessage(ctx, sqlstore.NewMessage{Thread: th, Message: sc.message(ids[i], sender), Max: 200}); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := db.VisitMessageCounts(ctx, ids)
		if err != nil || len(got) != 2 || got[ids[0]] != 3 || got[ids[2]] != 1 {
			t.Fatalf("counts %v %v", got, err)
		}
		if got, err := db.VisitMessageCounts(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("no visits: %v %v", got, err)
		}
		th, err := db.FindThread(ctx, ids[0])
		if err != nil || th.VisitID != ids[0] || th.StartedBy != sc.doc || len(th.Subject) != 0 || th.Messages != 3 {
			t.Fatalf("the visit's thread: %+v %v", th, err)
		}
		for i, want := range []int{3, 0, 1} {
			state, n, err := db.VisitWatch(ctx, ids[i])
			if err != nil || state != haven.VisitWaiting || n != want {
				t.Fatalf("watch of visit %d: %s %d %v", i, state, n, err)
			}
		}
	})
}

// TestPracticeThreadsPageByActivity: open and done threads apart, one
// assignee's alone, newest activity first, and the next page continues
// exactly where the last ended.
func TestPracticeThreadsPageByActivity(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		sc := newThreadScene(t, db)
		clock := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
		db.SetClock(func() time.Time { return clock })
		var ids []string
		for i := range 7 {
			clock = clock.Add(time.Minute)
			th := sc.thread(fmt.Sprintf("t%02d", i), haven.AudienceCareTeam)
			if err := db.AddMessage(ctx, sqlstore.NewMessage{Thread: th, Message: sc.message(th.ID, sc.patient), Max: 10}); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, th.ID)
		}
		if err := db.SetThreadDone(ctx, ids[0], sc.doc, true); err != nil {
			t.Fatal(err)
		}
		if err := db.AssignThread(ctx, ids[3], sc.doc); err != nil {
			t.Fatal(err)
		}
		if err := db.AssignThread(ctx, haven.NewID(), sc.doc); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("assigning an unknown thread: %v", err)
		}
		var seen []string
		f := sqlstore.ThreadFilter{Limit: 4}
		for {
			page, err := db.PracticeThreads(ctx, sc.practice, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, th := range page {
				seen = append(seen, th.ID)
			}
			if len(page) < f.Limit {
				break
			}
			last := page[len(page)-1]
			f.BeforeUS, f.BeforeID = last.LastUS, last.ID
		}
		if fmt.Sprint(seen) != "[t06 t05 t04 t03 t02 t01]" {
			t.Fatalf("open threads by activity: %v", seen)
		}
		done, err := db.PracticeThreads(ctx, sc.practice, sqlstore.ThreadFilter{Done: true})
		if err != nil || len(done) != 1 || done[0].ID != ids[0] {
			t.Fatalf("done: %v %v", done, err)
		}
		mine, err := db.PracticeThreads(ctx, sc.practice, sqlstore.ThreadFilter{Assignee: sc.doc})
		if err != nil || len(mine) != 1 || mine[0].ID != ids[3] || mine[0].AssigneeID != sc.doc {
			t.Fatalf("assigned: %v %v", mine, err)
		}
		if err := db.AssignThread(ctx, ids[3], ""); err != nil {
			t.Fatal(err)
		}
		if th, _ := db.FindThread(ctx, ids[3]); th.AssigneeID != "" {
			t.Fatalf("still assigned: %+v", th)
		}
		// Watches: the newest change of the practice's and the patient's
		// threads moves with every change, even within one microsecond.
		before, err := db.ThreadsChanged(ctx, sc.practice, "")
		if err != nil || before == 0 {
			t.Fatalf("practice stamp %d %v", before, err)
		}
		if err := db.AssignThread(ctx, ids[1], sc.doc); err != nil {
			t.Fatal(err)
		}
		after, _ := db.ThreadsChanged(ctx, sc.practice, "")
		mineStamp, _ := db.ThreadsChanged(ctx, sc.practice, sc.patient)
		one, _ := db.ThreadChanged(ctx, ids[1])
		if after <= before || mineStamp != after || one != after {
			t.Fatalf("stamps %d → %d (patient %d, thread %d)", before, after, mineStamp, one)
		}
		if n, err := db.ThreadsChanged(ctx, haven.NewID(), ""); err != nil || n != 0 {
			t.Fatalf("a practice without threads: %d %v", n, err)
		}
	})
}

// TestOneNoticePerClaim: of nodes claiming one pending notice, one wins;
// a released claim comes back; a message arriving meanwhile keeps the
// oldest pending time.
func TestOneNoticePerClaim(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		sc := newThreadScene(t, db)
		th := sc.thread(haven.NewID(), haven.AudienceCareTeam)
		if err := db.AddMessage(ctx, sqlstore.NewMessage{Thread: th, Message: sc.message(th.ID, sc.doc), Max: 10, Notify: []string{sc.patient}}); err != nil {
			t.Fatal(err)
		}
		now := micros(time.Now()) + 1000
		due, err := db.DueNotices(ctx, now, 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("%v %v", due, err)
		}
		if wins := race(t, 8, func() (bool, error) { return db.ClaimNotice(ctx, due[0], now) }); wins != 1 {
			t.Fatalf("%d nodes claimed one notice", wins)
		}
		if again, _ := db.DueNotices(ctx, now, 10); len(again) != 0 {
			t.Fatalf("a claimed notice is still due: %v", again)
		}
		if err := db.ReleaseNotice(ctx, due[0]); err != nil {
			t.Fatal(err)
		}
		back, _ := db.DueNotices(ctx, now, 10)
		if len(back) != 1 || back[0].PendingUS != due[0].PendingUS || back[0].SentUS != 0 {
			t.Fatalf("released: %+v", back)
		}
		if ok, err := db.ClaimNotice(ctx, back[0], now); !ok || err != nil {
			t.Fatalf("claim after release: %v %v", ok, err)
		}
		// Sent now: not due again before the cutoff passes it, even with a
		// new message pending.
		if err := db.AddMessage(ctx, sqlstore.NewMessage{Message: sc.message(th.ID, sc.doc), Max: 10, Notify: []string{sc.patient}}); err != nil {
			t.Fatal(err)
		}
		if due, _ := db.DueNotices(ctx, now-1, 10); len(due) != 0 {
			t.Fatalf("due within the quiet period: %+v", due)
		}
		if due, _ := db.DueNotices(ctx, now, 10); len(due) != 1 || due[0].SentUS != now {
			t.Fatalf("due after it: %+v", due)
		}
	})
}
