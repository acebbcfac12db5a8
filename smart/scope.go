package smart

import (
	"net/url"
	"slices"
	"strings"
)

// A SMART scope (App Launch 1 and 2) names a context, a resource type and
// what may be done with it: "patient/Observation.rs", "user/*.read",
// "system/*.rs". Version 1's read and write are read as version 2's
// letters (read = rs, write = cud, * = cruds), so both are decided alike.
type Scope struct {
	Context string // patient, user or system
	Type    string // a FHIR type, or *
	Ops     string // a subset of "cruds", in that order
	// Category narrows the scope (SMART 2's search-parameter scopes,
	// patient/Observation.rs?category=laboratory) to resources with one
	// of these categories; none is no narrowing.
	Category []string
}

// NarrowingParam is the one search parameter a scope may be narrowed by.
// A narrowed scope names one resource type and grants reads and searches
// only: Haven decides the narrowing on the resource it is about to answer
// with, and a parameter it cannot decide so, a wildcard type or a write
// would widen the scope, so such a scope is refused rather than granted.
const NarrowingParam = "category"

// ParseScope reads one resource scope; ok is false for anything else
// (openid, fhirUser, launch/patient, offline_access, a malformed scope).
func ParseScope(s string) (Scope, bool) {
	ctx, rest, ok := strings.Cut(s, "/")
	if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
		return Scope{}, false
	}
	typ, ops, ok := strings.Cut(rest, ".")
	if !ok || typ == "" || !validType(typ) {
		return Scope{}, false
	}
	var category []string
	if i := strings.IndexByte(ops, '?'); i >= 0 {
		q, err := url.ParseQuery(ops[i+1:])
		ops = ops[:i]
		if err != nil || typ == "*" || len(q) != 1 || len(q[NarrowingParam]) != 1 || strings.Trim(ops, "rs") != "" || ops == "" {
			return Scope{}, false
		}
		for _, c := range strings.Split(q.Get(NarrowingParam), ",") {
			if c == "" || strings.ContainsAny(c, " \t") {
				return Scope{}, false
			}
			category = append(category, c)
		}
	}
	switch ops {
	case "read":
		ops = "rs"
	case "write":
		ops = "cud"
	case "*":
		ops = "cruds"
	default:
		if !inOrder(ops) {
			return Scope{}, false
		}
	}
	if category != nil && strings.Trim(ops, "rs") != "" {
		return Scope{}, false // read and write are whole-type words
	}
	return Scope{Context: ctx, Type: typ, Ops: ops, Category: category}, true
}

