package fhir_test

import (
	"errors"
	"strings"
	"testing"

	"haven/fhir"
)

// TestParseCommunication: a patient app's message is read for its text,
// subject line and patient; anything else a client could mean by it (a
// recipient, an attachment, another status, another type, two payloads,
// a subject that is not a Patient, trailing data) is refused, never
// dropped, and the error never echoes the body.
func TestParseCommunication(t *testing.T) {
	got, err := fhir.ParseCommunication([]byte(`{"resourceType":"Communication","status":"completed",
		"subject":{"reference":"Patient/abc123"},"topic":{"text":"Refill"},"payload":[{"contentString":"Please renew it"}]}`))
	if err != nil || got != (fhir.NewMessage{Patient: "abc123", Subject: "Refill", Body: "Please renew it"}) {
		t.Fatalf("%+v, %v", got, err)
	}
	got, err = fhir.ParseCommunication([]byte(`{"resourceType":"Communication","status":"completed","payload":[{"contentString":"Hello"}]}`))
	if err != nil || got != (fhir.NewMessage{Body: "Hello"}) {
		t.Fatalf("the bare message: %+v, %v", got, err)
	}
	for _, body := range []string{
		``,
		`SECRETBODY`,
		`{"resourceType":"Patient","status":"completed","payload":[{"contentString":"SECRETBODY"}]}`,
		`{"resourceType":"Communication","status":"in-progress","payload":[{"contentString":"SECRETBODY"}]}`,
		`{"resourceType":"Communication","status":"SECRETBODY","payload":[{"contentString":"x"}]}`,
		`{"resourceType":"Communication","payload":[{"contentString":"SECRETBODY"}]}`,
		`{"resourceType":"Communication","status":"completed","payload":[]}`,
		`{"resourceType":"Communication","status":"completed","payload":[{"contentString":"  "}]}`,
		`{"resourceType":"Communication","status":"completed","payload":[{"contentString":"a"},{"contentString":"SECRETBODY"}]}`,
		`{"resourceType":"Communication","status":"completed","payload":[{"contentAttachment":{"data":"U0VDUkVU"}}]}`,
		`{"resourceType":"Communication","status":"completed","recipient":[{"reference":"Practitioner/x"}],"payload":[{"contentString":"SECRETBODY"}]}`,
		`{"resourceType":"Communication","status":"completed","sent":"2020-01-01","payload":[{"contentString":"SECRETBODY"}]}`,
		`{"resourceType":"Communication","status":"completed","subject":{"reference":"Group/SECRETBODY"},"payload":[{"contentString":"x"}]}`,
		`{"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/a/_history/1"},"payload":[{"contentString":"x"}]}`,
		`{"resourceType":"Communication","status":"completed","payload":[{"contentString":"x"}]} {"SECRETBODY":1}`,
		`{"resourceType":"Communication","status":"completed","payload":[{"contentString":7}]}`,
	} {
		_, err := fhir.ParseCommunication([]byte(body))
		if !errors.Is(err, fhir.ErrInvalidResource) {
			t.Errorf("%s: %v, want refused", body, err)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("the error echoes the body: %v", err)
		}
	}
}
