package policy_test

import (
	"net/netip"
	"testing"

	"haven"
	"haven/policy"
)

// TestWorkforceNetworks: with networks set, a workforce member is refused
// every action (PHI or not) from outside them, from an address that does
// not parse or from none, and decided as usual from inside (IPv4-mapped
// and with a port alike); a patient is never held to them; no networks
// holds no one.
func TestWorkforceNetworks(t *testing.T) {
	const me, pt = "clinician-1", "p1"
	nets := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	facts := func(n []netip.Prefix) policy.Facts {
		return policy.Facts{Now: now,
			Practice: policy.PracticeFacts{PracticeID: practiceA, WorkforceNetworks: n},
			Patient:  policy.PatientFacts{PracticeID: practiceA, PatientID: pt, CareTeam: []string{me}}}
	}
	chart := policy.Resource{Kind: policy.KindChart, ID: pt, PracticeID: practiceA, PatientID: pt}
	doc := func(addr string) haven.Actor {
		return haven.Actor{UserID: me, PracticeID: practiceA, Role: haven.RoleClinician, MFA: true, AuthTime: now, ClientAddr: addr}
	}
	for _, c := range []struct {
		addr string
		nets []netip.Prefix
		want policy.Reason
	}{
		{"203.0.113.9", nets, policy.ReasonCareTeam},
		{"::ffff:203.0.113.9", nets, policy.ReasonCareTeam},
		{"[2001:db8::5]:443", nets, policy.ReasonCareTeam},
		{"198.51.100.7", nets, policy.ReasonOutsideNetwork},
		{"[2001:db9::5]:443", nets, policy.ReasonOutsideNetwork},
		{"", nets, policy.ReasonOutsideNetwork},
		{"not-an-address", nets, policy.ReasonOutsideNetwork},
		{"198.51.100.7", nil, policy.ReasonCareTeam},
	} {
		if d := policy.Decide(doc(c.addr), policy.ChartRead, chart, facts(c.nets)); d.Reason != c.want || d.Allow != (c.want == policy.ReasonCareTeam) {
			t.Errorf("clinician from %q: %+v, want %s", c.addr, d, c.want)
		}
	}
	// Not only PHI: the practice's settings too.
	admin := haven.Actor{UserID: "admin-1", PracticeID: practiceA, Role: haven.RolePracticeAdmin, MFA: true, AuthTime: now, ClientAddr: "198.51.100.7"}
	settings := policy.Resource{Kind: policy.KindPractice, ID: practiceA, PracticeID: practiceA}
	if d := policy.Decide(admin, policy.PracticeSettings, settings, facts(nets)); d.Allow || d.Reason != policy.ReasonOutsideNetwork {
		t.Errorf("admin's settings from outside: %+v", d)
	}
	if err := policy.Decide(admin, policy.PracticeSettings, settings, facts(nets)).Err(); haven.ErrorCode(err) != haven.EFORBIDDEN {
		t.Errorf("the refusal's error: %v", err)
	}
	patient := haven.Actor{UserID: pt, PracticeID: practiceA, Role: haven.RolePatient, MFA: true, AuthTime: now, ClientAddr: "198.51.100.7"}
	if d := policy.Decide(patient, policy.ChartRead, chart, facts(nets)); !d.Allow {
		t.Errorf("a patient from outside the networks: %+v", d)
	}
}
