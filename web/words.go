package web

// The words pages use for the codes the system keeps: visit states,
// roles, and (in the access history) audited actions, purposes and
// reasons. Codes stay in the database, the API and the audit log; a
// person reads these.

// visitStateWords names a visit's state as the schedule shows it.
var visitStateWords = map[string]string{
	"booked":    "Booked",
	"waiting":   "Checked in",
	"admitted":  "In call",
	"ended":     "Ended",
	"cancelled": "Cancelled",
}

// roleWords names a role in a sentence.
var roleWords = map[string]string{
	"patient":            "patient",
	"clinician":          "clinician",
	"staff":              "front desk",
	"practice_admin":     "administrator",
	"compliance_officer": "compliance officer",
	"platform_operator":  "platform operator",
}
