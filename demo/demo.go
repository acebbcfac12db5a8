// Package demo seeds two demonstration practices so a newcomer can see the
// whole product, and the wall between tenants, on a fresh install. Its
// people are fictional. It goes through the service layer like any other
// caller, so demo data is sealed and audited exactly as real data is.
package demo

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"haven"
	"haven/service"
)

// Password is every demo account's password. It is printed at start; demo
// data is fictional and a demo install is not for real patients.
const Password = "harbor-lantern-clinic-2026"

// Login is one demo account as printed for the person trying Haven.
type Login struct {
	Practice string
	Role     haven.Role
	Name     string
	Email    string
}

type person struct {
	role  haven.Role
	name  string
	email string
}

type practice struct {
	name   string
	people []person
}

// practices are the demo tenants. Two of them, so isolation can be seen:
// nobody in one can reach anything of the other.
var practices = []practice{
	{"Riverside Family Clinic", []person{
		{haven.RolePracticeAdmin, "Alex Admin", "admin@riverside.example"},
		{haven.RoleComplianceOfficer, "Casey Compliance", "compliance@riverside.example"},
		{haven.RoleClinician, "Dr. Rosa Rivera", "rivera@riverside.example"},
		{haven.RoleClinician, "Dr. Sam Okafor", "okafor@riverside.example"},
		{haven.RoleStaff, "Jamie Front-Desk", "frontdesk@riverside.example"},
		{haven.RolePatient, "Maria Lopez", "maria.lopez@patients.example"},
		{haven.RolePatient, "John Chen", "john.chen@patients.example"},
	}},
	{"Lakeshore Pediatrics", []person{
		{haven.RolePracticeAdmin, "Morgan Admin", "admin@lakeshore.example"},
		{haven.RoleComplianceOfficer, "Quinn Compliance", "compliance@lakeshore.example"},
		{haven.RoleClinician, "Dr. Priya Shah", "shah@lakeshore.example"},
		{haven.RoleStaff, "Taylor Front-Desk", "frontdesk@lakeshore.example"},
		{haven.RolePatient, "Ava Johnson", "ava.johnson@patients.example"},
		{haven.RolePatient, "Noah Williams", "noah.williams@patients.example"},
	}},
}

// Seed creates the demo practices unless they exist, and returns the logins
// either way, so every `serve --demo` prints how to sign in.
func Seed(ctx context.Context, svc *service.Service) ([]Login, error) {
	existing, err := svc.PracticeNames(ctx)
	if err != nil {
		return nil, err
	}
	var logins []Login
	for _, p := range practices {
		for _, who := range p.people {
			logins = append(logins, Login{p.name, who.role, who.name, who.email})
		}
		if existing[p.name] {
			continue
		}
		pr, err := svc.CreatePractice(ctx, p.name)
		if err != nil {
			return nil, err
		}
		for _, who := range p.people {
			if _, err := svc.CreateUser(ctx, service.NewUser{PracticeID: pr.ID, Role: who.role,
				Email: who.email, Name: who.name, Password: Password}); err != nil {
				return nil, fmt.Errorf("demo user %s: %w", who.email, err)
			}
		}
	}
	return logins, nil
}

// Print writes the demo logins as a table.
func Print(w io.Writer, logins []Login) {
	fmt.Fprintf(w, "\nDemo practices (fictional people). Every password: %s\n\n", Password)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRACTICE\tROLE\tNAME\tEMAIL")
	for _, l := range logins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Practice, l.Role, l.Name, l.Email)
	}
	tw.Flush()
	fmt.Fprintln(w)
}
