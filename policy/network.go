package policy

import (
	"net/netip"

	"haven"
)

// A practice may let its workforce in only from its own networks (the
// clinic's addresses, its VPN): a stolen workforce session or password is
// then of no use from anywhere else. Patients are never held to them.

// outsideNetworks reports whether workforce actor a acts from outside
// the practice's networks; with no networks set, no one is.
func outsideNetworks(a haven.Actor, f Facts) bool {
	if len(f.Practice.WorkforceNetworks) == 0 {
		return false
	}
	addr, ok := ActorAddr(a.ClientAddr)
	if !ok {
		return true // an actor with no address known is not inside
	}
	for _, p := range f.Practice.WorkforceNetworks {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// ActorAddr reads an actor's client address ("203.0.113.7", or with a
// port, "[2001:db8::1]:443"), unmapped.
func ActorAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}
