package haven

// Restrictions are a patient's limits on who sees their record. Storage
// holds them sealed under the patient's key (Patient.Restrictions: a
// restricted category can itself be revealing); the service opens them
// only to hand them to policy, which enforces them.
type Restrictions struct {
	// BarredUsers are workforce members the patient has barred (a relative
	// or an ex-partner on the staff). A bar holds against every role,
	// relationship and break-glass grant: in an emergency another
	// clinician can act.
	BarredUsers []string
	// StaffFromMessages keeps front-desk staff out of the patient's
	// messages with their clinicians.
	StaffFromMessages bool
	// Categories are sensitive record categories the patient restricted.
	// A record in one is open only to workforce members the patient
	// consented to for that category, or under break-glass (the emergency
	// exception).
	Categories []string
	Consents   []CategoryConsent
}

// CategoryConsent lets one workforce member see one restricted category.
type CategoryConsent struct {
	UserID   string
	Category string
}
