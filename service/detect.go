package service

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"haven"
	"haven/audit"
	"haven/policy"
)

// Detection rules over the audit stream. They run on each event this node
// appends, so an insider browsing charts is flagged within the request that
// crossed the line, not in tomorrow's report. Windows are kept in memory per
// node: with several nodes each sees its share of the traffic, so
// thresholds act per node (documented for operators).
const (
	RuleBulkAccess = "bulk_access"     // one user touching many distinct patients quickly
	RuleDenials    = "repeated_denial" // one user refused again and again
	RuleAfterHours = "after_hours"     // workforce PHI access outside working hours
	RuleBreakGlass = "break_glass"     // emergency access was granted
	RuleProbe      = "outside_probe"   // someone outside the practice asked for one of its records
)

// probeAlertEvery is how often one outsider's probes of one practice raise
// an alert there; every probe is in that practice's log regardless.
const probeAlertEvery = time.Hour

type detector struct {
	mu      sync.Mutex
	touches map[string]map[string]time.Time // practice|actor → patient → last access
	denials map[string][]time.Time          // practice|actor → denial times
	raised  map[string]time.Time            // rule|practice|actor → last alert
}

func (s *Service) detectorState() *detector {
	s.detectOnce.Do(func() {
		s.det = &detector{touches: map[string]map[string]time.Time{}, denials: map[string][]time.Time{},
			raised: map[string]time.Time{}}
	})
	return s.det
}

// detect applies the rules to evs, with the settings of each event's
// practice read afresh (once for a run of events of one practice). It
// never fails the request: a rule that cannot raise its alert logs the
// fault (ids only) instead.
func (s *Service) detect(ctx context.Context, evs ...audit.Event) {
	var ps PracticeSettings
	loaded := ""
	for _, ev := range evs {
		if ev.LogID == audit.PlatformLogID || ev.ActorID == "" {
			continue
		}
		if ev.LogID != loaded {
			var err error
			if ps, err = s.settings(ctx, ev.LogID); err != nil {
				slog.Warn("detection: settings unavailable", "practice", ev.LogID, "err", err)
				continue
			}
			loaded = ev.LogID
		}
		s.detectWith(ctx, ev, ps)
	}
}

// detectWith applies the rules to ev under its practice's settings ps, as
// the gate read them for the decision: thresholds are never cached, so a
// change made on any node applies from the next request on.
func (s *Service) detectWith(ctx context.Context, ev audit.Event, ps PracticeSettings) {
	if ev.LogID == audit.PlatformLogID || ev.ActorID == "" {
		return
	}
	d := s.detectorState()
	now := s.now()
	key := ev.LogID + "|" + ev.ActorID
	var fire []string
	d.mu.Lock()
	workforce := haven.Role(ev.ActorRole).Workforce()
	if ev.Decision == haven.DecisionAllow && ev.PatientID != "" && workforce && ev.ActorID != ev.PatientID {
		// Triage (message.triage: an inbox's lines, giving a thread to
		// someone, marking it done) is not a touch: the practice's work
		// lists those threads, not the reader's choice (see inbox.go).
		// What is opened from them is.
		if ev.Action != string(policy.MessageTriage) {
			m := d.touches[key]
			if m == nil {
				m = map[string]time.Time{}
				d.touches[key] = m
			}
			m[ev.PatientID] = now
			for p, t := range m {
				if now.Sub(t) > time.Duration(ps.BulkAccessWindow) {
					delete(m, p)
				}
			}
			if len(m) >= ps.BulkAccessPatients && d.once(RuleBulkAccess+"|"+key, now, time.Duration(ps.BulkAccessWindow)) {
				fire = append(fire, RuleBulkAccess)
			}
		}
		if outsideHours(now, ps) && d.once(RuleAfterHours+"|"+key, now, time.Hour) {
			fire = append(fire, RuleAfterHours)
		}
	}
	if ev.Decision == haven.DecisionDeny {
		ts := append(d.denials[key], now)
		for len(ts) > 0 && now.Sub(ts[0]) > time.Duration(ps.DenialsWindow) {
			ts = ts[1:]
		}
		d.denials[key] = ts
		if len(ts) >= ps.DenialsThreshold && d.once(RuleDenials+"|"+key, now, time.Duration(ps.DenialsWindow)) {
			fire = append(fire, RuleDenials)
		}
	}
	if ev.Action == string(policy.BreakGlassRequest) && ev.Decision == haven.DecisionAllow {
		fire = append(fire, RuleBreakGlass)
	}
	d.mu.Unlock()
	for _, rule := range fire {
		if err := s.raise(ctx, rule, ev, ps); err != nil {
			slog.Error("detection: cannot raise alert", "rule", rule, "practice", ev.LogID, "actor", ev.ActorID, "err", err)
		}
	}
}

