// Package demo seeds two demonstration practices so a newcomer can see the
// whole product, and the wall between tenants, on a fresh install. Its
// people are fictional. It goes through the service layer like any other
// caller, acting as the practice's own people, so demo data is sealed,
// decided and audited exactly as real data is.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"haven"
	"haven/service"
)

// Password is every demo account's password. It is printed at start; demo
// data is fictional and a demo install is not for real patients.
const Password = "harbor-lantern-clinic-2026"

// Login is one demo account as printed for the person trying Haven.
type Login struct {
	Practice   string
	PracticeID string // its registration page is /register/{PracticeID}
	Role       haven.Role
	Name       string
	Email      string
}

type person struct {
	role  haven.Role
	name  string
	email string
	// patients only
	mrn, dob, phone string
	careTeam        []string // emails of clinicians on the patient's care team
}

type practice struct {
	name   string
	people []person
}

// practices are the demo tenants. Two of them, so isolation can be seen:
// nobody in one can reach anything of the other.
var practices = []practice{
	{"Riverside Family Clinic", []person{
		{role: haven.RolePracticeAdmin, name: "Alex Admin", email: "admin@riverside.example"},
		{role: haven.RoleComplianceOfficer, name: "Casey Compliance", email: "compliance@riverside.example"},
		{role: haven.RoleClinician, name: "Dr. Rosa Rivera", email: "rivera@riverside.example"},
		{role: haven.RoleClinician, name: "Dr. Sam Okafor", email: "okafor@riverside.example"},
		{role: haven.RoleStaff, name: "Jamie Front-Desk", email: "frontdesk@riverside.example"},
		{role: haven.RolePatient, name: "Maria Lopez", email: "maria.lopez@patients.example", mrn: "RFC-10001", dob: "1984-03-12", phone: "555-0101",
			careTeam: []string{"rivera@riverside.example"}},
		{role: haven.RolePatient, name: "John Chen", email: "john.chen@patients.example", mrn: "RFC-10002", dob: "1971-11-30", phone: "555-0102",
			careTeam: []string{"rivera@riverside.example", "okafor@riverside.example"}},
	}},
	{"Lakeshore Pediatrics", []person{
		{role: haven.RolePracticeAdmin, name: "Morgan Admin", email: "admin@lakeshore.example"},
		{role: haven.RoleComplianceOfficer, name: "Quinn Compliance", email: "compliance@lakeshore.example"},
		{role: haven.RoleClinician, name: "Dr. Priya Shah", email: "shah@lakeshore.example"},
		{role: haven.RoleStaff, name: "Taylor Front-Desk", email: "frontdesk@lakeshore.example"},
		{role: haven.RolePatient, name: "Ava Johnson", email: "ava.johnson@patients.example", mrn: "LSP-20001", dob: "2015-06-02", phone: "555-0201",
			careTeam: []string{"shah@lakeshore.example"}},
		{role: haven.RolePatient, name: "Noah Williams", email: "noah.williams@patients.example", mrn: "LSP-20002", dob: "2018-09-17", phone: "555-0202",
			careTeam: []string{"shah@lakeshore.example"}},
	}},
}

// Formulary is the demo practices' formulary (RxNorm code, name, DEA
// schedule of a controlled drug), in the CSV form a practice imports.
//
//go:embed formulary.csv
var Formulary []byte

// LabCatalogue is the demo practices' lab catalogue (LOINC code, name),
// in the CSV form a practice imports.
//
//go:embed lab_catalogue.csv
var LabCatalogue []byte

// Seed creates the demo practices unless they exist, and returns the logins
// either way, so every `serve --demo` prints how to sign in.
func Seed(ctx context.Context, svc *service.Service) ([]Login, error) {
	existing, err := svc.PracticeNames(ctx)
	if err != nil {
		return nil, err
	}
	var logins []Login
	for _, p := range practices {
		id, ok := existing[p.name]
		if !ok {
			if id, err = seedPractice(ctx, svc, p); err != nil {
				return nil, fmt.Errorf("demo practice %s: %w", p.name, err)
			}
		}
		for _, who := range p.people {
			logins = append(logins, Login{p.name, id, who.role, who.name, who.email})
		}
	}
	return logins, nil
}