func validType(t string) bool {
	if t == "*" {
		return true
	}
	for i, c := range t {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return t[0] >= 'A' && t[0] <= 'Z'
}

// inOrder reports whether ops is a non-empty subsequence of "cruds", as
// version 2 requires.
func inOrder(ops string) bool {
	if ops == "" {
		return false
	}
	i := 0
	for _, c := range ops {
		j := strings.IndexRune("cruds"[i:], c)
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return true
}

// covers reports whether s allows everything o asks for: a narrowed
// scope covers only a scope narrowed to some of its categories.
func (s Scope) covers(o Scope) bool {
	if s.Context != o.Context || (s.Type != "*" && s.Type != o.Type) {
		return false
	}
	if s.Category != nil && (o.Category == nil || !allIn(o.Category, s.Category)) {
		return false
	}
	for _, c := range o.Ops {
		if !strings.ContainsRune(s.Ops, c) {
			return false
		}
	}
	return true
}

func allIn(some, all []string) bool {
	for _, x := range some {
		if !slices.Contains(all, x) {
			return false
		}
	}
	return true
}

// Allows reports whether one of these scopes lets its holder do op
// ('r' read, 's' search, 'c' create, …) on every resource of type typ in
// context ctx (a narrowed scope does not: see Reach).
func Allows(scopes []string, ctx, typ string, op byte) bool {
	ok, only := Reach(scopes, ctx, typ, op)
	return ok && only == nil
}

// Narrowing is what narrowed scopes let a request reach: the resources
// with one of these categories. nil is every resource of the type.
type Narrowing []string

// Reach reports whether these scopes let their holder do op on resources
// of type typ in context ctx, and if only some of them, which (a scope
// without narrowing reaches every one, whatever narrowed scopes are
// granted beside it).
func Reach(scopes []string, ctx, typ string, op byte) (bool, Narrowing) {
	want := Scope{Context: ctx, Type: typ, Ops: string(op)}
	ok := false
	var only Narrowing
	for _, s := range scopes {
		p, parsed := ParseScope(s)
		if !parsed {
			continue
		}
		narrowed := p.Category
		p.Category = nil
		if !p.covers(want) {
			continue
		}
		if narrowed == nil {
			return true, nil
		}
		ok = true
		for _, c := range narrowed {
			if !slices.Contains(only, c) {
				only = append(only, c)
			}
		}
	}
	return ok, only
}

// Matches reports whether a FHIR resource (as JSON) is one n reaches: one
// of its categories' codings has one of n's codes (a code alone, or
// system|code).
func (n Narrowing) Matches(res map[string]any) bool {
	if n == nil {
		return true
	}
	var cats []any
	switch c := res["category"].(type) {
	case []any:
		cats = c
	case map[string]any:
		cats = []any{c}
	}
	for _, cat := range cats {
		cm, _ := cat.(map[string]any)
		codings, _ := cm["coding"].([]any)
		for _, cd := range codings {
			m, _ := cd.(map[string]any)
			code, _ := m["code"].(string)
			system, _ := m["system"].(string)
			if code != "" && (slices.Contains(n, code) || slices.Contains(n, system+"|"+code)) {
				return true
			}
		}
	}
	return false
}

// AllowsAny is Allows over every context: a token's own scopes name one
// context (patient, user or system) and it is the token's, not the
// request's, to choose.
func AllowsAny(scopes []string, typ string, op byte) bool {
	for _, ctx := range []string{"patient", "user", "system"} {
		if Allows(scopes, ctx, typ, op) {
			return true
		}
	}
	return false
}

// scopeStrategy is fosite's test of a requested scope against a client's
// registered ones: a resource scope is granted when a registered scope
// covers it (an app registered for patient/*.rs may ask for
// patient/Observation.rs), any other scope only when registered as it is.
func scopeStrategy(registered []string, asked string) bool {
	want, isResource := ParseScope(asked)
	for _, r := range registered {
		if r == asked {
			return true
		}
		if isResource {
			if have, ok := ParseScope(r); ok && have.covers(want) {
				return true
			}
		}
	}
	return false
}

// Words says in plain words what one scope asks for, for the consent
// screen; "" for a scope it does not know (those are refused anyway).
func Words(s string) string {
	switch s {
	case "openid", "fhirUser":
		return "Know who you are (your name and role)"
	case "launch/patient", "launch":
		return "Know which patient's record it was opened for"
	case "offline_access":
		return "Keep access after you close it, until you or the practice revoke it"
	case "online_access":
		return "Keep access while you stay signed in"
	}
	p, ok := ParseScope(s)
	if !ok {
		return ""
	}
	what := "all of the record"
	if p.Type != "*" {
		what = typeWords(p.Type)
	}
	if p.Category != nil {
		what += " (only those of category " + strings.Join(p.Category, " or ") + ")"
	}
	var verbs []string
	if strings.ContainsAny(p.Ops, "rs") {
		verbs = append(verbs, "read")
	}
	if strings.ContainsAny(p.Ops, "cud") {
		verbs = append(verbs, "add to or change")
	}
	whose := "the patient's"
	switch p.Context {
	case "user":
		whose = "every record you may see:"
	case "system":
		whose = "the practice's records:"
	}
	return strings.ToUpper(strings.Join(verbs, " and ")[:1]) + strings.Join(verbs, " and ")[1:] + " " + whose + " " + what
}

func typeWords(t string) string {
	switch t {
	case "Patient":
		return "demographics (name, birth date, contact)"
	case "Observation":
		return "lab results and measurements"
	case "DiagnosticReport":
		return "lab reports"
	case "MedicationRequest":
		return "prescriptions"
	case "AllergyIntolerance":
		return "allergies"
	case "Appointment":
		return "appointments"
	case "Encounter":
		return "visits"
	case "Communication":
		return "messages"
	case "DocumentReference", "Binary":
		return "notes and documents"
	case "ServiceRequest":
		return "lab orders"
	case "Practitioner":
		return "clinicians' names"
	}
	return t + " records"
}
