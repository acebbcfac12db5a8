package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/auth/outbox"
	"haven/service"
)

// pharmacy is a vendor an admin registers, its agreement ending in days.
func pharmacy(name string, ends time.Time) *haven.Vendor {
	return &haven.Vendor{Name: name, Kind: haven.VendorPharmacy, Endpoint: "https://rx.example/fhir", PHI: haven.PHIMinimum,
		BAASigned: ends.AddDate(-1, 0, 0).Truncate(24 * time.Hour), BAAExpires: ends.Truncate(24 * time.Hour),
		BAADocument: "contracts/rx-2026.pdf", Contact: "baa@rx.example"}
}

// TestVendorRegistryIsTheAdminsAfterAStepUp: the admin registers, changes
// and retires the practice's vendors, each only with a fresh
// authentication and each audited; the compliance officer may read the
// list but not change it; nobody reaches another practice's vendor, and
// a clinician reaches none.
func TestVendorRegistryIsTheAdminsAfterAStepUp(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("Vendorside", "VND1")
		q := e.seed("Otherside", "VND2")
		v := pharmacy("Corner Pharmacy", e.clock.Now().AddDate(1, 0, 0))

		// A session authenticated ten minutes ago must step up.
		stale := e.s.As(p.admin)
		e.clock.Advance(10 * time.Minute)
		if err := e.svc.AddVendor(stale, v); haven.ErrorCode(err) != haven.ESTEPUP {
			t.Fatalf("registering a vendor with an old authentication: %v, want %s", err, haven.ESTEPUP)
		}
		v = pharmacy("Corner Pharmacy", e.clock.Now().AddDate(1, 0, 0))
		if err := e.svc.AddVendor(e.as(p.admin), v); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.AddVendor(e.as(p.admin), pharmacy("Corner Pharmacy", e.clock.Now())); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("a second vendor of the same name: %v, want %s", err, haven.ECONFLICT)
		}
		vs, err := e.svc.Vendors(e.as(p.compliance))
		if err != nil || len(vs) != 1 || vs[0].Name != "Corner Pharmacy" {
			t.Fatalf("the compliance officer's list: %v %v", vs, err)
		}
		if err := e.svc.AddVendor(e.as(p.compliance), pharmacy("Sneaky", e.clock.Now())); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("the compliance officer registering a vendor: %v, want %s", err, haven.EFORBIDDEN)
		}
		if _, err := e.svc.Vendors(e.as(p.clinician)); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a clinician listing vendors: %v, want %s", err, haven.EFORBIDDEN)
		}
		// The other practice's admin: not listed, not found, not changed.
		if vs, _ := e.svc.Vendors(e.as(q.admin)); len(vs) != 0 {
			t.Fatalf("another practice lists this practice's vendors: %v", vs)
		}
		if _, err := e.svc.Vendor(e.as(q.admin), v.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice reads the vendor: %v, want %s", err, haven.ENOTFOUND)
		}
		other := *v
		other.Name = "Hijacked"
		if err := e.svc.UpdateVendor(e.as(q.admin), &other); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice changes the vendor: %v, want %s", err, haven.ENOTFOUND)
		}
		if err := e.svc.RetireVendor(e.as(q.admin), v.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice retires the vendor: %v, want %s", err, haven.ENOTFOUND)
		}

		changed := *v
		changed.BAAExpires = changed.BAAExpires.AddDate(1, 0, 0)
		if err := e.svc.UpdateVendor(e.as(p.admin), &changed); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.svc.Vendor(e.as(p.admin), v.ID); !got.BAAExpires.Equal(changed.BAAExpires) {
			t.Fatalf("the renewed end date was not kept: %v", got.BAAExpires)
		}
		if err := e.svc.RetireVendor(e.as(p.admin), v.ID); err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{service.ActVendorAdd: false, service.ActVendorUpdate: false, service.ActVendorRetire: false}
		for _, ev := range e.events(p.id) {
			if _, ok := want[ev.Action]; ok && ev.ResourceID == v.ID && ev.ActorID == p.admin.UserID {
				want[ev.Action] = true
			}
		}
		for act, seen := range want {
			if !seen {
				t.Errorf("no %s event for the vendor in the practice's log", act)
			}
		}
	})
}

