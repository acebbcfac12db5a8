package web

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
)

// This file decides which address a request comes from. Behind a load
// balancer every connection comes from the balancer, and the client's
// address is in X-Forwarded-For; but anyone can send that header, so it is
// believed only from the proxies a deployment names (Config.TrustedProxies).
// The address found here is the one the rate limits, the sign-in throttle,
// sessions, the audit log and the logs all use.

type clientAddrKey struct{}

// withClientAddr finds the request's client address once, before anything
// else uses it.
func (s *Server) withClientAddr(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := resolveClient(r, s.trusted)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, a)))
	})
}

// clientAddr is the request's client address: the one withClientAddr
// found, or the connection's peer for a request that did not pass it.
func clientAddr(r *http.Request) string {
	if a, ok := r.Context().Value(clientAddrKey{}).(string); ok {
		return a
	}
	return peerAddr(r)
}

// peerAddr is the address of the connection's other end, without a port.
func peerAddr(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// resolveClient is the client's address: the peer's, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is read from the right (the
// entry the trusted proxy added last) past every further trusted proxy to
// the first address that is not one. Entries left of that one were written
// by whoever the untrusted client was and are ignored. An entry that is not
// an address stops the walk at the trusted hop before it.
func resolveClient(r *http.Request, trusted []netip.Prefix) string {
	peer := peerAddr(r)
	if len(trusted) == 0 {
		return peer
	}
	cur, err := netip.ParseAddr(peer)
	if err != nil || !inAny(cur, trusted) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		cur = a.Unmap().WithZone("")
		if !inAny(cur, trusted) {
			break
		}
	}
	return cur.String()
}

// inAny reports whether a is in one of the prefixes.
func inAny(a netip.Addr, prefixes []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefixes reads a comma-separated list of CIDR prefixes (a bare
// address counts as its own /32 or /128). It names the first entry that
// is not one.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := parsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, &prefixError{s}
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, &prefixError{s}
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, &prefixError{s}
	}
	return p.Masked(), nil
}

type prefixError struct{ s string }

func (e *prefixError) Error() string {
	return "\"" + e.s + "\" is not a network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/32"
}
