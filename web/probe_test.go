package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
	"haven/service"
)

// Ids as an attacker sends them: malformed ones, another practice's real
// ones, another patient's real ones, each held against an id that exists
// nowhere. What the attacker can see (the answer, and for a compliance
// officer their own practice's audit log) must be the same.

// answer is what a client learns from a refusal: the status and the
// error's code and message (the request id differs by design).
type answer struct {
	Status        int
	Code, Message string
}

func answerOf(t *testing.T, r *http.Response) answer {
	t.Helper()
	var b struct {
		Error        struct{ Code, Message string }
		ResourceType string // the FHIR API's errors are OperationOutcomes
		Issue        []struct{ Code, Diagnostics string }
	}
	json.Unmarshal([]byte(readAll(t, r)), &b)
	if b.ResourceType == "OperationOutcome" && len(b.Issue) == 1 {
		return answer{r.StatusCode, b.Issue[0].Code, b.Issue[0].Diagnostics}
	}
	return answer{r.StatusCode, b.Error.Code, b.Error.Message}
}

// malformedIDs are ids no request may carry to a query, escaped for a
// path: a NUL, invalid UTF-8 (PostgreSQL refuses both in a text parameter,
// so they used to answer 503 there and 404 on SQLite), upper case, one
// character too long, non-ASCII letters, quotes.
var malformedIDs = []string{"%00", "%ff", "abc%00def", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", strings.Repeat("a", haven.MaxIDLength+1),
	"%C3%A9t%C3%A9", "a%27b%22"}

// accountRoutes are the id-taking routes about accounts: tn's front-desk
// member's, and patient j's.
func accountRoutes(st *authStack) []route {
	staff := func(tn *tenant, j int) string { return st.users[tn.emails[haven.RoleStaff]] }
	return []route{
		{"POST", "/api/v1/users/%s/disable", nil, staff},
		{"POST", "/api/v1/users/%s/enable", nil, staff},
		{"POST", "/api/v1/users/%s/mfa/reset", nil, staff},
		{"POST", "/api/v1/patients/%s/account-setup", nil, patientID},
	}
}