func seedPractice(ctx context.Context, svc *service.Service, p practice) (string, error) {
	pr, err := svc.CreatePractice(ctx, p.name)
	if err != nil {
		return "", err
	}
	if err := seedPeople(ctx, svc, pr, p); err != nil {
		return "", err
	}
	return pr.ID, nil
}

func seedPeople(ctx context.Context, svc *service.Service, pr *haven.Practice, p practice) error {
	actors := map[string]haven.Actor{}
	as := func(email string) context.Context {
		a := actors[email]
		a.MFA, a.AuthTime, a.SessionID, a.ClientAddr = true, time.Now().UTC(), "demo-seed", "127.0.0.1"
		return haven.NewContextWithActor(ctx, a)
	}
	var desk, admin string
	for _, who := range p.people {
		if who.role == haven.RolePatient {
			continue
		}
		u, err := svc.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: who.role, Email: who.email, Name: who.name, Password: Password})
		if err != nil {
			return fmt.Errorf("user %s: %w", who.email, err)
		}
		actors[who.email] = haven.Actor{UserID: u.ID, PracticeID: pr.ID, Role: who.role}
		if who.role == haven.RoleClinician {
			if err := svc.SetAvailability(as(who.email), aroundTheClock()); err != nil {
				return fmt.Errorf("availability of %s: %w", who.email, err)
			}
		}
		switch who.role {
		case haven.RoleStaff:
			desk = who.email
		case haven.RolePracticeAdmin:
			admin = who.email
		}
	}
	// Demo clinics take registrations online, so a newcomer can try
	// becoming a patient (the emails land in the outbox directory).
	settings := service.DefaultSettings()
	settings.SelfRegistration = true
	if err := svc.UpdateSettings(as(admin), settings); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	// A small formulary (two controlled drugs, which are listed and never
	// prescribed) and a pharmacy with a current agreement, so a clinician
	// can write a prescription at once. The pharmacy's address is made up:
	// prescriptions wait in the outbox, which says so.
	if err := svc.SeedFormulary(ctx, pr.ID, bytes.NewReader(Formulary)); err != nil {
		return fmt.Errorf("formulary: %w", err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if err := svc.AddVendor(as(admin), &haven.Vendor{Name: "Main Street Pharmacy", Kind: haven.VendorPharmacy, Endpoint: "https://pharmacy.invalid/fhir",
		PHI: haven.PHIMinimum, BAASigned: today.AddDate(0, -1, 0), BAAExpires: today.AddDate(1, 0, 0), BAADocument: "demo agreement", Contact: "pharmacy@example.com"}); err != nil {
		return fmt.Errorf("pharmacy: %w", err)
	}
	// A lab catalogue and a lab with a current agreement, so a clinician
	// can order tests at once. The lab's address is made up too: orders
	// wait in the outbox, which says so.
	if err := svc.SeedLabCatalogue(ctx, pr.ID, bytes.NewReader(LabCatalogue)); err != nil {
		return fmt.Errorf("lab catalogue: %w", err)
	}
	if err := svc.AddVendor(as(admin), &haven.Vendor{Name: "Riverside Clinical Laboratory", Kind: haven.VendorLab, Endpoint: "mllps://lab.invalid:2575",
		PHI: haven.PHIMinimum, BAASigned: today.AddDate(0, -1, 0), BAAExpires: today.AddDate(1, 0, 0), BAADocument: "demo agreement", Contact: "lab@example.com"}); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	booked := false
	for _, who := range p.people {
		if who.role != haven.RolePatient {
			continue
		}
		// The front desk registers the patient, the admin builds the care
		// team, and each clinician opens the chart once: the audit log and
		// the patient's access history show all of it.
		c, err := svc.RegisterPatient(as(desk), service.NewPatient{MRN: who.mrn,
			Demographics: service.Demographics{Name: who.name, DateOfBirth: who.dob},
			Contact:      service.Contact{Email: who.email, Phone: who.phone}})
		if err != nil {
			return fmt.Errorf("patient %s: %w", who.email, err)
		}
		if err := svc.ProvisionPassword(ctx, c.PatientID, Password); err != nil {
			return err
		}
		for _, doc := range who.careTeam {
			if err := svc.AddToCareTeam(as(admin), c.PatientID, actors[doc].UserID); err != nil {
				return err
			}
			if _, err := svc.Chart(as(doc), c.PatientID); err != nil {
				return err
			}
		}
		// The practice's first patient has a video visit with their
		// clinician 20 to 35 minutes ahead, so checking in works at once.
		if !booked && len(who.careTeam) > 0 {
			actors[who.email] = haven.Actor{UserID: c.PatientID, PracticeID: pr.ID, Role: haven.RolePatient}
			if err := bookNext(as(who.email), svc, c.PatientID, actors[who.careTeam[0]].UserID); err != nil {
				return fmt.Errorf("visit for %s: %w", who.email, err)
			}
			booked = true
		}
	}
	return nil
}

// aroundTheClock is a demo clinician's week: 15-minute slots at every hour
// of every day, so a visit can be booked and tried whenever someone
// tries Haven. A real clinician sets their own hours in their own zone.
func aroundTheClock() []service.AvailabilityBlock {
	var blocks []service.AvailabilityBlock
	for d := time.Sunday; d <= time.Saturday; d++ {
		blocks = append(blocks, service.AvailabilityBlock{Weekday: d, Start: "00:00", End: "23:45", SlotMinutes: 15, TimeZone: "UTC"})
	}
	return blocks
}

// bookNext books the patient's first free slot with the clinician that
// starts at least demoVisitNotice from now: check-in is already open
// (service.CheckInWindow), so the call can be tried at once, and the
// visit is still ahead when the reminder sender first looks, so its
// reminder goes out (a slot starting in seconds would be past by then).
func bookNext(ctx context.Context, svc *service.Service, patientID, clinicianID string) error {
	from := time.Now().Add(demoVisitNotice)
	slots, err := svc.Slots(ctx, clinicianID, from, from.Add(24*time.Hour))
	if err != nil {
		return err
	}
	if len(slots) == 0 {
		return nil
	}
	_, err = svc.BookVisit(ctx, patientID, clinicianID, slots[0].Start, "Follow-up video visit (demo)")
	return err
}

// demoVisitNotice is how far ahead the demo's visits start at the least.
const demoVisitNotice = 20 * time.Minute

// Print writes the demo logins as a table, with the addresses to open on
// site, the server's public address.
func Print(w io.Writer, logins []Login, site string) {
	fmt.Fprintf(w, "\nDemo practices (fictional people), at %s/. Every password: %s\n", site, Password)
	fmt.Fprintf(w, "Clinic staff set up an authenticator app (TOTP) at first sign-in; patients sign in with the password.\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRACTICE\tROLE\tNAME\tEMAIL")
	for _, l := range logins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Practice, l.Role, l.Name, l.Email)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Video visits: Maria Lopez and Ava Johnson each had a visit booked, starting 20 to 35 minutes after the")
	fmt.Fprintln(w, "demo was first seeded. Sign in as the patient, open \"Your video visits\" (or book a new one: demo")
	fmt.Fprintln(w, "clinicians take 15-minute visits around the clock), check in; then, in another browser or a private")
	fmt.Fprintln(w, "window, sign in as their clinician (rivera@ or shah@), open the waiting room and admit them.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "New patients can register themselves on each clinic's page (without a mail relay, the emails")
	fmt.Fprintln(w, "confirming their address are written to the outbox directory in the data directory):")
	seen := map[string]bool{}
	for _, l := range logins {
		if l.PracticeID != "" && !seen[l.PracticeID] {
			seen[l.PracticeID] = true
			fmt.Fprintf(w, "  %s: %s/register/%s\n", l.Practice, site, l.PracticeID)
		}
	}
	fmt.Fprintln(w)
}
