package hl7

import (
	"errors"
	"strconv"
)

// An AckCode is MSA-1 in original acknowledgment mode.
type AckCode string

const (
	// Accept: the message was stored.
	Accept AckCode = "AA"
	// Reject with an error: the message was wrong; resending it as it is will not help.
	ErrorAck AckCode = "AE"
	// Reject: the message was refused (an unknown sender, no current agreement,
	// or Haven could not take it now).
	Reject AckCode = "AR"
)

// AckFor builds the original-mode ACK answering orig: the sender and
// receiver swapped, MSA naming orig's control id, and an ERR segment for
// err when it is an *Error (any other error is reported as an internal
// one, its text withheld). orig may be nil when not even the MSH could be
// read; the ACK then names no control id. controlID is the ACK's own
// MSH-10 and at its MSH-7.
func AckFor(orig *Message, code AckCode, err error, controlID, at string) *Message {
	var h Header
	if orig != nil {
		h = orig.Header()
	}
	version := h.Version
	if !knownVersion(version) {
		version = "2.5.1"
	}
	processing := h.ProcessingID
	if processing == "" {
		processing = "P"
	}
	ack := NewMessage(Header{
		SendingApplication:   h.ReceivingApplication,
		SendingFacility:      h.ReceivingFacility,
		ReceivingApplication: h.SendingApplication,
		ReceivingFacility:    h.SendingFacility,
		MessageType:          "ACK",
		TriggerEvent:         h.TriggerEvent,
		Structure:            "ACK",
		ControlID:            controlID,
		ProcessingID:         processing,
		Version:              version,
	}, at)
	ack.Add("MSA", Text(string(code)), Text(h.ControlID))
	if err == nil {
		return ack
	}
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeInternal, Reason: "the message could not be stored"}
	}
	code357 := strconv.Itoa(e.Code)
	loc := []string{e.Segment, "", "", ""}
	if e.Sequence > 0 {
		loc[1] = strconv.Itoa(e.Sequence)
	}
	if e.Field > 0 {
		loc[2] = strconv.Itoa(e.Field)
	}
	if version < "2.5" {
		// ERR-1 (error code and location, CM type): segment^sequence^field^^code&text&HL70357.
		ack.Add("ERR", Field{Repetition{
			{loc[0]}, {loc[1]}, {loc[2]}, {""},
			{code357, e.CodeText() + ": " + e.Reason, "HL70357"},
		}})
		return ack
	}
	severity := "E"
	ack.Add("ERR",
		nil,
		Components(loc[0], loc[1], loc[2]),
		Components(code357, e.CodeText(), "HL70357"),
		Text(severity),
		nil, nil, nil,
		Text(e.Reason),
	)
	return ack
}

// Ack is what an ACK says: MSA-1, MSA-2 and the first ERR's code.
type Ack struct {
	Code      AckCode
	ControlID string // the control id of the message it answers
	ErrorCode int    // 0 when there is no ERR
	Reason    string // ERR-8 or ERR-1's text: written by the receiver
}

// ReadAck reads an ACK.
func ReadAck(m *Message) (Ack, error) {
	h := m.Header()
	if h.MessageType != "ACK" {
		return Ack{}, &Error{Code: CodeUnsupportedType, Segment: "MSH", Sequence: 1, Field: 9, Reason: "the answer is not an ACK"}
	}
	msa, ok := m.First("MSA")
	if !ok {
		return Ack{}, &Error{Code: CodeRequiredMissing, Segment: "MSA", Reason: "the ACK has no MSA"}
	}
	a := Ack{Code: AckCode(msa.Value(1)), ControlID: msa.Value(2)}
	switch a.Code {
	case Accept, ErrorAck, Reject, "CA", "CE", "CR":
	default:
		return Ack{}, &Error{Code: CodeTableValue, Segment: "MSA", Field: 1, Reason: "the acknowledgment code is not one HL7 defines"}
	}
	if err, ok := m.First("ERR"); ok {
		if c, e := strconv.Atoi(err.Get(3, 1)); e == nil {
			a.ErrorCode, a.Reason = c, err.Value(8)
		} else if c, e := strconv.Atoi(err.Field(1).Rep(0).Component(5).Sub(1)); e == nil {
			a.ErrorCode, a.Reason = c, err.Field(1).Rep(0).Component(5).Sub(2)
		}
	}
	return a, nil
}
