package web_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkChartReadHTTPS measures the audited chart read through Haven's
// real HTTPS server (TLS 1.3, the session, the gate and its audit append,
// three fields opened, the JSON) on SQLite, against a bare TLS 1.3 server
// answering a tiny body over the same client in the same run: the ratio
// is what make bench's chart row measures, in one process, so a CPU
// profile shows where the time goes. The FHIR API's Patient read and
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
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("%s: %s", url, resp.Status)
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
