package web

import (
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"haven"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"b64": func(b []byte) string { return base64.StdEncoding.EncodeToString(b) },
	"b64list": func(bs [][]byte) string {
		out := make([]string, len(bs))
		for i, b := range bs {
			out[i] = base64.StdEncoding.EncodeToString(b)
		}
		return strings.Join(out, ",")
	},
}).ParseFS(templateFS, "templates/*.html"))

// render executes a page template. Pages are server-rendered and carry no
// inline script; the CSP forbids it.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates.ExecuteTemplate(w, name, data); err != nil {
		s.Logger.Error("render", "template", name, "request_id", RequestID(r.Context()), "err", err)
	}
}

// staticHandler serves embedded CSS and JavaScript modules. They hold no
// PHI, so they may be cached.
func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "home.html", map[string]any{"Version": haven.Version})
}
