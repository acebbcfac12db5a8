package web

import (
	"net/http"
	"strings"
	"time"

	"haven"
)

// The navigation: the one place that knows where each role goes. The
// layout (templates/layout.html) renders navFor's links on every page, so
// a person reaches everything their role has from any page, by links
// alone, starting at "/". A link here is a promise of a page the role can
// use; policy still decides every request behind it.

// navLink is one entry of the navigation.
type navLink struct {
	ID      string // the element id, for tests and skip links
	Href    string
	Label   string
	Current bool // the page shown is this link's
}

// navFor returns the links of a's role, or those of a visitor (nil a),
// with the one matching path marked current.
func navFor(a *haven.Actor, path string) []navLink {
	var links []navLink
	switch {
	case a == nil:
		links = []navLink{
			{ID: "nav-home", Href: "/", Label: "Home"},
			{ID: "nav-sign-in", Href: "/login", Label: "Sign in"},
			{ID: "nav-register", Href: "/register", Label: "New patient? Create an account"},
		}
	case a.Role == haven.RolePatient:
		links = []navLink{
			{ID: "nav-home", Href: "/app", Label: "Home"},
			{ID: "nav-record", Href: "/app/patients/" + a.UserID, Label: "My record"},
			{ID: "nav-visits", Href: "/app/visits", Label: "Visits"},
			{ID: "nav-messages", Href: "/app/messages", Label: "Messages"},
			{ID: "nav-prescriptions", Href: "/app/prescriptions", Label: "Prescriptions"},
			{ID: "nav-results", Href: "/app/results", Label: "Lab results"},
			{ID: "nav-files", Href: "/app/patients/" + a.UserID + "/files", Label: "Files"},
			{ID: "nav-payments", Href: "/app/payments", Label: "Payments"},
			{ID: "nav-history", Href: "/app/history", Label: "Who saw my record"},
			{ID: "nav-disclosures", Href: "/app/disclosures", Label: "Where my record was sent"},
			{ID: "nav-export", Href: "/app/export", Label: "Download my record"},
			{ID: "nav-security", Href: "/app/security", Label: "Security checklist"},
		}
	case a.Role == haven.RoleClinician:
		links = []navLink{
			{ID: "nav-home", Href: "/app", Label: "Today"},
			{ID: "nav-waiting-room", Href: "/app/waiting-room", Label: "Waiting room"},
			{ID: "nav-inbox", Href: "/app/inbox", Label: "Inbox"},
			{ID: "nav-patients", Href: "/app/patients", Label: "My patients"},
			{ID: "nav-results", Href: "/app/results", Label: "Lab results to review"},
			{ID: "nav-amendments", Href: "/app/amendments", Label: "Amendment requests"},
			{ID: "nav-training", Href: "/app/training", Label: "Security training"},
		}
	case a.Role == haven.RoleStaff:
		links = []navLink{
			{ID: "nav-home", Href: "/app", Label: "Schedule"},
			{ID: "nav-inbox", Href: "/app/inbox", Label: "Inbox"},
			{ID: "nav-patients", Href: "/app/patients", Label: "Patients"},
			{ID: "nav-register-patient", Href: "/app/patients/new", Label: "Register a patient"},
			{ID: "nav-lab-unmatched", Href: "/app/lab-unmatched", Label: "Lab results to match"},
			{ID: "nav-access-requests", Href: "/app/access-requests", Label: "Record copy requests"},
			{ID: "nav-training", Href: "/app/training", Label: "Security training"},
		}
	case a.Role == haven.RolePracticeAdmin:
		links = []navLink{
			{ID: "nav-home", Href: "/app", Label: "Home"},
			{ID: "nav-people", Href: "/app/admin/users", Label: "People"},
			{ID: "nav-care-teams", Href: "/app/care-teams", Label: "Care teams"},
			{ID: "nav-payments", Href: "/app/admin/payments", Label: "Prices and payments"},
			{ID: "nav-settings", Href: "/app/admin/settings", Label: "Settings"},
			{ID: "nav-vendors", Href: "/app/admin/vendors", Label: "Vendors"},
			{ID: "nav-apps", Href: "/app/admin/apps", Label: "Apps"},
			{ID: "nav-training", Href: "/app/training", Label: "Security training"},
		}
	case a.Role == haven.RoleComplianceOfficer:
		links = []navLink{
			{ID: "nav-home", Href: "/app", Label: "Home"},
			{ID: "nav-compliance", Href: "/app/compliance", Label: "Alerts and audit"},
			{ID: "nav-incidents", Href: "/app/incidents", Label: "Incidents"},
			{ID: "nav-report", Href: "/app/compliance/report", Label: "Evidence report"},
			{ID: "nav-amendments", Href: "/app/amendments", Label: "Amendment requests"},
			{ID: "nav-access-requests", Href: "/app/access-requests", Label: "Record copy requests"},
			{ID: "nav-vendors", Href: "/app/admin/vendors", Label: "Vendors"},
			{ID: "nav-training", Href: "/app/training", Label: "Security training"},
		}
	default:
		links = []navLink{{ID: "nav-home", Href: "/app", Label: "Home"}}
	}
	if a != nil {
		links = append(links, navLink{ID: "nav-account", Href: "/account", Label: "Account"})
	}
	// The longest link that is the path or a folder above it is current:
	// /app/patients/new is "Register a patient", not "Patients".
	best := -1
	for i, l := range links {
		if (path == l.Href || strings.HasPrefix(path, l.Href+"/")) && (best < 0 || len(l.Href) > len(links[best].Href)) {
			best = i
		}
	}
	if best >= 0 {
		links[best].Current = true
	}
	return links
}

// TimeZoneCookie holds the browser's own IANA time zone, which
// static/haven.js sets, so pages show times where the reader is. It holds
// nothing else and is not secret; a missing or unknown zone is UTC.
const TimeZoneCookie = "__Host-tz"

// zoneOf returns the reader's time zone: the cookie's, when it names a
// zone this server knows, or UTC.
func zoneOf(r *http.Request) *time.Location {
	c, err := r.Cookie(TimeZoneCookie)
	if err != nil || c.Value == "" || len(c.Value) > 64 || c.Value == "Local" {
		return time.UTC
	}
	for _, ch := range c.Value {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.ContainsRune("/_-+", ch)) {
			return time.UTC
		}
	}
	loc, err := time.LoadLocation(c.Value)
	if err != nil {
		return time.UTC
	}
	return loc
}
