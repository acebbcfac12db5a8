package web_test

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"haven/web"
)

// openAPIMethods are the keys of an OpenAPI path item that are operations.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openAPIDoc parses the embedded document.
func openAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(web.OpenAPIDocument(), &doc); err != nil {
		t.Fatalf("the OpenAPI document does not parse: %v", err)
	}
	return doc
}

// documentedOperations returns "METHOD /path" for every operation in doc,
// each with its operation and its path item (for shared parameters).
func documentedOperations(t *testing.T, doc map[string]any) map[string][2]map[string]any {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("the OpenAPI document has no paths")
	}
	ops := map[string][2]map[string]any{}
	for path, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("path %s is not a path item", path)
		}
		for key, op := range item {
			switch {
			case slices.Contains(openAPIMethods, key):
				o, ok := op.(map[string]any)
				if !ok {
					t.Fatalf("%s %s is not an operation", key, path)
				}
				ops[strings.ToUpper(key)+" "+path] = [2]map[string]any{o, item}
			case key == "parameters" || key == "summary" || key == "description" || key == "servers":
			default:
				t.Errorf("path %s has %q, which is neither an operation nor a path item field", path, key)
			}
		}
	}
	return ops
}

// wildcard matches a ServeMux wildcard: {name} or {name...}.
var wildcard = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)

// registeredAPIRoutes returns "METHOD /path" for every route under
// /api/v1 among patterns, written as OpenAPI writes paths, with the
// pattern it is registered as; and the routes no document could describe.
func registeredAPIRoutes(patterns []string) (routes map[string]string, problems []string) {
	routes = map[string]string{}
	for _, pattern := range patterns {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "", pattern
		}
		path = strings.TrimLeft(path, " \t")
		if !strings.HasPrefix(path, "/") {
			if strings.Contains(path, "/api/v1") {
				problems = append(problems, "route "+pattern+" names a host")
			}
			continue
		}
		if path != "/api/v1" && !strings.HasPrefix(path, "/api/v1/") {
			continue
		}
		if method == "" {
			problems = append(problems, "route "+pattern+" answers every method; an API route names its method")
			continue
		}
		path = strings.ReplaceAll(path, "{$}", "")
		path = wildcard.ReplaceAllString(path, "{$1}")
		routes[method+" "+path] = pattern
	}
	return routes, problems
}

// apiRouteDiff compares the /api/v1 routes among patterns with the
// document's operations: what is routed but not described, and what is
// described but not routed (each sorted), after any route that cannot be
// described at all.
func apiRouteDiff(t *testing.T, patterns []string, doc map[string]any) (undocumented, unregistered []string) {
	t.Helper()
	documented := documentedOperations(t, doc)
	registered, problems := registeredAPIRoutes(patterns)
	if len(registered) == 0 {
		t.Fatal("the route table has no /api/v1 routes")
	}
	for route, pattern := range registered {
		if _, ok := documented[route]; !ok {
			undocumented = append(undocumented, route+"  (registered as "+pattern+")")
		}
	}
	for route := range documented {
		if _, ok := registered[route]; !ok {
			unregistered = append(unregistered, route)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unregistered)
	return append(problems, undocumented...), unregistered
}

// TestOpenAPIDescribesEveryRoute holds the document against the route
// table (web/routes.go), both ways: a route added without its description
// fails, and so does a description of a route that is gone.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	patterns := web.RoutePatterns()
	doc := openAPIDoc(t)
	if v, _ := doc["openapi"].(string); !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	undocumented, unregistered := apiRouteDiff(t, patterns, doc)
	for _, r := range undocumented {
		t.Errorf("route is not in web/openapi.yaml: %s", r)
	}
	for _, r := range unregistered {
		t.Errorf("web/openapi.yaml describes a route the server does not have: %s", r)
	}

	// The comparison itself must see a new route: another method on a
	// documented path, a new path with a {name...} wildcard, and a route
	// registered without a method are all caught.
	patterns = append(patterns, "PATCH /api/v1/visits/{id}/state", "GET /api/v1/exports/{rest...}", "/api/v1/anything")
	undocumented, _ = apiRouteDiff(t, patterns, doc)
	for _, want := range []string{"PATCH /api/v1/visits/{id}/state", "GET /api/v1/exports/{rest}", "route /api/v1/anything answers every method"} {
		if !slices.ContainsFunc(undocumented, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("an undocumented %q went unnoticed (found %q)", want, undocumented)
		}
	}
}

