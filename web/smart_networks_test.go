package web_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"haven"
	"haven/internal/testkit"
	"haven/smart"
)

// TestWorkforceNetworksHoldAppsNotBackendSystems: the practice's
// workforce networks hold an app acting for a clinician (its token acts
// as him: read from outside them, 403, audited outside_network naming the
// app) but not a backend system, which is held to the networks it was
// registered with instead (a lab calls from the lab's network, not the
// clinic's), on every database.
func TestWorkforceNetworksHoldAppsNotBackendSystems(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			own := ts[0]
			p := own.patient[0]
			ctx := context.Background()
			admin := haven.NewContextWithActor(ctx, haven.Actor{UserID: st.users[own.emails[haven.RolePracticeAdmin]], PracticeID: own.id,
				Role: haven.RolePracticeAdmin, MFA: true, AuthTime: st.clock.Now(), SessionID: "seed", RequestID: "seed", ClientAddr: "127.0.0.1"})
			anon := st.client(firefox)

			app := registerApp(t, st, own, "Chart Helper", "user/Patient.rs")
			doc := st.client(firefox)
			doc.signIn(own.emails[haven.RoleClinician], "")
			v, ch := pkce()
			his := redeem(t, anon, app, authorize(t, doc, app, "user/Patient.rs", ch), v)
			key := newBackendKey(t, "lab-1")
			lab, err := st.smart.AddClient(admin, smart.NewClient{Name: "Lakeside Lab", JWKS: key.jwks, Scopes: []string{"system/Patient.rs"},
				Networks: []string{"127.0.0.0/8"}})
			if err != nil {
				t.Fatal(err)
			}
			sys := tokenCall(t, anon, url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.rs"},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {key.assertion(t, "lab-1", lab.Client.ID, st.base+"/oauth2/token", haven.NewID())}})
			if his.AccessToken == "" || sys.AccessToken == "" {
				t.Fatalf("tokens: %+v %+v", his, sys)
			}
			fhirDoc(t, bearer(anon, his.AccessToken, "/fhir/R4/Patient/"+p), http.StatusOK)

			// The clinic's network only, which this test's loopback is not.
			if err := st.svc.OperatorSetWorkforceNetworks(ctx, own.id, []string{"10.0.0.0/8"}); err != nil {
				t.Fatal(err)
			}
			outcome(t, bearer(anon, his.AccessToken, "/fhir/R4/Patient/"+p), http.StatusForbidden, "forbidden")
			if doc := fhirDoc(t, bearer(anon, sys.AccessToken, "/fhir/R4/Patient/"+p), http.StatusOK); doc["id"] != p {
				t.Fatalf("the lab system's read: %v", doc)
			}

			st.svc.Wait()
			var n int
			if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1 AND session_id = $2 AND reason = 'outside_network' AND decision = 'deny'`,
				own.id, "smart:"+app.id).Scan(&n); err != nil || n == 0 {
				t.Errorf("no outside_network refusal naming the app in the audit log (%v)", err)
			}
		})
	}
}
