package service_test

import (
	"testing"
	"time"

	"haven"
	"haven/service"
	"haven/video/token"
)

// wednesdayAfternoon is availability on the env clock's day (Wednesday
// 2026-11-25, 14:00 UTC): 15:00 to 17:00 UTC in 30-minute slots.
var wednesdayAfternoon = []service.AvailabilityBlock{{Weekday: time.Wednesday, Start: "15:00", End: "17:00", SlotMinutes: 30, TimeZone: "UTC"}}

func TestVisitFromBookingToJoinToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "v1")
		q := e.seed("lakeshore", "w1")
		doc := e.as(p.clinician)
		if err := e.svc.SetAvailability(doc, wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
		slots, err := e.svc.Slots(e.as(p.patientA), p.clinician.UserID, start.Add(-time.Hour), start.Add(3*time.Hour))
		if err != nil || len(slots) != 4 || !slots[0].Start.Equal(start) {
			t.Fatalf("slots %v %v", slots, err)
		}
		if _, err := e.svc.Slots(e.as(q.patientA), p.clinician.UserID, start, start.Add(time.Hour)); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice saw the schedule: %v", err)
		}
		v, err := e.svc.BookVisit(e.as(p.patientA), p.chartA.PatientID, p.clinician.UserID, start, "follow-up on rash")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.BookVisit(e.as(p.patientB), p.chartB.PatientID, p.clinician.UserID, start, "double booking"); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("double booking: %v", err)
		}
		if _, err := e.svc.BookVisit(e.as(p.patientA), p.chartB.PatientID, p.clinician.UserID, start.Add(30*time.Minute), "for someone else"); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("booking for another patient: %v", err)
		}
		if _, err := e.svc.JoinToken(e.as(p.patientA), v.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("token before admission: %v", err)
		}
		if _, err := e.svc.CheckIn(e.as(p.patientA), v.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("check-in an hour early: %v", err)
		}
		e.clock.Advance(40 * time.Minute)
		if _, err := e.svc.CheckIn(e.as(p.patientB), v.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another patient checked in: %v", err)
		}
		if _, err := e.svc.CheckIn(e.as(p.patientA), v.ID); err != nil {
			t.Fatal(err)
		}
		doc = e.as(p.clinician) // a fresh step-up: admitting needs one
		room, err := e.svc.WaitingRoom(doc)
		if err != nil || len(room) != 1 || room[0].PatientName != "Namev1A" || room[0].State != "waiting" {
			t.Fatalf("waiting room %+v %v", room, err)
		}
		if err := e.svc.Admit(e.as(p.otherClinician), v.ID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("another clinician admitted: %v", err)
		}
		if err := e.svc.Admit(e.as(q.clinician), v.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another practice admitted: %v", err)
		}
		if err := e.svc.Admit(doc, v.ID); err != nil {
			t.Fatal(err)
		}
		tok, err := e.svc.JoinToken(e.as(p.patientA), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		c, err := token.Verify(e.videoKey, tok, v.ID, p.chartA.PatientID, e.clock.Now())
		if err != nil || c.Role != token.Patient {
			t.Fatalf("patient token %+v %v", c, err)
		}
		if _, err := token.Verify(e.videoKey, tok, v.ID, p.clinician.UserID, e.clock.Now()); err == nil {
			t.Fatal("the patient's token works for the clinician")
		}
		if _, err := e.svc.JoinToken(e.as(p.patientB), v.ID); haven.ErrorCode(err) != haven.ENOTFOUND {
			t.Fatalf("another patient got a token: %v", err)
		}
		if err := e.svc.EndVisit(doc, v.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.JoinToken(e.as(p.patientA), v.ID); haven.ErrorCode(err) != haven.ECONFLICT {
			t.Fatalf("token after the end: %v", err)
		}
	})
}

// TestBookedVisitOpensTheChartToItsClinician shows the visit relationship:
// a clinician off the care team reads the chart of a patient booked with
// them, and not another patient's.
func TestBookedVisitOpensTheChartToItsClinician(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "v2")
		other := e.as(p.otherClinician)
		if err := e.svc.SetAvailability(other, wednesdayAfternoon); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Chart(other, p.chartB.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("before booking: %v", err)
		}
		v, err := e.svc.BookVisit(e.as(p.staff), p.chartB.PatientID, p.otherClinician.UserID, time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC), "new patient")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Chart(other, p.chartB.PatientID); err != nil {
			t.Fatalf("booked clinician: %v", err)
		}
		if _, err := e.svc.Chart(other, p.chartA.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("unbooked patient: %v", err)
		}
		if err := e.svc.CancelVisit(e.as(p.patientB), v.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Chart(other, p.chartB.PatientID); haven.ErrorCode(err) != haven.EFORBIDDEN {
			t.Fatalf("after cancel: %v", err)
		}
	})
}

// TestSlotsFollowTheClinicianAcrossDaylightSaving: 09:00 in Chicago is
// 15:00 UTC before the March change and 14:00 UTC after it.
func TestSlotsFollowTheClinicianAcrossDaylightSaving(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		p := e.seed("riverside", "v3")
		if err := e.svc.SetAvailability(e.as(p.clinician), []service.AvailabilityBlock{{Weekday: time.Monday, Start: "09:00", End: "09:30", SlotMinutes: 30, TimeZone: "America/Chicago"}}); err != nil {
			t.Fatal(err)
		}
		slots, err := e.svc.Slots(e.as(p.patientA), p.clinician.UserID, time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 3, 16, 0, 0, 0, 0, time.UTC))
		if err != nil || len(slots) != 3 {
			t.Fatalf("slots %v %v", slots, err)
		}
		if slots[0].Start.Hour() != 15 || slots[2].Start.Hour() != 14 {
			t.Fatalf("daylight saving ignored: %v", slots)
		}
		if err := e.svc.SetAvailability(e.as(p.clinician), []service.AvailabilityBlock{{Weekday: time.Monday, Start: "09:00", End: "09:20", SlotMinutes: 30, TimeZone: "Mars/Olympus"}}); haven.ErrorCode(err) != haven.EINVALID {
			t.Fatalf("bad availability: %v", err)
		}
	})
}
