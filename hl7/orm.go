package hl7

import "strconv"

// An Order is what an ORM^O01 to a lab says: who is tested, who ordered,
// and which tests. Haven fills it from sealed records just before the
// message leaves, and drops it after.
type Order struct {
	SendingApplication, SendingFacility     string
	ReceivingApplication, ReceivingFacility string
	ControlID                               string // MSH-10, unique per message sent
	At                                      string // MSH-7 and ORC-9, HL7 TS: 20261206051500+0000
	ProcessingID                            string // P in production, T for a test feed
	// Control is ORC-1: NW (new order, when empty) or CA (cancel the
	// order named by PlacerOrder).
	Control string

	PatientID      string // PID-3, the practice's MRN
	AssigningAuth  string // PID-3.4, the practice
	Family, Given  string
	BirthDate      string // PID-7, YYYYMMDD
	Sex            string // PID-8: F, M, O, U
	PlacerOrder    string // ORC-2 and OBR-2: Haven's order number, echoed in the result
	ProviderID     string // ORC-12 and OBR-16
	ProviderFamily string
	ProviderGiven  string
	Tests          []OrderedTest
	Note           string // NTE after the OBRs, or ""
}

// An OrderedTest is one OBR: a test from the practice's catalogue.
type OrderedTest struct {
	Code, Name string // OBR-4, LOINC
}

// ORM builds the HL7 v2.5.1 ORM^O01 for o: MSH, PID, then for each test
// an ORC (new order, or its cancellation) and its OBR.
func ORM(o Order) *Message {
	processing := o.ProcessingID
	if processing == "" {
		processing = "P"
	}
	m := NewMessage(Header{
		SendingApplication:   o.SendingApplication,
		SendingFacility:      o.SendingFacility,
		ReceivingApplication: o.ReceivingApplication,
		ReceivingFacility:    o.ReceivingFacility,
		MessageType:          "ORM",
		TriggerEvent:         "O01",
		Structure:            "ORM_O01",
		ControlID:            o.ControlID,
		ProcessingID:         processing,
		Version:              "2.5.1",
	}, o.At)
	pid3 := Field{Repetition{{o.PatientID}, {""}, {""}, {o.AssigningAuth}, {"MR"}}}
	m.Add("PID", Text("1"), nil, pid3, nil, Components(o.Family, o.Given), nil, Text(o.BirthDate), Text(o.Sex))
	provider := Components(o.ProviderID, o.ProviderFamily, o.ProviderGiven)
	control := o.Control
	if control == "" {
		control = "NW"
	}
	for i, t := range o.Tests {
		placer := Components(o.PlacerOrder, o.SendingFacility)
		// ORC-1 NW (new order) or CA (cancel it), ORC-2 placer order number, ORC-9 when, ORC-12 orderer.
		m.Add("ORC", Text(control), placer, nil, nil, nil, nil, nil, nil, Text(o.At), nil, nil, provider)
		// OBR-1 set id, OBR-2 placer order number, OBR-4 the test (LOINC), OBR-16 orderer.
		obr := make([]Field, 16)
		obr[0] = Text(strconv.Itoa(i + 1))
		obr[1] = placer
		obr[3] = Components(t.Code, t.Name, "LN")
		obr[6] = Text(o.At)
		obr[15] = provider
		m.Add("OBR", obr...)
	}
	if o.Note != "" {
		m.Add("NTE", Text("1"), Text("P"), Text(o.Note))
	}
	return m
}
