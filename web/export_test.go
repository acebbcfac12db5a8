package web

import (
	"net/http"

	"haven"
)

// RoutePatterns returns the pattern of every route in the table, whether
// or not a given server has its part.
func RoutePatterns() []string {
	out := make([]string, 0, len(routes))
	for _, rt := range routes {
		out = append(out, rt.pattern)
	}
	return out
}

// HandleForTest registers h on s outside the table, for tests of the
// middleware that need a handler of their own.
func (s *Server) HandleForTest(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// OpenAPIDocument is the embedded document as the server serves it.
func OpenAPIDocument() []byte { return append([]byte(nil), openAPIDoc...) }

// RouteInfo is one row of the route table as tests outside the package
// see it.
type RouteInfo struct {
	Pattern string
	Kind    string // page, API, asset, WebSocket, operator
	Session bool   // a session is needed
	Roles   []haven.Role
}

// RouteTable returns the route table.
func RouteTable() []RouteInfo {
	out := make([]RouteInfo, 0, len(routes))
	for _, rt := range routes {
		out = append(out, RouteInfo{Pattern: rt.pattern, Kind: rt.kind.String(), Session: rt.who.session, Roles: rt.who.Roles()})
	}
	return out
}
