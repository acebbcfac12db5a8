package web

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"haven"
)

// havenErrorCodes reads the error codes error.go declares (the constants
// whose names start with E), so a code added there without a status here
// fails TestEveryErrorCodeHasAStatus.
func havenErrorCodes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../error.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || name.Name[0] != 'E' {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				codes[name.Name] = v
			}
		}
	}
	if len(codes) < 9 {
		t.Fatalf("found only %d error codes in error.go: %v", len(codes), codes)
	}
	return codes
}

// TestEveryErrorCodeHasAStatus: each of Haven's error codes has its own
// HTTP status, an error status, and anything else is a 500.
func TestEveryErrorCodeHasAStatus(t *testing.T) {
	for name, code := range havenErrorCodes(t) {
		status, ok := statusByCode[code]
		if !ok {
			t.Errorf("haven.%s (%q) has no HTTP status", name, code)
			continue
		}
		if status < 400 || status > 599 {
			t.Errorf("haven.%s answers %d, not an error status", name, status)
		}
		if got := statusOf(haven.Errorf(code, "x")); got != status {
			t.Errorf("statusOf(haven.%s) = %d, want %d", name, got, status)
		}
	}
	if got := statusOf(errors.New("a fault")); got != http.StatusInternalServerError {
		t.Errorf("an error without a code answers %d", got)
	}
	if got := statusOf(haven.Errorf("no_such_code", "x")); got != http.StatusInternalServerError {
		t.Errorf("an unknown code answers %d", got)
	}
}

// TestEveryThrottledAnswerSaysWhenToComeBack: a 429 carries Retry-After,
// from the API and from pages, whether or not the throttle said how long
// (a busy password hasher and a full message thread do not).
func TestEveryThrottledAnswerSaysWhenToComeBack(t *testing.T) {
	s, err := NewServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	throttled := haven.Errorf(haven.ETOOMANY, "too many attempts")
	for name, answer := range map[string]func(http.ResponseWriter, *http.Request, error){
		"api": s.apiError, "page": s.pageError,
	} {
		w := httptest.NewRecorder()
		answer(w, httptest.NewRequest("POST", "/somewhere", nil), throttled)
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("%s: status %d", name, w.Code)
		}
		if n, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("%s: a 429 with Retry-After %q", name, w.Header().Get("Retry-After"))
		}
		w = httptest.NewRecorder()
		answer(w, httptest.NewRequest("POST", "/somewhere", nil), haven.Errorf(haven.EINVALID, "no"))
		if v := w.Header().Get("Retry-After"); v != "" {
			t.Errorf("%s: a 400 with Retry-After %q", name, v)
		}
	}
}