// TestMalformedIDsAreAnsweredAsUnknownOnEveryDatabase: every id-taking
// route, as every role, answers an id no request may carry exactly as it
// answers a well-formed id that exists nowhere: 404 with the same body,
// the refusal audited, nothing logged as a server error, on SQLite and
// PostgreSQL alike. So do the pages, an id inside a body, and the audit
// search's filters (400, saying which filter).
func TestMalformedIDsAreAnsweredAsUnknownOnEveryDatabase(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			routes := append(append([]route{}, sweepRoutes...), accountRoutes(st)...)
			people := []string{own.emails[haven.RoleClinician], own.emails[haven.RoleStaff], own.emails[haven.RolePracticeAdmin],
				own.emails[haven.RoleComplianceOfficer], own.pEmail[0]}
			clients, auths, secrets := map[string]*client{}, map[string]map[string]string{}, map[string]string{}
			for _, email := range people {
				c := st.client(firefox)
				var auth map[string]string
				if email == own.pEmail[0] {
					auth = c.signInAny(email)
				} else {
					auth, secrets[email] = c.apiSignIn(email)
				}
				clients[email], auths[email] = c, auth
				actorID := st.users[email]
				if actorID == "" {
					actorID = own.patient[0]
				}
				for _, rt := range routes {
					body := ""
					if rt.body != nil {
						body = rt.body(own)
					}
					call := func(id string) answer {
						return answerOf(t, c.apiAs(auth, rt.method, fmt.Sprintf(rt.path, id), body))
					}
					want := call(haven.NewID())
					if want.Status != http.StatusNotFound {
						t.Errorf("%s: %s %s with an unknown id answered %+v, want 404", email, rt.method, rt.path, want)
						continue
					}
					for _, bad := range malformedIDs {
						before := denials(t, st.db, actorID)
						if got := call(bad); got != want {
							t.Errorf("%s: %s %s with id %q answered %+v; an unknown id gets %+v", email, rt.method, rt.path, bad, got, want)
						}
						if denials(t, st.db, actorID) <= before {
							t.Errorf("%s: %s %s with id %q: refusal not audited", email, rt.method, rt.path, bad)
						}
					}
				}
			}

			// An id in a body or a second path segment is refused too.
			adm, admAuth := clients[own.emails[haven.RolePracticeAdmin]], auths[own.emails[haven.RolePracticeAdmin]]
			for _, bad := range malformedIDs {
				r := adm.apiAs(admAuth, "DELETE", "/api/v1/patients/"+own.patient[0]+"/care-team/"+bad, "")
				if r.StatusCode != http.StatusBadRequest {
					t.Errorf("care-team member %q: %d, want 400", bad, r.StatusCode)
				}
				raw, _ := url.PathUnescape(bad)
				b, _ := json.Marshal(map[string]string{"user_id": raw})
				if r := adm.apiAs(admAuth, "POST", "/api/v1/patients/"+own.patient[0]+"/care-team", string(b)); r.StatusCode != http.StatusBadRequest {
					t.Errorf("care-team member %q in the body: %d, want 400", bad, r.StatusCode)
				}
			}

			// The audit search's filters.
			co, coAuth := clients[own.emails[haven.RoleComplianceOfficer]], auths[own.emails[haven.RoleComplianceOfficer]]
			expectStatus(t, co.apiAs(coAuth, "GET", "/api/v1/audit/events?patient="+own.patient[0]+"&actor="+own.doctor+"&action=chart.read&decision=deny", ""), http.StatusOK)
			for _, bad := range malformedIDs {
				for _, filter := range []string{"patient", "actor", "action"} {
					a := answerOf(t, co.apiAs(coAuth, "GET", "/api/v1/audit/events?"+filter+"="+bad, ""))
					if a.Status != http.StatusBadRequest || !strings.Contains(a.Message, filter) {
						t.Errorf("audit filter %s=%s answered %+v, want 400 naming the filter", filter, bad, a)
					}
				}
			}

			// The pages answer a malformed id as they answer an unknown one.
			doc := st.client(firefox)
			doc.signIn(own.emails[haven.RoleClinician], secrets[own.emails[haven.RoleClinician]])
			pat := st.client(firefox)
			expectRedirect(t, pat.post("/login", url.Values{"email": {own.pEmail[0]}, "password": {stackPassword}}), "/app")
			admPage := st.client(firefox)
			admPage.signIn(own.emails[haven.RolePracticeAdmin], secrets[own.emails[haven.RolePracticeAdmin]])
			coPage := st.client(firefox)
			coPage.signIn(own.emails[haven.RoleComplianceOfficer], secrets[own.emails[haven.RoleComplianceOfficer]])
			anon := st.client(firefox)
			for _, pg := range []struct {
				c    *client
				path string
			}{
				// (The call page reads nothing about its visit and opens for
				// any well-formed id; it refuses a malformed one.)
				{doc, "/app/patients/%s"}, {pat, "/app/visits/%s/check-in"}, {anon, "/register/%s"},
				{doc, "/app/patients/%s/files"}, {doc, "/app/files/%s"}, {pat, "/app/files/%s"},
				{admPage, "/app/admin/users/%s"}, {admPage, "/app/care-teams?patient=%s"},
			} {
				want := pg.c.get(fmt.Sprintf(pg.path, haven.NewID())).StatusCode
				if want != http.StatusNotFound {
					t.Errorf("page %s with an unknown id: %d, want 404", pg.path, want)
				}
				for _, bad := range malformedIDs {
					if got := pg.c.get(fmt.Sprintf(pg.path, bad)).StatusCode; got != want {
						t.Errorf("page %s with id %q: %d; an unknown id gets %d", pg.path, bad, got, want)
					}
				}
			}
			for _, bad := range malformedIDs {
				if r := coPage.get("/app/compliance?patient=" + bad); r.StatusCode != http.StatusBadRequest {
					t.Errorf("the compliance page's patient filter %q: %d, want 400", bad, r.StatusCode)
				}
			}
			if logs := st.logs.String(); strings.Contains(logs, "level=ERROR") {
				t.Errorf("malformed ids were logged as server errors:\n%s", logs)
			}
		})
	}
}

