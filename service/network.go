package service

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"

	"haven"
	"haven/policy"
)

// A practice's workforce networks (PracticeSettings.WorkforceNetworks):
// CIDR prefixes its workforce may act from, enforced by policy on every
// decision and audited with the refusal like any other.

// maxWorkforceNetworks bounds the list: it is read on every decision.
const maxWorkforceNetworks = 64

// parseNetworks reads the settings' networks, refusing the first entry that
// is not a network in CIDR form (a bare address is its own /32 or /128).
func parseNetworks(list []string) ([]netip.Prefix, error) {
	if len(list) > maxWorkforceNetworks {
		return nil, haven.Errorf(haven.EINVALID, "the workforce networks may list at most %d networks", maxWorkforceNetworks)
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
			if err == nil && p.Addr().Is4In6() {
				err = errBadPrefix
			}
			p = p.Masked()
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				a = a.Unmap().WithZone("")
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || len(s) > 64 {
			return nil, haven.Errorf(haven.EINVALID, "%q is not a network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48", clip(s, 64))
		}
		out = append(out, p)
	}
	return out, nil
}

var errBadPrefix = haven.Errorf(haven.EINVALID, "an IPv4-mapped network")

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// workforceNetworks is the settings' networks for policy. They were
// validated when stored; a list that no longer parses (storage edited by
// hand) errs on the side of refusing: it admits no one.
func (p PracticeSettings) workforceNetworks() []netip.Prefix {
	if len(p.WorkforceNetworks) == 0 {
		return nil
	}
	nets, err := parseNetworks(p.WorkforceNetworks)
	if err != nil || len(nets) == 0 {
		return []netip.Prefix{netip.PrefixFrom(netip.IPv6Unspecified(), 128)}
	}
	return nets
}

// checkOwnNetwork refuses a list of networks that leaves out the address
// the administrator saving it is using now: saving it would lock them out
// at once.
func checkOwnNetwork(a haven.Actor, nets []netip.Prefix) error {
	if len(nets) == 0 {
		return nil
	}
	addr, ok := policy.ActorAddr(a.ClientAddr)
	if ok {
		for _, p := range nets {
			if p.Contains(addr) {
				return nil
			}
		}
	}
	where := "an address Haven cannot read"
	if ok {
		where = addr.String()
	}
	return haven.Errorf(haven.EINVALID, "these networks leave out the one you are connected from (%s): saving them would lock you out. Add your own network to the list, or connect from one of them first", where)
}

// ActNetworksByOperator is the audit action of the operator setting a
// practice's workforce networks from the server's command line.
const ActNetworksByOperator = "settings.networks_by_operator"

// OperatorSetWorkforceNetworks replaces a practice's workforce networks
// (none: everyone may act from anywhere again) at the operator's command:
// the way back in for an administrator whose list locked the practice
// out, which the settings page cannot be (it checks the list from inside
// it). The operator is at the server, so no address of theirs is checked;
// the change is audited in the practice's log before it is stored, and
// every node decides on it from its next request (settings are never
// cached).
func (s *Service) OperatorSetWorkforceNetworks(ctx context.Context, practiceID string, nets []string) error {
	if _, err := parseNetworks(nets); err != nil {
		return err
	}
	ps, err := s.settings(ctx, practiceID)
	if err != nil {
		return err
	}
	ps.WorkforceNetworks = nets
	if len(nets) == 0 {
		ps.WorkforceNetworks = nil
	}
	if _, err := s.record(ctx, OperatorEvent(practiceID, ActNetworksByOperator, string(policy.KindPractice), practiceID, "")); err != nil {
		return err
	}
	b, _ := json.Marshal(ps)
	return s.db.PutPracticeSettings(ctx, practiceID, string(b))
}

// OperatorWorkforceNetworks is a practice's workforce networks, for the
// operator's command line (not PHI: no audit).
func (s *Service) OperatorWorkforceNetworks(ctx context.Context, practiceID string) ([]string, error) {
	ps, err := s.settings(ctx, practiceID)
	return ps.WorkforceNetworks, err
}
