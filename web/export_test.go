package web

// Routes returns the patterns registered on s, in registration order, so
// tests outside the package can hold them against the OpenAPI document.
func (s *Server) Routes() []string {
	s.mux.mu.Lock()
	defer s.mux.mu.Unlock()
	return append([]string(nil), s.mux.patterns...)
}

// OpenAPIDocument is the embedded document as the server serves it.
func OpenAPIDocument() []byte { return append([]byte(nil), openAPIDoc...) }
