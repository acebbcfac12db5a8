package hl7_test

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"haven/hl7"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseReadsAResultPanel(t *testing.T) {
	m, err := hl7.Parse(sample(t, "oru_cmp.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Header()
	if h.MessageType != "ORU" || h.TriggerEvent != "R01" || h.ControlID != "LAB000123" || h.Version != "2.5.1" || h.SendingFacility != "ACME LAB" {
		t.Fatalf("header %+v", h)
	}
	msh, _ := m.First("MSH")
	if msh.Value(1) != "|" || msh.Value(2) != `^~\&` {
		t.Fatalf("MSH-1 %q MSH-2 %q", msh.Value(1), msh.Value(2))
	}
	pid, _ := m.First("PID")
	if got := len(pid.Field(3)); got != 2 {
		t.Fatalf("PID-3 has %d repetitions, want 2", got)
	}
	if pid.Field(3).Rep(1).Get(5) != "SS" || pid.Get(5, 2) != "Maren" {
		t.Fatalf("PID-3 second repetition or PID-5 misread")
	}
	zlb, _ := m.First("ZLB")
	if c := zlb.Field(2).Rep(0).Component(2); c.Sub(1) != "routing" || c.Sub(2) != "sub" {
		t.Fatalf("sub-components %q", c)
	}

	r, err := hl7.ReadORU(m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Patient.MRN() != "MRN-0042" || r.Patient.BirthDay() != "19800214" {
		t.Fatalf("patient %+v", r.Patient)
	}
	if len(r.Orders) != 1 {
		t.Fatalf("%d orders", len(r.Orders))
	}
	o := r.Orders[0]
	if o.PlacerOrder != "HVN-ORD-7" || o.FillerOrder != "ACME-55" || o.TestCode != "24323-8" || o.Status != "F" || o.ReportedAt != "20261206042500+0000" {
		t.Fatalf("order %+v", o)
	}
	want := []struct{ typ, value, numeric, rng string }{
		{"NM", "182", "182", "70-99"},
		{"NM", "139", "139", "136-145"},
		{"SN", ">60", "", ">60"},
		{"CWE", "Yellow", "", ""},
		{"ST", "Clear|hazy", "", ""},
		{"TX", "Line one\nLine two", "", ""},
		{"ED", "application^pdf^Base64^JVBERi0xLjQK", "", ""},
	}
	if len(o.Observations) != len(want) {
		t.Fatalf("%d observations", len(o.Observations))
	}
	for i, w := range want {
		g := o.Observations[i]
		if g.ValueType != w.typ || g.Value != w.value || g.Numeric != w.numeric || g.Range != w.rng {
			t.Errorf("OBX %d: %+v, want %+v", i+1, g, w)
		}
	}
	glucose := o.Observations[0]
	if !reflect.DeepEqual(glucose.Flags, []string{"HH"}) || !hl7.Critical(glucose.Flags[0]) || glucose.Units != "mg/dL" {
		t.Fatalf("glucose %+v", glucose)
	}
	if want := "Fasting specimen & repeat advised\nCall patient"; !reflect.DeepEqual(glucose.Notes, []string{want}) {
		t.Fatalf("note %q", glucose.Notes)
	}
}

// A v2.3 lab with its own delimiters and LF line ends is read the same.
func TestParseTakesAnyDelimitersAndLineEnds(t *testing.T) {
	raw := "MSH#*!%$#LAB#L#H#P#200101010000##ORU*R01#C1#P#2.3\nPID#1##A1%x%$y**MR##Doe*Jo##19700101\r\nOBR#1#P1##T1*Test\nOBX#1#ST#C1*Code##a%F%b%S%%R%%X4142%c!d\n"
	m, err := hl7.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if m.Delimiters != (hl7.Delimiters{Field: '#', Component: '*', Repetition: '!', Escape: '%', SubComponent: '$'}) {
		t.Fatalf("delimiters %+v", m.Delimiters)
	}
	pid, _ := m.First("PID")
	if c := pid.Field(3).Rep(0).Component(1); c.Sub(1) != "A1%x%" || c.Sub(2) != "y" {
		// %x% is not an escape HL7 defines: kept as sent.
		t.Fatalf("PID-3.1 %q", c)
	}
	obx, _ := m.First("OBX")
	if f := obx.Field(5); len(f) != 2 || f.Rep(0).Get(1) != "a#b*!ABc" || f.Rep(1).Get(1) != "d" {
		t.Fatalf("OBX-5 %q", f)
	}
	// Encoded again with its own delimiters, it reads back the same.
	again, err := hl7.Parse(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, again) {
		t.Fatalf("round trip changed the message:\n%v\n%v", m, again)
	}
}

func TestEncodeEscapesEveryDelimiter(t *testing.T) {
	m := hl7.NewMessage(hl7.Header{MessageType: "ORM", TriggerEvent: "O01", ControlID: "1", ProcessingID: "P", Version: "2.5.1"}, "20261206")
	evil := "a|b^c~d\\e&f\rPID|1\ng"
	m.Add("NTE", hl7.Text("1"), nil, hl7.Text(evil))
	b := m.Encode()
	if n := bytes.Count(b, []byte{'\r'}); n != 2 {
		t.Fatalf("%d segment ends, want 2: a value opened a segment", n)
	}
	back, err := hl7.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	nte, _ := back.First("NTE")
	if nte.Value(3) != evil || len(back.Segments) != 2 {
		t.Fatalf("read back %q in %v", nte.Value(3), back)
	}
}

func TestParseRefusesMalformedMessages(t *testing.T) {
	good := "MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\rPID|1||M1\r"
	small := hl7.DefaultLimits
	small.Segments, small.Fields, small.Repetitions, small.Components, small.SubComponents, small.MessageBytes = 3, 12, 2, 3, 2, 200
	cases := []struct {
		name string
		raw  string
		code int
	}{
		{"empty", "", hl7.CodeSegmentSequence},
		{"no MSH", "PID|1||M1\r", hl7.CodeSegmentSequence},
		{"short encoding", "MSH|^~|L\r", hl7.CodeDataType},
		{"repeated delimiter", "MSH|^^\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\r", hl7.CodeDataType},
		{"letter delimiter", "MSH|^~A&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\r", hl7.CodeDataType},
		{"no control id", "MSH|^~\\&|L|F|H|R|2026||ORU^R01||P|2.5.1\r", hl7.CodeRequiredMissing},
		{"no type", "MSH|^~\\&|L|F|H|R|2026|||C1|P|2.5.1\r", hl7.CodeRequiredMissing},
		{"old version", "MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.2\r", hl7.CodeUnsupportedVersion},
		{"bad processing id", "MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|Q|2.5.1\r", hl7.CodeUnsupportedProcess},
		{"second MSH", good + "MSH|^~\\&|L\r", hl7.CodeSegmentSequence},
		{"bad segment name", good + "pid|1\r", hl7.CodeSegmentSequence},
		{"open escape", good + "NTE|1||a\\Xab\r", hl7.CodeDataType},
		{"odd hex", good + "NTE|1||\\X4\\\r", hl7.CodeDataType},
		{"bad hex", good + "NTE|1||\\XZZ\\\r", hl7.CodeDataType},
		{"too many segments", good + "NTE|1\rNTE|2\r", hl7.CodeInternal},
		{"too many fields", "MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1|x\r", hl7.CodeInternal},
		{"too many repetitions", strings.Replace(good, "M1", "a~b~c", 1), hl7.CodeDataType},
		{"too many components", strings.Replace(good, "M1", "a^b^c^d", 1), hl7.CodeDataType},
		{"too many sub-components", strings.Replace(good, "M1", "a&b&c", 1), hl7.CodeDataType},
		{"too long", good + "NTE|1||" + strings.Repeat("x", 200) + "\r", hl7.CodeInternal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			limits := hl7.DefaultLimits
			if strings.HasPrefix(c.name, "too") {
				limits = small
			}
			_, err := limits.Parse([]byte(c.raw))
			var e *hl7.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want an *hl7.Error", err)
			}
			if e.Code != c.code {
				t.Fatalf("code %d (%v), want %d", e.Code, err, c.code)
			}
		})
	}
}

// An error names where a message is wrong, never what it says: every
// field may be PHI, and errors reach logs and ACKs.
func TestErrorsNeverCarryFieldContents(t *testing.T) {
	const secret = "QUILLMAREN"
	bad := []string{
		"MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\rPID|1||" + secret + "\\X4\r",
		"MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|9" + secret + "\r",
		"MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\rPID|1||" + secret + "\rOBR|1|||T\rOBX|1|NM|C^N||" + secret + "\r",
		"MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\rPID|1||" + secret + "\rOBR|1|||T\rOBX|1|XX|C^N||" + secret + "\r",
		"MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\rPID|1||" + secret + "\rOBX|1|ST|C^N||" + secret + "\r",
		"MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\r" + secret + "|1\r",
	}
	for i, raw := range bad {
		m, err := hl7.Parse([]byte(raw))
		if err == nil {
			_, err = hl7.ReadORU(m)
		}
		if err == nil {
			t.Fatalf("case %d: no error", i)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("case %d: the error carries a field's contents: %v", i, err)
		}
		ack := hl7.AckFor(m, hl7.ErrorAck, err, "A1", "2026").Encode()
		if bytes.Contains(ack, []byte(secret)) {
			t.Fatalf("case %d: the ACK carries a field's contents", i)
		}
	}
}

func TestReadORURefusesWhatItCannotStore(t *testing.T) {
	head := "MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\r"
	pid := "PID|1||M1^^^R^MR||Doe^Jo||19700101\r"
	obr := "OBR|1|O1||T1^Test\r"
	cases := map[string]struct {
		raw  string
		code int
	}{
		"not ORU":          {strings.Replace(head, "ORU^R01", "ADT^A01", 1) + pid, hl7.CodeUnsupportedType},
		"not R01":          {strings.Replace(head, "ORU^R01", "ORU^R30", 1) + pid, hl7.CodeUnsupportedEvent},
		"no patient":       {head + obr, hl7.CodeSegmentSequence},
		"no order":         {head + pid, hl7.CodeRequiredMissing},
		"two patients":     {head + pid + pid + obr, hl7.CodeSegmentSequence},
		"OBX before OBR":   {head + pid + "OBX|1|NM|C^N||1\r" + obr, hl7.CodeSegmentSequence},
		"NM not a number":  {head + pid + obr + "OBX|1|NM|C^N||high\r", hl7.CodeDataType},
		"SN not a number":  {head + pid + obr + "OBX|1|SN|C^N||>^x\r", hl7.CodeDataType},
		"unknown type":     {head + pid + obr + "OBX|1|RP|C^N||x\r", hl7.CodeDataType},
		"unnamed test":     {head + pid + "OBR|1|O1\r", hl7.CodeRequiredMissing},
		"unnamed value":    {head + pid + obr + "OBX|1|NM|||1\r", hl7.CodeRequiredMissing},
		"unknown segment":  {head + pid + obr + "ABC|1\r", hl7.CodeSegmentSequence},
		"segment sequence": {head + "OBR|1|O1||T\r" + pid, hl7.CodeSegmentSequence},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := hl7.Parse([]byte(c.raw))
			if err != nil {
				t.Fatal(err)
			}
			_, err = hl7.ReadORU(m)
			var e *hl7.Error
			if !errors.As(err, &e) || e.Code != c.code {
				t.Fatalf("error %v, want code %d", err, c.code)
			}
		})
	}
}

