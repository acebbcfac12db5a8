package fhir

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	m "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// NewMessage is what a Communication a patient's app creates says: a
// message to her care team.
type NewMessage struct {
	// Patient is the id its subject names, "" when it names none (the
	// caller's own, then).
	Patient string
	Subject string // topic.text, "" when not given
	Body    string // the one payload's contentString
}

// communicationIn is the part of a Communication the server takes from a
// client; any other element is refused, not ignored, so that a client
// never believes the server kept what it dropped (a recipient, an
// attachment, a date of its choosing).
type communicationIn struct {
	ResourceType string `json:"resourceType"`
	Status       string `json:"status"`
	Subject      *struct {
		Reference string `json:"reference"`
		Display   string `json:"display,omitempty"`
	} `json:"subject,omitempty"`
	Topic *struct {
		Text string `json:"text"`
	} `json:"topic,omitempty"`
	Payload []struct {
		ContentString *string `json:"contentString"`
	} `json:"payload"`
}

// ParseCommunication reads a Communication to create: JSON the model
// library accepts as a Communication, of status completed, with one
// payload holding the message's text, an optional topic (its subject)
// and an optional subject (Patient/[id]). The error is safe to show: it
// never echoes the body.
func ParseCommunication(body []byte) (NewMessage, error) {
	var out NewMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var c communicationIn
	if err := dec.Decode(&c); err != nil {
		return out, invalidResource("the body must be a Communication with status, payload and optionally subject and topic, and nothing else")
	}
	if _, err := dec.Token(); err != io.EOF {
		return out, invalidResource("the body has trailing data")
	}
	if c.ResourceType != "Communication" {
		return out, invalidResource("the body must be a Communication")
	}
	if _, err := m.UnmarshalCommunication(body); err != nil {
		return out, invalidResource("the Communication is malformed")
	}
	if c.Status != "completed" {
		return out, invalidResource("a Communication sent here has status completed")
	}
	if len(c.Payload) != 1 || c.Payload[0].ContentString == nil || strings.TrimSpace(*c.Payload[0].ContentString) == "" {
		return out, invalidResource("a Communication sent here has one payload, its text in contentString")
	}
	out.Body = *c.Payload[0].ContentString
	if c.Topic != nil {
		out.Subject = c.Topic.Text
	}
	if c.Subject != nil {
		id, ok := strings.CutPrefix(c.Subject.Reference, "Patient/")
		if !ok || id == "" || strings.ContainsAny(id, "/?#") {
			return out, invalidResource("subject must be Patient/[id]")
		}
		out.Patient = id
	}
	return out, nil
}
