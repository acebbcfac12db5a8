package smart

import "testing"

// TestScopes holds scope parsing and coverage to SMART 1 and 2: v1 read
// is v2 rs, a wildcard type covers one type, a narrower scope does not
// cover a wider one, patient scopes do not grant user or system access,
// and malformed or search-narrowed scopes are refused rather than widened.
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
		{[]string{"patient/*.rs"}, "user/*.rs", false},
		{[]string{"launch/patient"}, "launch/patient", true},
		{[]string{"patient/*.rs"}, "offline_access", false},
	} {
		if got := scopeStrategy(c.registered, c.asked); got != c.want {
			t.Errorf("registered %v, asked %q: %v, want %v", c.registered, c.asked, got, c.want)
		}
	}
}