func TestAckAnswersTheSenderInItsVersion(t *testing.T) {
	m, err := hl7.Parse(sample(t, "oru_cmp.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	ack := hl7.AckFor(m, hl7.Accept, nil, "HVN1", "20261206043001+0000")
	back, err := hl7.Parse(ack.Encode())
	if err != nil {
		t.Fatal(err)
	}
	h := back.Header()
	if h.MessageType != "ACK" || h.ReceivingFacility != "ACME LAB" || h.SendingFacility != "RIVERSIDE" || h.ControlID != "HVN1" || h.Version != "2.5.1" {
		t.Fatalf("ACK header %+v", h)
	}
	a, err := hl7.ReadAck(back)
	if err != nil || a.Code != hl7.Accept || a.ControlID != "LAB000123" || a.ErrorCode != 0 {
		t.Fatalf("ack %+v %v", a, err)
	}

	for _, version := range []string{"2.3", "2.5.1", "2.8"} {
		raw := "MSH|^~\\&|L|F|H|R|2026||ORU^R01|C9|P|" + version + "\rPID|1\rOBR|1|O1||T\rOBX|1|NM|C^N||x\r"
		m, err := hl7.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		_, bad := hl7.ReadORU(m)
		back, err := hl7.Parse(hl7.AckFor(m, hl7.ErrorAck, bad, "HVN2", "2026").Encode())
		if err != nil {
			t.Fatal(err)
		}
		a, err := hl7.ReadAck(back)
		if err != nil || a.Code != hl7.ErrorAck || a.ControlID != "C9" || a.ErrorCode != hl7.CodeDataType {
			t.Fatalf("v%s: ack %+v %v", version, a, err)
		}
		if a.Reason == "" {
			t.Fatalf("v%s: the ACK gives no reason", version)
		}
	}

	// Not even an MSH: the ACK still parses and refuses.
	back, err = hl7.Parse(hl7.AckFor(nil, hl7.Reject, errors.New("x"), "HVN3", "2026").Encode())
	if err != nil {
		t.Fatal(err)
	}
	if a, err := hl7.ReadAck(back); err != nil || a.Code != hl7.Reject || a.ErrorCode != hl7.CodeInternal {
		t.Fatalf("ack %+v %v", a, err)
	}
}

func TestORMCarriesTheOrder(t *testing.T) {
	o := hl7.Order{
		SendingApplication: "HAVEN", SendingFacility: "RIVERSIDE", ReceivingApplication: "LAB", ReceivingFacility: "ACME",
		ControlID: "HVN-M-1", At: "20261206050000+0000",
		PatientID: "MRN-0042", AssigningAuth: "RIVERSIDE", Family: "Quill^Smith", Given: "Maren", BirthDate: "19800214", Sex: "F",
		PlacerOrder: "HVN-ORD-7", ProviderID: "C7", ProviderFamily: "Okafor", ProviderGiven: "Ada",
		Tests: []hl7.OrderedTest{{Code: "2345-7", Name: "Glucose"}, {Code: "4548-4", Name: "Hemoglobin A1c"}},
		Note:  "Fasting | since 8pm",
	}
	m, err := hl7.Parse(hl7.ORM(o).Encode())
	if err != nil {
		t.Fatal(err)
	}
	h := m.Header()
	if h.MessageType != "ORM" || h.TriggerEvent != "O01" || h.Structure != "ORM_O01" || h.ControlID != "HVN-M-1" {
		t.Fatalf("header %+v", h)
	}
	pid, _ := m.First("PID")
	if pid.Get(3, 1) != "MRN-0042" || pid.Get(3, 5) != "MR" || pid.Get(5, 1) != "Quill^Smith" || pid.Value(7) != "19800214" {
		t.Fatalf("PID %v", pid)
	}
	obrs := m.All("OBR")
	if len(obrs) != 2 || len(m.All("ORC")) != 2 {
		t.Fatalf("shape %v", m)
	}
	if obrs[1].Get(4, 1) != "4548-4" || obrs[1].Get(4, 3) != "LN" || obrs[1].Get(2, 1) != "HVN-ORD-7" || obrs[1].Get(16, 2) != "Okafor" {
		t.Fatalf("OBR %v", obrs[1])
	}
	orc, _ := m.First("ORC")
	if orc.Value(1) != "NW" || orc.Get(2, 1) != "HVN-ORD-7" {
		t.Fatalf("ORC %v", orc)
	}
	nte, _ := m.First("NTE")
	if nte.Value(3) != "Fasting | since 8pm" {
		t.Fatalf("NTE %q", nte.Value(3))
	}
}

// TestReadORUReadsThePatientsNameByItsComponents: PID-5 is read as an
// extended person name, never split at spaces: a family name of two words
// stays one family name, the given and middle names are their own
// components, an escaped delimiter inside a name is part of it, a
// surname's own prefix sent apart is put before it, the legal name is
// preferred to an alias sent first, and a v2.3 name (plain components)
// reads the same.
func TestReadORUReadsThePatientsNameByItsComponents(t *testing.T) {
	head := "MSH|^~\\&|L|F|H|R|2026||ORU^R01|C1|P|2.5.1\r"
	obr := "OBR|1|O1||T1^Test\r"
	cases := []struct {
		pid5, family, given, middle, name string
	}{
		{"de la Cruz^Maria^José", "de la Cruz", "Maria", "José", "Maria José de la Cruz"},
		{"García Márquez^Ana Lucía", "García Márquez", "Ana Lucía", "", "Ana Lucía García Márquez"},
		{"O\\S\\Brien^Sean", "O^Brien", "Sean", "", "Sean O^Brien"},
		{"Berg&van^Els", "van Berg", "Els", "", "Els van Berg"},
		{"Smithy^Jo^^^^^A~Smith^Joanna^Q^^^^L", "Smith", "Joanna", "Q", "Joanna Q Smith"},
		{"Doe^Jane", "Doe", "Jane", "", "Jane Doe"},
	}
	for _, c := range cases {
		m, err := hl7.Parse([]byte(head + "PID|1||M1^^^R^MR||" + c.pid5 + "||19700101\r" + obr))
		if err != nil {
			t.Fatal(err)
		}
		r, err := hl7.ReadORU(m)
		if err != nil {
			t.Fatal(err)
		}
		p := r.Patient
		if p.Family != c.family || p.Given != c.given || p.Middle != c.middle || p.Name() != c.name {
			t.Errorf("PID-5 %q read as family %q, given %q, middle %q (%q)", c.pid5, p.Family, p.Given, p.Middle, p.Name())
		}
	}
}