// auditEvents returns the events of the signed-in compliance officer's
// practice log made by actorID in request requestID, as the audit search
// shows them.
func auditEvents(t *testing.T, c *client, auth map[string]string, actorID, requestID string) []map[string]any {
	t.Helper()
	r := c.apiAs(auth, "GET", "/api/v1/audit/events?actor="+actorID, "")
	expectStatus(t, r, http.StatusOK)
	var res struct{ Events []map[string]any }
	if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range res.Events {
		if e["request_id"] == requestID {
			out = append(out, e)
		}
	}
	return out
}

// TestOutsidersProbesOfRealIDsLookLikeProbesOfNothing: practice B's
// compliance officer (an outsider who, unlike others, reads their own
// practice's log) tries every id-taking route with practice A's real ids
// and with ids that exist nowhere. The answers are the same, and so are
// the events in B's log but for the id sent, the time and the request:
// reason not_found, no patient. A's log records each attempt on its
// records, A's compliance officer gets an outside_probe alert naming the
// prober, A's patient sees the attempt on her record without the
// outsider's name, and B's own alerts say nothing of it.
func TestOutsidersProbesOfRealIDsLookLikeProbesOfNothing(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			victim, home := ts[0], ts[1]
			c := st.client(firefox)
			email := home.emails[haven.RoleComplianceOfficer]
			auth := c.signInAny(email)
			prober := st.users[email]
			probe := func(rt route, id string) (answer, []map[string]any) {
				body := ""
				if rt.body != nil {
					body = rt.body(victim)
				}
				r := c.apiAs(auth, rt.method, fmt.Sprintf(rt.path, id), body)
				rid := r.Header.Get("X-Request-Id")
				a := answerOf(t, r)
				return a, auditEvents(t, c, auth, prober, rid)
			}
			routes := append(append([]route{}, sweepRoutes...), accountRoutes(st)...)
			for _, rt := range routes {
				for j := range 2 {
					realID, fake := rt.idOf(victim, j), haven.NewID()
					if realID == "" {
						continue // payments, without stripe-mock outside CI
					}
					ra, revs := probe(rt, realID)
					fa, fevs := probe(rt, fake)
					if ra != fa || ra.Status != http.StatusNotFound {
						t.Errorf("%s %s: a real id of another practice answered %+v, an id that exists nowhere %+v", rt.method, rt.path, ra, fa)
					}
					if len(revs) != 1 || len(fevs) != 1 {
						t.Errorf("%s %s: %d events for the real id, %d for the fake one; want one each", rt.method, rt.path, len(revs), len(fevs))
						continue
					}
					re, fe := revs[0], fevs[0]
					if re["resource_id"] != realID || fe["resource_id"] != fake {
						t.Errorf("%s %s: events name %v and %v, not the ids sent", rt.method, rt.path, re["resource_id"], fe["resource_id"])
					}
					for _, k := range []string{"seq", "time", "resource_id", "request_id"} {
						delete(re, k)
						delete(fe, k)
					}
					if fmt.Sprint(re) != fmt.Sprint(fe) {
						t.Errorf("%s %s: the prober's log tells a real id from a fake one:\nreal %v\nfake %v", rt.method, rt.path, re, fe)
					}
					if re["reason"] != "not_found" || re["patient_id"] != "" || re["decision"] != "deny" {
						t.Errorf("%s %s: the prober's log records %v", rt.method, rt.path, re)
					}
				}
			}

			// The practice whose ids were probed is told (in the
			// background, after each answer).
			st.svc.Wait()
			vco := st.client(firefox)
			vAuth := vco.signInAny(victim.emails[haven.RoleComplianceOfficer])
			if n := countAlerts(t, vco, vAuth, service.RuleProbe, prober); n != 1 {
				t.Errorf("the probed practice has %d outside_probe alerts naming the prober, want 1", n)
			}
			r := vco.apiAs(vAuth, "GET", "/api/v1/audit/events?actor="+prober, "")
			var res struct {
				Events []struct {
					Reason     string `json:"reason"`
					ResourceID string `json:"resource_id"`
					ActorName  string `json:"actor_name"`
				}
			}
			json.NewDecoder(r.Body).Decode(&res)
			probed := map[string]bool{}
			for _, e := range res.Events {
				if e.Reason == "other_practice" {
					probed[e.ResourceID] = true
				}
				if strings.Contains(e.ActorName, "Worker") {
					t.Errorf("the probed practice's log shows the outsider's name: %+v", e)
				}
			}
			for _, rt := range routes {
				if id := rt.idOf(victim, 0); id != "" && !probed[id] {
					t.Errorf("%s %s: the probe of %s is not in the probed practice's log", rt.method, rt.path, id)
				}
			}
			pt := st.client(firefox)
			pAuth := pt.signInAny(victim.pEmail[0])
			r = pt.apiAs(pAuth, "GET", "/api/v1/patients/"+victim.patient[0]+"/access-history", "")
			var h struct {
				Events []struct {
					ActorName string `json:"actor_name"`
					Decision  string `json:"decision"`
				}
			}
			json.NewDecoder(r.Body).Decode(&h)
			seen := false
			for _, e := range h.Events {
				seen = seen || (e.ActorName == "A user of another practice" && e.Decision == "deny")
				if e.ActorName == "Worker" && e.Decision == "deny" {
					t.Errorf("the patient's history names another practice's worker: %+v", e)
				}
			}
			if !seen {
				t.Error("the patient's access history does not show the outsider's attempts on her record")
			}
			if n := countAlerts(t, c, auth, service.RuleProbe, ""); n != 0 {
				t.Errorf("the prober's own practice got %d outside_probe alerts", n)
			}
		})
	}
}