// TestOpenAPIDocumentIsConsistent checks what a reader of the document
// relies on beyond the route list: every operation has a unique id and
// responses, declares exactly the path parameters its path has, and every
// $ref points at something in the document.
func TestOpenAPIDocumentIsConsistent(t *testing.T) {
	doc := openAPIDoc(t)
	resolve := func(ref string) (any, bool) {
		rest, ok := strings.CutPrefix(ref, "#/")
		if !ok {
			return nil, false
		}
		var node any = doc
		for _, part := range strings.Split(rest, "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			m, ok := node.(map[string]any)
			if !ok {
				return nil, false
			}
			if node, ok = m[part]; !ok {
				return nil, false
			}
		}
		return node, true
	}
	var walk func(at string, node any)
	walk = func(at string, node any) {
		switch n := node.(type) {
		case map[string]any:
			if ref, ok := n["$ref"].(string); ok {
				if _, ok := resolve(ref); !ok {
					t.Errorf("%s: $ref %q points at nothing", at, ref)
				}
			}
			for k, v := range n {
				walk(at+"/"+k, v)
			}
		case []any:
			for _, v := range n {
				walk(at, v)
			}
		}
	}
	walk("#", doc)

	// pathParams returns the names of the path parameters in params,
	// following $refs.
	pathParams := func(params any) []string {
		var names []string
		list, _ := params.([]any)
		for _, p := range list {
			m, _ := p.(map[string]any)
			if ref, ok := m["$ref"].(string); ok {
				r, _ := resolve(ref)
				m, _ = r.(map[string]any)
			}
			if m["in"] == "path" {
				if m["required"] != true {
					t.Errorf("path parameter %v is not marked required", m["name"])
				}
				name, _ := m["name"].(string)
				names = append(names, name)
			}
		}
		return names
	}
	ids := map[string]string{}
	for route, pair := range documentedOperations(t, doc) {
		op, item := pair[0], pair[1]
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", route)
		} else if other, ok := ids[id]; ok {
			t.Errorf("%s and %s share the operationId %q", route, other, id)
		}
		ids[id] = route
		if rs, _ := op["responses"].(map[string]any); len(rs) == 0 {
			t.Errorf("%s documents no responses", route)
		}
		var want []string
		for _, m := range wildcard.FindAllStringSubmatch(route, -1) {
			want = append(want, m[1])
		}
		got := append(pathParams(item["parameters"]), pathParams(op["parameters"])...)
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s declares path parameters %v, want %v", route, got, want)
		}
		if v, ok := op["x-step-up"]; ok && v != "always" && v != "conditional" {
			t.Errorf("%s: x-step-up is %v, want always or conditional", route, v)
		}
	}
}

// TestOpenAPIDocumentIsServed: anyone may read the document, without a
// session, with the headers every answer carries, and revalidate it.
func TestOpenAPIDocumentIsServed(t *testing.T) {
	base, client, _ := startServer(t, newServer(t, nil))
	res, err := client.Get(base + web.OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	expectStatus(t, res, http.StatusOK)
	if !bytes.Equal(body, web.OpenAPIDocument()) {
		t.Error("the served document is not the embedded one")
	}
	for h, want := range map[string]string{
		"Content-Type":           "application/yaml",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-cache",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if res.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, base+web.OpenAPIPath, nil)
	req.Header.Set("If-None-Match", etag)
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	expectStatus(t, res, http.StatusNotModified)
}
