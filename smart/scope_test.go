package smart

import (
	"strings"
	"testing"
)

// TestScopes holds scope parsing and coverage to SMART 1 and 2: v1 read
// is v2 rs, a wildcard type covers one type, a narrower scope does not
// cover a wider one, patient scopes do not grant user or system access,
// and malformed scopes are refused rather than widened; a scope narrowed
// by category covers only that category (TestNarrowedScopes).
func TestScopes(t *testing.T) {
	for _, c := range []struct {
		granted []string
		ctx     string
		typ     string
		op      byte
		want    bool
	}{
		{[]string{"patient/*.read"}, "patient", "Observation", 'r', true},
		{[]string{"patient/*.read"}, "patient", "Observation", 's', true},
		{[]string{"patient/*.read"}, "patient", "Communication", 'c', false},
		{[]string{"patient/*.rs"}, "user", "Observation", 'r', false},
		{[]string{"patient/Patient.rs"}, "patient", "Observation", 'r', false},
		{[]string{"patient/Patient.r"}, "patient", "Patient", 's', false},
		{[]string{"user/Observation.rs"}, "user", "Observation", 's', true},
		{[]string{"user/Observation.rs"}, "user", "*", 'r', false},
		{[]string{"patient/*.write"}, "patient", "Communication", 'c', true},
		{[]string{"system/*.rs"}, "system", "Patient", 'r', true},
		{[]string{"patient/Observation.rs?category=laboratory"}, "patient", "Observation", 'r', false},
		{[]string{"patient/*.sr"}, "patient", "Observation", 'r', false}, // out of order: malformed
		{[]string{"openid", "fhirUser", "launch/patient"}, "patient", "Patient", 'r', false},
	} {
		if got := Allows(c.granted, c.ctx, c.typ, c.op); got != c.want {
			t.Errorf("%v allows %c on %s/%s: %v, want %v", c.granted, c.op, c.ctx, c.typ, got, c.want)
		}
	}
	for _, c := range []struct {
		registered []string
		asked      string
		want       bool
	}{
		{[]string{"patient/*.rs"}, "patient/Observation.rs", true},
		{[]string{"patient/*.rs"}, "patient/Observation.read", true},
		{[]string{"patient/Observation.rs"}, "patient/*.rs", false},
		{[]string{"patient/*.rs"}, "patient/*.cruds", false},
		{[]string{"patient/*.rs"}, "patient/Observation.rs?category=laboratory", true},
		{[]string{"patient/Observation.rs?category=laboratory"}, "patient/Observation.rs", false},
		{[]string{"patient/Observation.rs?category=laboratory"}, "patient/Observation.rs?category=vital-signs", false},
		{[]string{"patient/Observation.rs?category=laboratory,vital-signs"}, "patient/Observation.rs?category=laboratory", true},
		{[]string{"patient/Observation.rs?category=laboratory"}, "patient/Observation.rs?category=laboratory", true},
		{[]string{"patient/*.rs"}, "user/*.rs", false},
		{[]string{"launch/patient"}, "launch/patient", true},
		{[]string{"patient/*.rs"}, "offline_access", false},
	} {
		if got := scopeStrategy(c.registered, c.asked); got != c.want {
			t.Errorf("registered %v, asked %q: %v, want %v", c.registered, c.asked, got, c.want)
		}
	}
}

// TestNarrowedScopes: SMART 2's search-parameter scopes, narrowed by
// category, reach only resources of that category, for reads and
// searches only; a scope without narrowing beside them reaches every one;
// what Haven cannot decide on the resource (another parameter, a wildcard
// type, a write, an empty or repeated category) is refused, not widened.
func TestNarrowedScopes(t *testing.T) {
	for _, bad := range []string{"patient/*.rs?category=laboratory", "patient/Observation.crs?category=laboratory",
		"patient/Observation.rs?code=1234-5", "patient/Observation.rs?category=", "patient/Observation.rs?category=a&category=b",
		"patient/Observation.rs?category=a&code=b", "patient/Observation.read?category=a", "patient/Observation.rs?category=a,,b"} {
		if _, ok := ParseScope(bad); ok {
			t.Errorf("%q parsed", bad)
		}
		if Words(bad) != "" {
			t.Errorf("%q has words", bad)
		}
	}
	lab := []string{"launch/patient", "patient/Observation.rs?category=laboratory"}
	if ok, only := Reach(lab, "patient", "Observation", 'r'); !ok || len(only) != 1 || only[0] != "laboratory" {
		t.Errorf("narrowed read: %v %v", ok, only)
	}
	if ok, only := Reach(lab, "patient", "Observation", 's'); !ok || only == nil {
		t.Errorf("narrowed search: %v %v", ok, only)
	}
	for _, c := range []struct {
		ctx, typ string
		op       byte
	}{{"patient", "Observation", 'c'}, {"patient", "DiagnosticReport", 'r'}, {"patient", "*", 'r'}, {"user", "Observation", 'r'}} {
		if ok, _ := Reach(lab, c.ctx, c.typ, c.op); ok {
			t.Errorf("the narrowed scope reaches %c on %s/%s", c.op, c.ctx, c.typ)
		}
	}
	if Allows(lab, "patient", "Observation", 'r') {
		t.Error("a narrowed scope allows every Observation")
	}
	if ok, only := Reach(append(lab, "patient/Observation.rs"), "patient", "Observation", 'r'); !ok || only != nil {
		t.Errorf("a whole scope beside a narrowed one: %v %v", ok, only)
	}
	both := []string{"patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"}
	_, only := Reach(both, "patient", "Observation", 's')
	obs := func(system, code string) map[string]any {
		return map[string]any{"resourceType": "Observation", "category": []any{map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}}}
	}
	const cs = "http://terminology.hl7.org/CodeSystem/observation-category"
	for _, c := range []struct {
		res  map[string]any
		want bool
	}{
		{obs(cs, "laboratory"), true},
		{obs(cs, "vital-signs"), true},
		{obs("http://example.org/other", "vital-signs"), false},
		{obs(cs, "social-history"), false},
		{map[string]any{"resourceType": "Observation"}, false},
	} {
		if got := only.Matches(c.res); got != c.want {
			t.Errorf("%v matches %v: %v, want %v", only, c.res, got, c.want)
		}
	}
	if !Narrowing(nil).Matches(map[string]any{}) {
		t.Error("no narrowing matches nothing")
	}
	if w := Words("patient/Observation.rs?category=laboratory"); !strings.Contains(w, "laboratory") {
		t.Errorf("the consent words %q do not name the category", w)
	}
}
