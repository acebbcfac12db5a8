package service_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"haven"
	"haven/demo"
	"haven/hl7"
	"haven/service"
)

// labServer is a lab's MLLP listener over mutual TLS: it keeps every
// message it receives and answers with ack (AA unless told otherwise).
type labServer struct {
	addr   string
	client *tls.Config // the practice server's side: its client certificate and the lab's CA
	noCert *tls.Config
	// clientCA issues certificates labs present to Haven's listener.
	caCert *x509.Certificate
	mu     sync.Mutex
	ack    hl7.AckCode
	code   int
	got    [][]byte
}

func startLab(t *testing.T) *labServer {
	t.Helper()
	now := time.Now()
	caCert, caKey := newCert(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test lab network CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	srvCert, srvKey := newCert(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "lab"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, caKey)
	cliCert, cliKey := newCert(t, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "haven-practice"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	l := &labServer{ack: hl7.Accept, caCert: caCert}
	srv := &hl7.Server{
		TLSConfig: &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
			Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey, Leaf: srvCert}}},
		Handler: hl7.HandlerFunc(func(ctx context.Context, peer hl7.Peer, msg []byte) []byte {
			m, err := hl7.Parse(msg)
			l.mu.Lock()
			defer l.mu.Unlock()
			l.got = append(l.got, append([]byte(nil), msg...))
			code := l.ack
			var bad error
			if err != nil {
				code, bad = hl7.ErrorAck, err
			} else if code != hl7.Accept {
				bad = &hl7.Error{Code: l.code, Segment: "OBR", Sequence: 3, Field: 4, Reason: "test refused"}
			}
			return hl7.AckFor(m, code, bad, "LAB-ACK", "20261206").Encode()
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	l.addr = ln.Addr().String()
	l.client = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{{Certificate: [][]byte{cliCert.Raw}, PrivateKey: cliKey, Leaf: cliCert}}}
	l.noCert = &tls.Config{RootCAs: pool}
	return l
}

func (l *labServer) answer(code hl7.AckCode, errCode int) {
	l.mu.Lock()
	l.ack, l.code = code, errCode
	l.mu.Unlock()
}

func (l *labServer) received(t *testing.T) []*hl7.Message {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*hl7.Message
	for _, b := range l.got {
		m, err := hl7.Parse(b)
		if err != nil {
			t.Fatalf("the lab received a message it cannot read: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// labScene is a practice with the demo catalogue, a lab behind the test
// lab server, and a patient whose clinician orders.
type labScene struct {
	e      *env
	p      *practice
	lab    *haven.Vendor
	server *labServer
	sender *service.LabSender
}

func newLabScene(t *testing.T, e *env, name, marker string) *labScene {
	t.Helper()
	p := e.seed(name, marker)
	if err := e.svc.SeedLabCatalogue(context.Background(), p.id, bytes.NewReader(demo.LabCatalogue)); err != nil {
		t.Fatal(err)
	}
	sc := &labScene{e: e, p: p, server: startLab(t)}
	today := e.clock.Now().Truncate(24 * time.Hour)
	sc.lab = &haven.Vendor{Name: "Harbor Lab", Kind: haven.VendorLab, Endpoint: "mllps://" + sc.server.addr,
		PHI: haven.PHIMinimum, BAASigned: today.AddDate(0, -1, 0), BAAExpires: today.AddDate(0, 2, 0)}
	if err := e.svc.AddVendor(e.as(p.admin), sc.lab); err != nil {
		t.Fatal(err)
	}
	sc.sender = service.NewLabSender(e.svc, service.LabSenderConfig{TLS: sc.server.client, Retry: time.Millisecond, MaxRetry: time.Millisecond})
	return sc
}

func (sc *labScene) order(t *testing.T, tests ...string) *haven.LabOrderView {
	t.Helper()
	v, err := sc.e.svc.OrderLabs(sc.e.as(sc.p.clinician), service.NewLabOrder{PatientID: sc.p.patientA.UserID, LabID: sc.lab.ID, Tests: tests, Note: "Fasting LABNOTE" + sc.p.id[:4]})
	if err != nil {
		t.Fatalf("ordering: %v", err)
	}
	return v
}

func (sc *labScene) deliver(t *testing.T) {
	t.Helper()
	sc.e.clock.Advance(time.Second)
	if _, err := sc.sender.SendDue(context.Background()); err != nil {
		t.Fatalf("sending: %v", err)
	}
}

func (sc *labScene) status(t *testing.T, id string) *haven.LabOrderView {
	t.Helper()
	v, err := sc.e.svc.LabOrder(sc.e.as(sc.p.clinician), id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLabOrderReachesTheLabAndItsAckIsRecorded: the clinician orders two
// tests from the catalogue; the lab receives an ORM^O01 over mutual TLS
// naming the patient by MRN, name and birth date (nothing more), the
// tests by LOINC and the order by its number; its AA makes the order
// sent. An AE makes the next order rejected with the lab's error code; an
// AR leaves it queued and tried again. What is ordered is not in the
// clear on disk.
func TestLabOrderReachesTheLabAndItsAckIsRecorded(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Labville", "LBM1")
		v := sc.order(t, "2345-7", "4548-4", "2345-7")
		if v.Status != haven.LabQueued || len(v.Tests) != 2 || v.Tests[1].Name != "Hemoglobin A1c" || !strings.HasPrefix(v.Number, "HVN") {
			t.Fatalf("order %+v", v)
		}
		sc.deliver(t)
		got := sc.server.received(t)
		if len(got) != 1 {
			t.Fatalf("the lab received %d messages", len(got))
		}
		m := got[0]
		if h := m.Header(); h.MessageType != "ORM" || h.TriggerEvent != "O01" || h.Version != "2.5.1" {
			t.Fatalf("header %+v", h)
		}
		pid, _ := m.First("PID")
		if pid.Get(3, 1) != sc.p.chartA.MRN || pid.Value(7) != "19800203" || pid.Value(8) != "F" || pid.Get(5, 1) != sc.p.chartA.Demographics.Name {
			t.Fatalf("PID %v: %q %q %q", m, pid.Get(3, 1), pid.Value(7), pid.Get(5, 1))
		}
		if !pid.Field(11).Empty() || !pid.Field(13).Empty() {
			t.Fatal("the order carries the patient's address or phone")
		}
		obrs := m.All("OBR")
		if len(obrs) != 2 || obrs[0].Get(4, 1) != "2345-7" || obrs[1].Get(4, 1) != "4548-4" || obrs[0].Get(2, 1) != v.Number {
			t.Fatalf("OBRs %v", m)
		}
		if after := sc.status(t, v.ID); after.Status != haven.LabSent || after.AckCode != "AA" {
			t.Fatalf("after AA: %+v", after)
		}

		sc.server.answer(hl7.ErrorAck, hl7.CodeTableValue)
		v2 := sc.order(t, "718-7")
		sc.deliver(t)
		if after := sc.status(t, v2.ID); after.Status != haven.LabRejected || after.AckCode != "AE" || after.StatusReason != "lab_error_103" {
			t.Fatalf("after AE: %+v", after)
		}

		sc.server.answer(hl7.Reject, hl7.CodeInternal)
		v3 := sc.order(t, "777-3")
		sc.deliver(t)
		if after := sc.status(t, v3.ID); after.Status != haven.LabQueued || after.StatusReason != "lab_refused" {
			t.Fatalf("after AR: %+v", after)
		}
		sc.server.answer(hl7.Accept, 0)
		sc.deliver(t)
		if after := sc.status(t, v3.ID); after.Status != haven.LabSent {
			t.Fatalf("after AR then AA: %+v", after)
		}
		// The retried message kept its control id: the lab saw a repeat.
		all := sc.server.received(t)
		if a, b := all[len(all)-2].Header().ControlID, all[len(all)-1].Header().ControlID; a != b {
			t.Fatalf("a retry changed the control id: %s then %s", a, b)
		}
		if n, _ := e.db.PendingLabOutbox(context.Background()); n != 0 {
			t.Fatalf("%d messages still pending", n)
		}
		e.assertNotInTheClear(t, "lab_orders", "LABNOTE")
	})
}

// TestLabOrderRefusals: only a clinician on the patient's care team
// orders, only tests from the catalogue, only from one of the practice's
// labs whose agreement is current; an agreement that ends after the order
// stops it in the outbox, and so does a sender without the client
// certificate the lab requires.
func TestLabOrderRefusals(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sc := newLabScene(t, e, "Refuseville", "LBR1")
		other := newLabScene(t, e, "Elsewhere", "LBR2")
		good := service.NewLabOrder{PatientID: sc.p.patientA.UserID, LabID: sc.lab.ID, Tests: []string{"2345-7"}}
		try := func(who haven.Actor, n service.NewLabOrder) error {
			_, err := e.svc.OrderLabs(e.as(who), n)
			return err
		}
		for name, c := range map[string]struct {
			who  haven.Actor
			n    func(service.NewLabOrder) service.NewLabOrder
			code string
		}{
			"a clinician not on the care team": {sc.p.otherClinician, func(n service.NewLabOrder) service.NewLabOrder { return n }, haven.EFORBIDDEN},
			"the patient":                      {sc.p.patientA, func(n service.NewLabOrder) service.NewLabOrder { return n }, haven.EFORBIDDEN},
			"the front desk":                   {sc.p.staff, func(n service.NewLabOrder) service.NewLabOrder { return n }, haven.EFORBIDDEN},
			"another practice's clinician":     {other.p.clinician, func(n service.NewLabOrder) service.NewLabOrder { return n }, haven.ENOTFOUND},
			"a test not in the catalogue": {sc.p.clinician, func(n service.NewLabOrder) service.NewLabOrder {
				n.Tests = []string{"1558-6"}
				return n
			}, haven.EINVALID},
			"a code that is not LOINC": {sc.p.clinician, func(n service.NewLabOrder) service.NewLabOrder {
				n.Tests = []string{"2345-8"}
				return n
			}, haven.EINVALID},
			"no test": {sc.p.clinician, func(n service.NewLabOrder) service.NewLabOrder {
				n.Tests = nil
				return n
			}, haven.EINVALID},
			"another practice's lab": {sc.p.clinician, func(n service.NewLabOrder) service.NewLabOrder {
				n.LabID = other.lab.ID
				return n
			}, haven.EINVALID},
			"another patient's id from elsewhere": {sc.p.clinician, func(n service.NewLabOrder) service.NewLabOrder {
				n.PatientID = other.p.patientA.UserID
				return n
			}, haven.ENOTFOUND},
		} {
			t.Run(name, func(t *testing.T) {
				err := try(c.who, c.n(good))
				if haven.ErrorCode(err) != c.code {
					t.Fatalf("error %v (%s), want %s", err, haven.ErrorCode(err), c.code)
				}
			})
		}

		// The sender without its client certificate delivers nothing.
		v := sc.order(t, "2345-7")
		bare := service.NewLabSender(e.svc, service.LabSenderConfig{TLS: sc.server.noCert, Retry: time.Millisecond, MaxRetry: time.Millisecond})
		e.clock.Advance(time.Second)
		bare.SendDue(context.Background())
		if got := sc.server.received(t); len(got) != 0 {
			t.Fatalf("the lab received %d messages from a sender without a certificate", len(got))
		}
		if after := sc.status(t, v.ID); after.Status != haven.LabQueued || after.StatusReason != "lab_unreachable" {
			t.Fatalf("after a refused handshake: %+v", after)
		}

		// The agreement ends: the order waits, and nothing leaves.
		sc.lab.BAAExpires = e.clock.Now().Truncate(24*time.Hour).AddDate(0, 0, -1)
		sc.lab.BAASigned = sc.lab.BAAExpires.AddDate(0, -2, 0)
		if err := e.svc.UpdateVendor(e.as(sc.p.admin), sc.lab); err != nil {
			t.Fatal(err)
		}
		sc.deliver(t)
		if got := sc.server.received(t); len(got) != 0 {
			t.Fatalf("the lab received %d messages after its agreement ended", len(got))
		}
		if after := sc.status(t, v.ID); after.Status != haven.LabQueued || after.StatusReason != "vendor_refused" {
			t.Fatalf("after the agreement ended: %+v", after)
		}
		if err := try(sc.p.clinician, good); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("ordering from a lab whose agreement ended: %v", err)
		}
		labs, err := e.svc.Labs(e.as(sc.p.clinician))
		if err != nil || len(labs) != 0 {
			t.Fatalf("labs offered after the agreement ended: %v %v", labs, err)
		}
	})
}

func TestLabCatalogueImport(t *testing.T) {
	tests, err := service.ParseLabCatalogue(bytes.NewReader(demo.LabCatalogue))
	if err != nil || len(tests) < 20 {
		t.Fatalf("the demo catalogue: %d tests, %v", len(tests), err)
	}
	for name, csv := range map[string]string{
		"bad check digit": "2345-8,Glucose\n",
		"no name":         "2345-7,\n",
		"three columns":   "2345-7,Glucose,x\n",
		"two lines name":  "2345-7,\"Glu\ncose\"\n",
		"empty":           "loinc,name\n",
	} {
		if _, err := service.ParseLabCatalogue(strings.NewReader(csv)); haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, ok := range []string{"2345-7", "4548-4", "13457-7", "24323-8", "58410-2", "33914-3", "11502-2"} {
		if !service.ValidLOINC(ok) {
			t.Errorf("%s refused", ok)
		}
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal()
	}
}