// once reports whether an alert for key may fire now, at most once per
// period, so one burst raises one alert rather than hundreds.
func (d *detector) once(key string, now time.Time, period time.Duration) bool {
	if t, ok := d.raised[key]; ok && now.Sub(t) < period {
		return false
	}
	d.raised[key] = now
	return true
}

func outsideHours(now time.Time, ps PracticeSettings) bool {
	h := now.In(zone(ps.TimeZone)).Hour()
	return h < ps.WorkdayStartHour || h >= ps.WorkdayEndHour
}

// zones holds the time zones outsideHours has loaded, by name:
// time.LoadLocation reads and parses the zone's file on every call, and
// every record a member of the workforce opens asks for one. A zone's
// rules change only with the system's zone files, which a restart picks
// up. Names come from validated settings, so the map stays as small as
// the zones practices use.
var zones sync.Map // name → *time.Location

// zone returns the named zone, or UTC for a name that does not load (one
// stored before names were checked).
func zone(name string) *time.Location {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	zones.Store(name, loc)
	return loc
}

// raise stores an alert. Its detail names the rule's numbers, never PHI.
func (s *Service) raise(ctx context.Context, rule string, ev audit.Event, ps PracticeSettings) error {
	detail := map[string]string{
		RuleBulkAccess: fmt.Sprintf("%d or more distinct patients within %s", ps.BulkAccessPatients, time.Duration(ps.BulkAccessWindow)),
		RuleDenials:    fmt.Sprintf("%d or more denied requests within %s", ps.DenialsThreshold, time.Duration(ps.DenialsWindow)),
		RuleAfterHours: fmt.Sprintf("patient record access outside %02d:00-%02d:00 %s", ps.WorkdayStartHour, ps.WorkdayEndHour, ps.TimeZone),
		RuleBreakGlass: "emergency access granted; review required",
		RuleProbe:      "a user of another practice asked for this practice's records and was refused as if they did not exist",
	}[rule]
	return s.db.CreateAlert(ctx, &haven.Alert{ID: haven.NewID(), PracticeID: ev.LogID, Rule: rule, ActorID: ev.ActorID,
		PatientID: ev.PatientID, Detail: detail, AuditSeq: ev.Seq})
}

// reportProbe tells the practice that owns res that a, an actor of another
// practice (or of the platform), asked to act on it by the id sentID and
// was refused. The attempt goes into that practice's own log (naming that
// id and the record's patient, so it is in the patient's access history
// too) and raises an
// alert for its compliance officer, at most once per probeAlertEvery per
// outsider. The outsider is told nothing: their answer and their own log
// are those of an id that exists nowhere (see authorize), and this runs in
// the background after the answer, so its time tells them nothing either.
// A report that cannot be written is logged (ids only); the refusal stands.
func (s *Service) reportProbe(ctx context.Context, a haven.Actor, act policy.Action, res policy.Resource, sentID string) {
	if res.PracticeID == "" {
		return
	}
	ev := audit.ForActor(a, string(act))
	ev.LogID = res.PracticeID
	ev.SessionID = "" // another practice's session means nothing here
	ev.ResourceKind, ev.ResourceID, ev.PatientID = string(res.Kind), sentID, res.PatientID
	ev.Decision, ev.Reason = haven.DecisionDeny, string(policy.ReasonOtherPractice)
	ctx = context.WithoutCancel(ctx)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		seq, err := s.record(ctx, ev)
		if err != nil {
			slog.Error("cannot report a probe to its practice", "practice", res.PracticeID, "actor", a.UserID, "err", err)
			return
		}
		ev.Seq = seq
		d := s.detectorState()
		d.mu.Lock()
		fire := d.once(RuleProbe+"|"+res.PracticeID+"|"+a.UserID, s.now(), probeAlertEvery)
		d.mu.Unlock()
		if !fire {
			return
		}
		if err := s.raise(ctx, RuleProbe, ev, PracticeSettings{}); err != nil {
			slog.Error("detection: cannot raise alert", "rule", RuleProbe, "practice", res.PracticeID, "actor", a.UserID, "err", err)
		}
	}()
}
