package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"haven"
	"haven/service"
)

// TestBrowserClinicianSeesTheReadingsHerPatientRecorded: Maria Lopez's
// blood-pressure app records her systolic pressure (the FHIR create's
// service call); Dr Rivera, on a phone, opens Maria's chart from her
// patients and finds the reading there, by its name, value and unit,
// marked as recorded by the patient.
func TestBrowserClinicianSeesTheReadingsHerPatientRecorded(t *testing.T) {
	st := newDemoStack(t)
	doc := newWalker(t, st.base)
	doc.use(phone)
	doc.start()
	doc.signIn(doctor, "")
	openMaria := func() {
		doc.follow("#nav-patients")
		if err := chromedp.Do(doc.ctx, chromedp.Evaluate[chromedp.Void](`(() => {
			const a = Array.from(document.querySelectorAll('main a')).find((e) => e.textContent.trim() === 'Maria Lopez');
			if (a) a.id = 'open-maria';
		})()`)); err != nil {
			t.Fatal(err)
		}
		doc.follow("#open-maria")
	}
	openMaria()
	if doc.has("#vitals") {
		t.Fatal("readings shown before any was recorded")
	}
	maria := strings.TrimPrefix(strings.SplitN(doc.at(), "?", 2)[0], "/app/patients/")
	staff := st.demoActor("Riverside Family Clinic", haven.RoleStaff)
	who, _ := haven.ActorFromContext(staff)
	her := haven.NewContextWithActor(context.Background(), haven.Actor{UserID: maria, PracticeID: who.PracticeID, Role: haven.RolePatient,
		MFA: true, AuthTime: time.Now(), SessionID: "scene", ClientAddr: "127.0.0.1", RequestID: "scene"})
	if _, err := st.svc.FHIRRecordObservation(her, service.NewVitalSign{PatientID: maria, Status: "final", LOINC: "8480-6",
		Display: "Systolic blood pressure", Value: 128.5, Unit: "mm[Hg]", Effective: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	openMaria()
	if got := doc.text("#vitals"); !strings.Contains(got, "Systolic blood pressure: 128.5 mm[Hg]") || !strings.Contains(got, "the patient recorded") {
		t.Fatalf("her chart's readings: %q", got)
	}
}
