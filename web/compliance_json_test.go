package web_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/internal/testkit"
	"haven/service"
)

// getObject answers GET path as auth and decodes the body into a generic
// map, so the test sees the names and null-ness a client sees.
func getObject(t *testing.T, c *client, auth map[string]string, path string) map[string]any {
	t.Helper()
	r := c.apiAs(auth, "GET", path, "")
	expectStatus(t, r, http.StatusOK)
	var m map[string]any
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return m
}

// listField returns m[key] as a list, failing when it is absent or null:
// an empty list must be [].
func listField(t *testing.T, m map[string]any, key string) []map[string]any {
	t.Helper()
	raw, ok := m[key].([]any)
	if !ok {
		t.Fatalf("%q is %#v, want a list ([] when empty)", key, m[key])
	}
	out := make([]map[string]any, 0, len(raw))
	for _, v := range raw {
		o, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%q holds %#v, want objects", key, v)
		}
		out = append(out, o)
	}
	return out
}

// expectKeys checks that o has exactly the keys want.
func expectKeys(t *testing.T, what string, o map[string]any, want ...string) {
	t.Helper()
	var got []string
	for k := range o {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s has the fields %q, want %q", what, got, want)
	}
}

// expectUTCTime checks that o[key] is an RFC 3339 time in UTC.
func expectUTCTime(t *testing.T, what string, o map[string]any, key string) {
	t.Helper()
	s, _ := o[key].(string)
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") {
		t.Errorf("%s: %s = %#v, want an RFC 3339 time in UTC", what, key, o[key])
	}
}

var (
	auditEventFields = []string{"seq", "time", "log_id", "actor_id", "actor_role", "actor_name", "session_id", "action",
		"resource_kind", "resource_id", "patient_id", "purpose", "decision", "reason", "client_addr", "request_id"}
	openAlertFields = []string{"id", "practice_id", "rule", "actor_id", "patient_id", "detail", "audit_seq", "created_at"}
)

// TestAPIAnswersAreSnakeCaseAndEmptyListsAreArrays holds the audit search,
// the alert list, the clinician list and the signed-in user's factors to
// the API's conventions: snake_case names (not the Go field names of the
// log's or the store's types), times in RFC 3339 UTC, and [] for none.
func TestAPIAnswersAreSnakeCaseAndEmptyListsAreArrays(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			tn := ts[0]
			officer := tn.emails[haven.RoleComplianceOfficer]
			c := st.client(firefox)
			auth := c.signInAny(officer)

			// An open alert (the seeded break-glass), then none once closed.
			open := listField(t, getObject(t, c, auth, "/api/v1/alerts"), "alerts")
			if len(open) == 0 {
				t.Fatal("no open alert")
			}
			var alert map[string]any
			for _, a := range open {
				expectKeys(t, "an open alert", a, openAlertFields...)
				expectUTCTime(t, "an open alert", a, "created_at")
				if a["id"] == tn.alert {
					alert = a
				}
			}
			if alert == nil {
				t.Fatalf("alert %s is not among the open ones: %v", tn.alert, open)
			}
			if alert["practice_id"] != tn.id || alert["rule"] == "" {
				t.Errorf("alert: %v", alert)
			}
			for _, a := range open {
				expectStatus(t, c.apiAs(auth, "POST", "/api/v1/alerts/"+a["id"].(string)+"/close", ""), http.StatusNoContent)
			}
			if got := listField(t, getObject(t, c, auth, "/api/v1/alerts"), "alerts"); len(got) != 0 {
				t.Errorf("open alerts after closing them all: %v", got)
			}
			var closed map[string]any
			for _, a := range listField(t, getObject(t, c, auth, "/api/v1/alerts?all=1"), "alerts") {
				if a["id"] == tn.alert {
					closed = a
				}
			}
			if closed == nil {
				t.Fatalf("alert %s is not listed with all=1", tn.alert)
			}
			expectKeys(t, "a closed alert", closed, append(slices.Clone(openAlertFields), "closed_at", "closed_by")...)
			expectUTCTime(t, "a closed alert", closed, "closed_at")
			if closed["closed_by"] != st.users[officer] {
				t.Errorf("closed_by = %v, want the officer %s", closed["closed_by"], st.users[officer])
			}

			// The close is in the log, found by its actor and action.
			events := listField(t, getObject(t, c, auth, "/api/v1/audit/events?actor="+st.users[officer]+"&action=alert.review"), "events")
			var ev map[string]any
			for _, e := range events {
				expectKeys(t, "an audit event", e, auditEventFields...)
				expectUTCTime(t, "an audit event", e, "time")
				if e["resource_id"] == tn.alert {
					ev = e
				}
			}
			if ev == nil {
				t.Fatalf("the close of alert %s is not in the search: %v", tn.alert, events)
			}
			if _, ok := ev["seq"].(float64); !ok || ev["log_id"] != tn.id || ev["actor_id"] != st.users[officer] || ev["actor_name"] != "Worker" ||
				ev["resource_kind"] != "alert" || ev["decision"] != "allow" || ev["actor_role"] != string(haven.RoleComplianceOfficer) {
				t.Errorf("audit event: %v", ev)
			}
			if got := listField(t, getObject(t, c, auth, "/api/v1/audit/events?actor=no-such-user"), "events"); len(got) != 0 {
				t.Errorf("events of no one: %v", got)
			}

			// A patient with a password alone has no second factor: [].
			pat := st.client(firefox)
			who := getObject(t, pat, pat.signInAny(tn.pEmail[0]), "/api/v1/session")
			if f, ok := who["factors"].([]any); !ok || len(f) != 0 {
				t.Errorf("a patient without MFA has factors %#v, want []", who["factors"])
			}

			// A practice without clinicians lists none: [].
			ctx := t.Context()
			pr, err := st.svc.CreatePractice(ctx, "Empty Clinic")
			if err != nil {
				t.Fatal(err)
			}
			email := "desk@empty.example"
			u, err := st.svc.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: haven.RoleStaff, Email: email, Name: "Worker", Password: stackPassword})
			if err != nil {
				t.Fatal(err)
			}
			st.users[email] = u.ID
			desk := st.client(firefox)
			if got := listField(t, getObject(t, desk, desk.signInAny(email), "/api/v1/clinicians"), "clinicians"); len(got) != 0 {
				t.Errorf("clinicians of a practice with none: %v", got)
			}
		})
	}
}

// TestOpenAPIAuditEventAndAlertMatchTheAnswers keeps the document's
// schemas to the field names the test above sees on the wire.
func TestOpenAPIAuditEventAndAlertMatchTheAnswers(t *testing.T) {
	schemas, _ := openAPIDoc(t)["components"].(map[string]any)["schemas"].(map[string]any)
	for _, c := range []struct {
		schema         string
		required, more []string
	}{
		{"AuditEvent", auditEventFields, nil},
		{"Alert", openAlertFields, []string{"closed_at", "closed_by"}},
	} {
		s, _ := schemas[c.schema].(map[string]any)
		props, _ := s["properties"].(map[string]any)
		expectKeys(t, "schema "+c.schema, props, append(slices.Clone(c.required), c.more...)...)
		var req []string
		list, _ := s["required"].([]any)
		for _, v := range list {
			name, _ := v.(string)
			req = append(req, name)
		}
		slices.Sort(req)
		want := slices.Sorted(slices.Values(c.required))
		if !slices.Equal(req, want) {
			t.Errorf("schema %s requires %q, want %q", c.schema, req, want)
		}
	}
}
