package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

type requestIDKey struct{}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives every request a random id, returned in X-Request-Id,
// that ties the log line, the audit event and the user's error report
// together without carrying anything about the patient.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [12]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// ContentSecurityPolicy allows only Haven's own scripts and styles (no
// inline script, no eval), media and connections to the same origin, and no
// framing: an injected tag cannot run, exfiltrate or clickjack.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; " +
	"base-uri 'none'; object-src 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries. Cache-Control is
// no-store by default because any page or API answer may carry PHI; only
// fingerprinted static assets opt back into caching.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=(), interest-cohort=()")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// limitBody caps every request body; routes with a limit in the route
// table get their own, larger one and stream. A body of unknown length
// (sent chunked) on any other route is read here, up to the limit, and
// refused with 413 like a declared one when it is longer: a handler
// reading a form would otherwise get the part that fit, with the error
// dropped, and answer as if that were the whole request.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.bodyLimit(r)
		if r.ContentLength > n {
			writeError(w, r, http.StatusRequestEntityTooLarge, "", "request body too large")
			return
		}
		if r.ContentLength < 0 && n <= MaxBodyBytes {
			b, err := io.ReadAll(io.LimitReader(r.Body, n+1))
			if err != nil {
				writeError(w, r, http.StatusBadRequest, "", "the request body could not be read")
				return
			}
			if int64(len(b)) > n {
				// The rest is left unread: net/http closes an HTTP/1.1
				// connection with a large unread body, and resets an
				// HTTP/2 stream, without a GOAWAY for the others.
				writeError(w, r, http.StatusRequestEntityTooLarge, "", "request body too large")
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe logs one structured line per request and records metrics. It
// logs the route pattern and path but never the query string or body, and
// labels metrics by pattern, so neither logs nor metrics carry PHI.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		route := r.Pattern // set by ServeMux on this same request
		if route == "" {
			route = "unmatched"
		} else if _, p, ok := strings.Cut(route, " "); ok {
			route = p
		}
		d := time.Since(start)
		s.metrics.requests.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(sw.status)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(d.Seconds())
		s.Logger.Info("request", "request_id", RequestID(r.Context()), "method", r.Method, "route", route,
			"status", sw.status, "bytes", sw.bytes, "duration_ms", d.Milliseconds(), "client", clientAddr(r))
	})
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.Error("panic", "request_id", RequestID(r.Context()), "panic", v, "stack", string(debug.Stack()))
				writeError(w, r, http.StatusInternalServerError, "", "Internal error.")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
