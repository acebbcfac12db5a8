package service

import (
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
