package web

import (
	"bytes"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"haven"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"role":      func(r any) string { return roleWords[fmt.Sprint(r)] },
	"state":     func(s string) string { return visitStateWords[s] },
	"paid":      func(s string) string { return paymentStateWords[s] },
	"size":      fileSize,
	"kind":      func(ctype string) string { return fileKindWords[ctype] },
	"inc":       func(i int) int { return i + 1 },
	"days":      func(d time.Duration) int { return int(d / (24 * time.Hour)) },
	"took":      durationWords,
	"kindLabel": func(k haven.VendorKind) string { return k.Label() },
	"phiLabel":  func(l haven.PHILevel) string { return l.Label() },
	"did":       actionLabel,
	"rule": func(code string) string {
		if w, ok := ruleWords[code]; ok {
			return w
		}
		return code
	},
	"outcome": func(code string) string { return outcomeWords[code] },
	"why": func(code string) string {
		if w, ok := purposeWords[code]; ok && w != "" {
			return strings.Replace(w, "your", "the patient's", 1)
		}
		return ""
	},
	"refusal": func(code string) string { return refusalWords[code] },
	"b64":     func(b []byte) string { return base64.StdEncoding.EncodeToString(b) },
	"b64list": func(bs [][]byte) string {
		out := make([]string, len(bs))
		for i, b := range bs {
			out[i] = base64.StdEncoding.EncodeToString(b)
		}
		return strings.Join(out, ",")
	},
}).ParseFS(templateFS, "templates/*.html"))

// fileSize is a byte count as people read it.
func fileSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", (n+1023)>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// page is what every page template gets; the layout (templates/layout.html)
// reads its common fields, the page's own template its Data.
type page struct {
	Title    string
	Actor    *haven.Actor // signed in, or nil
	WarnIn   int          // seconds until the idle warning
	EndIn    int          // seconds until the session ends
	Practice string       // the practice's name, where the page knows it
	Flash    string       // a fixed text saying what was done
	Error    string       // a client-safe message saying what went wrong
	Next     string       // where a form returns to
	Nav      []navLink    // the role's navigation (nav.go)
	// CriticalResult is the id of a critical lab result waiting for the
	// signed-in clinician's review, for the alert every page shows them
	// until they review it: it says only that one is waiting.
	CriticalResult string
	Zone           *time.Location
	Data           any
}

// Times on pages are shown in the reader's own time zone (zoneOf), always
// with the zone's name, so "15:00" never has to be guessed at.

// When is t as a day and a time: "Wed 25 Nov 2026, 15:00 CET".
func (p *page) When(t time.Time) string { return t.In(p.zone()).Format("Mon 2 Jan 2006, 15:04 MST") }

// Clock is t's time of day with the zone: "15:00 CET".
func (p *page) Clock(t time.Time) string { return t.In(p.zone()).Format("15:04 MST") }

// Day is t's day: "Wednesday 25 November 2026".
func (p *page) Day(t time.Time) string { return t.In(p.zone()).Format("Monday 2 January 2006") }

// ZoneName is the reader's zone as the pages name it.
func (p *page) ZoneName() string {
	if z := p.zone(); z != time.UTC {
		return z.String()
	}
	return "UTC"
}

func (p *page) zone() *time.Location {
	if p.Zone == nil {
		return time.UTC
	}
	return p.Zone
}

// newPage fills the common parts of a page for r.
func (s *Server) newPage(r *http.Request, title string) *page {
	p := &page{Title: title, Zone: zoneOf(r)}
	if a, ok := haven.ActorFromContext(r.Context()); ok {
		p.Actor = &a
	}
	p.Nav = navFor(p.Actor, r.URL.Path)
	if p.Actor != nil && p.Actor.Role == haven.RoleClinician && s.svc != nil {
		p.CriticalResult = s.svc.CriticalResultWaiting(r.Context())
	}
	if cur := sessionFromContext(r.Context()); cur != nil {
		p.WarnIn, p.EndIn = sessionTimers(cur)
	}
	return p
}

// render answers with the page template name, executed with p, and status.
// Nothing is written until the template has executed, so a template fault
// is a clean 500, never half a page. Pages carry no inline script; the CSP
// forbids it.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, p); err != nil {
		s.Logger.Error("render", "template", name, "request_id", RequestID(r.Context()), "err", err)
		writeError(w, r, http.StatusInternalServerError, haven.EINTERNAL, "Internal error.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// staticHandler serves embedded CSS and JavaScript modules. They hold no
// PHI, so they may be cached. It serves files only: a directory, /static/
// itself included, is not found rather than listed.
func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServer(http.FS(filesOnly{sub})))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// filesOnly is a file system in which directories do not exist, so a
// file server over it lists nothing.
type filesOnly struct{ fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := file.Stat(); err != nil || st.IsDir() {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}

func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) { s.assets.ServeHTTP(w, r) }

func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Welcome")
	p.Data = haven.Version
	s.render(w, r, http.StatusOK, "home.html", p)
}

// durationWords says a duration as people do: "4 seconds", "2 hours 5
// minutes", "3 days 1 hour", to the two largest units.
func durationWords(d time.Duration) string {
	if d < time.Second {
		return "under a second"
	}
	units := []struct {
		name string
		size time.Duration
	}{{"day", 24 * time.Hour}, {"hour", time.Hour}, {"minute", time.Minute}, {"second", time.Second}}
	var parts []string
	for _, u := range units {
		if n := d / u.size; n > 0 {
			word := u.name
			if n != 1 {
				word += "s"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, word))
			d -= n * u.size
		}
		if len(parts) == 2 || (len(parts) == 1 && d == 0) {
			break
		}
	}
	return strings.Join(parts, " ")
}