// TestCheckEgressRefusesWhatNoAgreementCovers: an adapter asking to send
// to an unregistered vendor, another practice's, a retired one, one whose
// agreement ended, or one whose agreement does not cover what it would
// send, is refused; the refusal is audited and raises one alert; a
// renewed agreement lets it send again.
func TestCheckEgressRefusesWhatNoAgreementCovers(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.seed("Egress", "EGR1")
		q := e.seed("Elsewhere", "EGR2")
		v := pharmacy("Harbor Pharmacy", e.clock.Now().AddDate(0, 0, 40))
		if err := e.svc.AddVendor(e.as(p.admin), v); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CheckEgress(ctx, p.id, v.ID, haven.PHIMinimum); err != nil {
			t.Fatalf("a current pharmacy is refused the minimum necessary: %v", err)
		}
		for name, tc := range map[string]struct {
			practice, vendor string
			phi              haven.PHILevel
			reason           string
		}{
			"Unregistered":    {p.id, haven.NewID(), haven.PHINone, haven.EgressUnregistered},
			"NotAnID":         {p.id, "../etc", haven.PHINone, haven.EgressUnregistered},
			"AnotherPractice": {q.id, v.ID, haven.PHIMinimum, haven.EgressUnregistered},
			"MoreThanCovered": {p.id, v.ID, haven.PHIFull, haven.EgressNotCovered},
		} {
			t.Run(name, func(t *testing.T) {
				if _, err := e.svc.CheckEgress(ctx, tc.practice, tc.vendor, tc.phi); haven.ErrorCode(err) != haven.EFORBIDDEN {
					t.Fatalf("CheckEgress = %v, want %s", err, haven.EFORBIDDEN)
				}
				found := false
				for _, ev := range e.events(tc.practice) {
					if ev.Action == service.ActVendorEgress && ev.Reason == tc.reason && ev.Decision == haven.DecisionDeny {
						found = true
					}
				}
				if !found {
					t.Fatalf("no refusal with reason %s in the log", tc.reason)
				}
			})
		}

		// The agreement ends: refused, audited, one alert however often
		// the outbox retries.
		e.clock.Advance(41 * 24 * time.Hour)
		for range 3 {
			if _, err := e.svc.CheckEgress(ctx, p.id, v.ID, haven.PHIMinimum); haven.ErrorCode(err) != haven.EFORBIDDEN {
				t.Fatalf("an expired agreement: %v, want %s", err, haven.EFORBIDDEN)
			}
		}
		alerts, err := e.svc.Alerts(e.as(p.compliance), false)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range alerts {
			if a.Rule == service.RuleEgressRefused && strings.Contains(a.Detail, v.ID) && strings.Contains(a.Detail, haven.EgressExpired) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d alerts for the expired vendor, want 1: %+v", n, alerts)
		}
		// Renewed: it receives again.
		renewed := *v
		renewed.BAAExpires = e.clock.Now().AddDate(1, 0, 0).Truncate(24 * time.Hour)
		if err := e.svc.UpdateVendor(e.as(p.admin), &renewed); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CheckEgress(ctx, p.id, v.ID, haven.PHIMinimum); err != nil {
			t.Fatalf("a renewed agreement is still refused: %v", err)
		}
		if err := e.svc.RetireVendor(e.as(p.admin), v.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CheckEgress(ctx, p.id, v.ID, haven.PHINone); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("a retired vendor: %v, want %s", err, haven.EFORBIDDEN)
		}
	})
}

// TestBAARemindersGoOutOnce: 30 days before an agreement ends, the
// practice's admins get an alert and an email, once; a new end date is
// announced in its turn.
func TestBAARemindersGoOutOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("Reminded", "BAA1")
		v := pharmacy("Bay Pharmacy", e.clock.Now().AddDate(0, 0, 45))
		if err := e.svc.AddVendor(e.as(p.admin), v); err != nil {
			t.Fatal(err)
		}
		mail := &outbox.Memory{}
		ctx := context.Background()
		if n, err := e.svc.BAAReminders(ctx, mail, "https://haven.example"); err != nil || n != 0 {
			t.Fatalf("45 days ahead: %d reminders, %v", n, err)
		}
		e.clock.Advance(16 * 24 * time.Hour)
		for range 2 {
			if _, err := e.svc.BAAReminders(ctx, mail, "https://haven.example"); err != nil {
				t.Fatal(err)
			}
		}
		msgs := mail.Sent()
		if len(msgs) != 1 || msgs[0].To != "admin@reminded.example" || !strings.Contains(msgs[0].Text, "Bay Pharmacy") ||
			!strings.Contains(msgs[0].Text, "https://haven.example/app/admin/vendors") {
			t.Fatalf("reminders sent: %+v", msgs)
		}
		renewed := *v
		renewed.BAAExpires = v.BAAExpires.AddDate(0, 0, 20)
		if err := e.svc.UpdateVendor(e.as(p.admin), &renewed); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(20 * 24 * time.Hour)
		if n, err := e.svc.BAAReminders(ctx, mail, "https://haven.example"); err != nil || n != 1 {
			t.Fatalf("the new end date: %d reminders, %v", n, err)
		}
	})
}
