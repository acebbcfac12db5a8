package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"haven"
	"haven/policy"
	"haven/service"
)

// from is ctx's actor connected from addr.
func from(ctx context.Context, addr string) context.Context {
	a, _ := haven.ActorFromContext(ctx)
	a.ClientAddr = addr
	return haven.NewContextWithActor(context.Background(), a)
}

// TestWorkforceNetworksRefuseOutsiders, on both databases: with the
// practice's networks set, a clinician inside reads her patient's chart;
// from outside she is refused with a message saying why, audited as
// outside_network, on a second node of the database too; a patient from
// anywhere reads her own chart; a bad network or a list without the
// admin's own address is refused and changes nothing; emptying the list
// lets everyone in again.
func TestWorkforceNetworksRefuseOutsiders(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "wn1")
		node2 := e.secondNode()
		admin := from(e.as(p.admin), "203.0.113.20")
		ps, err := e.svc.Settings(admin)
		if err != nil {
			t.Fatal(err)
		}

		// Refused lists change nothing.
		for _, c := range []struct {
			nets []string
			want string
		}{
			{[]string{"203.0.113.0/24", "10.0.0.0/33"}, `"10.0.0.0/33" is not a network`},
			{[]string{"clinic.example"}, `"clinic.example" is not a network`},
			{[]string{"198.51.100.0/24"}, "lock you out"},
		} {
			bad := ps
			bad.WorkforceNetworks = c.nets
			err := e.svc.UpdateSettings(admin, bad)
			if haven.ErrorCode(err) != haven.EINVALID || !strings.Contains(haven.ErrorMessage(err), c.want) {
				t.Fatalf("%v: %v, want EINVALID saying %q", c.nets, err, c.want)
			}
			if got, _ := e.svc.Settings(admin); len(got.WorkforceNetworks) != 0 {
				t.Fatalf("a refused list was stored: %v", got.WorkforceNetworks)
			}
		}
		if err := e.svc.UpdateSettings(from(admin, "[2001:db8::7]:443"), withNetworks(ps, "2001:db8::/32", "203.0.113.0/24")); err != nil {
			t.Fatalf("an IPv6 admin inside the list: %v", err)
		}
		ps.WorkforceNetworks = []string{"203.0.113.0/24", "192.0.2.7"}
		if err := e.svc.UpdateSettings(admin, ps); err != nil {
			t.Fatal(err)
		}

		doc := e.as(p.clinician)
		if _, err := e.svc.Chart(from(doc, "203.0.113.99"), p.chartA.PatientID); err != nil {
			t.Fatalf("inside the clinic's network: %v", err)
		}
		if _, err := e.svc.Chart(from(doc, "192.0.2.7"), p.chartA.PatientID); err != nil {
			t.Fatalf("from the one address listed: %v", err)
		}
		for i, svc := range []*service.Service{e.svc, node2} {
			_, err := svc.Chart(from(doc, "198.51.100.7"), p.chartA.PatientID)
			if haven.ErrorCode(err) != haven.EFORBIDDEN || !strings.Contains(haven.ErrorMessage(err), "own networks") {
				t.Fatalf("node %d, from outside: %v", i+1, err)
			}
		}
		ev := e.lastEventOf(p.id, string(policy.ChartRead))
		if ev.Decision != haven.DecisionDeny || ev.Reason != string(policy.ReasonOutsideNetwork) || ev.ActorID != p.clinician.UserID ||
			ev.ClientAddr != "198.51.100.7" {
			t.Fatalf("the refusal's event: %+v", ev)
		}
		// Settings changes are refused from outside too: the list binds
		// its administrator as well.
		if err := e.svc.UpdateSettings(from(admin, "198.51.100.7"), withNetworks(ps)); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("clearing the list from outside: %v", err)
		}
		if _, err := e.svc.Chart(from(e.as(p.patientA), "198.51.100.7"), p.chartA.PatientID); err != nil {
			t.Fatalf("the patient from anywhere: %v", err)
		}
		if err := e.svc.UpdateSettings(admin, withNetworks(ps)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Chart(from(doc, "198.51.100.7"), p.chartA.PatientID); err != nil {
			t.Fatalf("with no list: %v", err)
		}
	})
}

func withNetworks(ps service.PracticeSettings, nets ...string) service.PracticeSettings {
	ps.WorkforceNetworks = slices.Clone(nets)
	return ps
}