// countAlerts counts the open alerts of rule (by actorID, unless "") the
// signed-in compliance officer sees.
func countAlerts(t *testing.T, c *client, auth map[string]string, rule, actorID string) int {
	t.Helper()
	r := c.apiAs(auth, "GET", "/api/v1/alerts", "")
	expectStatus(t, r, http.StatusOK)
	var res struct {
		Alerts []struct {
			Rule    string `json:"rule"`
			ActorID string `json:"actor_id"`
		}
	}
	json.NewDecoder(r.Body).Decode(&res)
	n := 0
	for _, a := range res.Alerts {
		if a.Rule == rule && (actorID == "" || a.ActorID == actorID) {
			n++
		}
	}
	return n
}

// TestPatientsProbesOfOtherPatientsIDsAnswerNotFound: a patient trying
// another patient's visits, break-glass grant, care team, files, chart and
// account, and a front-desk member's account, gets exactly what an id
// that exists nowhere gets: 404, the same body. (The role check used to
// answer 403 for a real id of a route patients may never use.) Every
// attempt, real or fake, is an audited denial.
func TestPatientsProbesOfOtherPatientsIDsAnswerNotFound(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			c := st.client(firefox)
			auth := c.signInAny(own.pEmail[0])
			me := own.patient[0]
			routes := append(append([]route{}, sweepRoutes...), accountRoutes(st)...)
			for _, rt := range routes {
				body := ""
				if rt.body != nil {
					body = rt.body(own)
				}
				realID := rt.idOf(own, 1) // patient B's (the grant is on B; the alert and staff account are the practice's)
				if realID == "" {
					continue // payments, without stripe-mock outside CI
				}
				before := denials(t, st.db, me)
				ra := answerOf(t, c.apiAs(auth, rt.method, fmt.Sprintf(rt.path, realID), body))
				mid := denials(t, st.db, me)
				fa := answerOf(t, c.apiAs(auth, rt.method, fmt.Sprintf(rt.path, haven.NewID()), body))
				if ra != fa || ra.Status != http.StatusNotFound {
					t.Errorf("%s %s: another patient's real id answered %+v, an id that exists nowhere %+v", rt.method, rt.path, ra, fa)
				}
				if mid <= before || denials(t, st.db, me) <= mid {
					t.Errorf("%s %s: a refusal was not audited", rt.method, rt.path)
				}
			}
		})
	}
}
