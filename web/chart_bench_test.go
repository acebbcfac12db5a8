package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"haven"
	"haven/auth/totp"
)

// BenchmarkChartReadHTTPS measures the audited chart read through Haven's
// real HTTPS server (TLS 1.3, the session, the gate and its audit append,
// three fields opened, the JSON) on SQLite, against a bare TLS 1.3 server
// answering a tiny body over the same client in the same run: the ratio
// is what make bench's chart row measures, in one process, so a CPU
// profile shows where the time goes. Her clinician's read of it, the
// front desk registering a patient, and the FHIR API's Patient read and
// search are measured against the same baseline.
//
//	go test -run '^$' -bench ChartReadHTTPS -cpuprofile cpu.out ./web
func BenchmarkChartReadHTTPS(b *testing.B) {
	b.Run("chart", func(b *testing.B) {
		st, hc, token := benchPatientSession(b)
		benchGet(b, hc, st.base+"/api/v1/patients/"+st.users[patientEmail], token)
	})
	// The same read through the FHIR API: by id, and as a search.
	b.Run("fhir-read", func(b *testing.B) {
		st, hc, token := benchPatientSession(b)
		benchGet(b, hc, st.base+"/fhir/R4/Patient/"+st.users[patientEmail], token)
	})
	b.Run("fhir-search", func(b *testing.B) {
		st, hc, token := benchPatientSession(b)
		benchGet(b, hc, st.base+"/fhir/R4/Patient?_id="+st.users[patientEmail], token)
	})
	// Her clinician reading it: a workforce session, and a decision that
	// needs the patient's relations.
	b.Run("chart-clinician", func(b *testing.B) {
		st, hc, _ := benchPatientSession(b)
		doc, err := st.db.FindUserByID(context.Background(), st.users[doctor])
		if err != nil {
			b.Fatal(err)
		}
		// The practice's admin adds her to the care team; seedPractice makes
		// no admin account, so the seed acts in that role under the
		// clinician's id.
		admin := haven.NewContextWithActor(context.Background(), haven.Actor{UserID: doc.ID, PracticeID: doc.PracticeID,
			Role: haven.RolePracticeAdmin, MFA: true, AuthTime: time.Now(), SessionID: "seed", ClientAddr: "127.0.0.1", RequestID: "seed"})
		if err := st.svc.AddToCareTeam(admin, st.users[patientEmail], doc.ID); err != nil {
			b.Fatal(err)
		}
		token := benchWorkforceSession(b, st, hc, doctor)
		benchGet(b, hc, st.base+"/api/v1/patients/"+st.users[patientEmail], token)
	})
	// The front desk registering a patient: an account and a chart, five
	// fields sealed under her new data key, audited.
	b.Run("register", func(b *testing.B) {
		st, hc, _ := benchPatientSession(b)
		token := benchWorkforceSession(b, st, hc, desk)
		benchDo(b, hc, "POST", st.base+"/api/v1/patients", token, http.StatusCreated, func(i int64) string {
			return fmt.Sprintf(`{"mrn":"B-%d","demographics":{"name":"Ana Silva","date_of_birth":"1980-02-03"},`+
				`"contact":{"email":"ana-%d@patients.example","phone":"555-0101"}}`, i, i)
		})
	})
	b.Run("baseline", func(b *testing.B) {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok\n")
		}))
		srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // connections the benchmark leaves open are cut at Close
		srv.StartTLS()
		b.Cleanup(srv.Close)
		benchGet(b, benchClient(), srv.URL+"/healthz", "")
	})
}

func benchClient() *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 64}}
}

// benchGet asks url in parallel, as token's session when one is given.
func benchGet(b *testing.B, hc *http.Client, url, token string) {
	benchDo(b, hc, "GET", url, token, http.StatusOK, nil)
}

// benchDo sends method to url in parallel, as token's session when one is
// given, with the JSON body(i) for the ith request when body is not nil,
// and fails on any answer but want.
func benchDo(b *testing.B, hc *http.Client, method, url, token string, want int, body func(i int64) string) {
	var n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var in io.Reader
			if body != nil {
				in = strings.NewReader(body(n.Add(1)))
			}
			req, _ := http.NewRequest(method, url, in)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("%s %s: %s", method, url, resp.Status)
				return
			}
		}
	})
}

// benchPatientSession seeds a practice and signs its patient in through
// the API.
func benchPatientSession(b *testing.B) (*visitStack, *http.Client, string) {
	st := newVideoStack(b, true)
	st.seedPractice("Riverside Family Clinic", doctor, desk, patientEmail, "Maria Lopez")
	hc := benchClient()
	login, _ := json.Marshal(map[string]string{"email": patientEmail, "password": stackPassword})
	resp, err := hc.Post(st.base+"/api/v1/session", "application/json", bytes.NewReader(login))
	if err != nil {
		b.Fatal(err)
	}
	var session struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&session)
	resp.Body.Close()
	if session.Token == "" {
		b.Fatalf("no session: %s", resp.Status)
	}
	return st, hc, session.Token
}

// benchWorkforceSession signs a member of the practice in through the
// API, enrolling the authenticator a workforce account must have, and
// returns the session's token.
func benchWorkforceSession(b *testing.B, st *visitStack, hc *http.Client, email string) string {
	post := func(path string, body, out any) {
		in, _ := json.Marshal(body)
		resp, err := hc.Post(st.base+path, "application/json", bytes.NewReader(in))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(out)
	}
	var res struct{ Stage, Pending, Token string }
	post("/api/v1/session", map[string]string{"email": email, "password": stackPassword}, &res)
	if res.Stage != "enrol" {
		b.Fatalf("%s: stage %q", email, res.Stage)
	}
	var en struct{ Secret string }
	post("/api/v1/session/enrol", map[string]string{"pending": res.Pending}, &en)
	code, err := totp.Code(en.Secret, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	post("/api/v1/session/enrol/confirm", map[string]string{"pending": res.Pending, "code": code}, &res)
	if res.Token == "" {
		b.Fatalf("%s: no session after enrolment", email)
	}
	return res.Token
}
