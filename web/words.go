package web

import (
	"strings"

	"haven"
	"haven/service"
)

// The words pages use for the codes the system keeps: visit states,
// roles, and audited actions, purposes and reasons. Codes stay in the
// database, the API and the audit log; a person reads these.

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

// deed is an audited action in words: what was done (past), and what was
// tried when it was refused (after "tried to").
type deed struct{ done, tried string }

// actionWords are the actions a patient's access history and the audit
// search show, as said about the patient's record ("your").
var actionWords = map[string]deed{
	"chart.read":                   {"opened your record", "open your record"},
	"chart.write":                  {"changed your record", "change your record"},
	"chart.write_contact":          {"changed your contact details", "change your contact details"},
	"patient.register":             {"registered you as a patient", "register you"},
	"patient.erase":                {"erased your record", "erase your record"},
	"careteam.read":                {"looked at your care team", "look at your care team"},
	"careteam.manage":              {"changed your care team", "change your care team"},
	"note.read":                    {"read a note in your record", "read a note in your record"},
	"note.write":                   {"wrote a note in your record", "write a note in your record"},
	"message.read":                 {"read your messages", "read your messages"},
	"message.send":                 {"sent a message", "send a message"},
	"message.triage":               {"saw or sorted your messages in the practice's inbox", "see your messages in the practice's inbox"},
	"message.notify":               {"emailed you that you have a new message", "email you about a new message"},
	"restrictions.read":            {"looked at your privacy limits", "look at your privacy limits"},
	"restrictions.write":           {"changed your privacy limits", "change your privacy limits"},
	"file.read":                    {"opened your files", "open your files"},
	"file.upload":                  {"added a file to your record", "add a file to your record"},
	"prescription.read":            {"read your prescriptions", "read your prescriptions"},
	"prescription.write":           {"signed or cancelled a prescription", "sign a prescription"},
	"prescription.draft":           {"drafted a prescription", "draft a prescription"},
	"prescription.transmit":        {"sent your prescription to your pharmacy", "send your prescription"},
	"prescription.renewal_request": {"asked for a prescription renewal", "ask for a renewal"},
	"lab.read":                     {"read your lab results", "read your lab results"},
	"lab.order":                    {"ordered or cancelled a lab test", "order a lab test"},
	"visit.book":                   {"booked a visit", "book a visit"},
	"visit.cancel":                 {"cancelled a visit", "cancel a visit"},
	"visit.reschedule":             {"moved a visit to another time", "move a visit"},
	"visit.read":                   {"looked at your visit", "look at your visit"},
	"visit.checkin":                {"checked in for your visit", "check in for your visit"},
	"visit.admit":                  {"let you into the call", "let you into the call"},
	"visit.join":                   {"joined the video call", "join the video call"},
	"visit.join_refused":           {"was refused entry to the video call", "join the video call"},
	"visit.leave":                  {"left the video call", "leave the video call"},
	"visit.end":                    {"ended the visit", "end the visit"},
	"visit.invite":                 {"invited someone to the video call", "invite someone to the video call"},
	"visit.cut":                    {"was disconnected from the video call", "stay in the video call"},
	"visit.remind":                 {"sent you a reminder of your visit", "send you a reminder"},
	"export.patient":               {"downloaded your whole record", "download your whole record"},
	"export.request":               {"made a copy of your whole record for your written request", "copy your whole record"},
	"access_request.manage":        {"recorded your written request for a copy of your record", "record a request for a copy of your record"},
	"audit.read_own":               {"looked at who accessed your record", "look at who accessed your record"},
	"breakglass.request":           {"opened your record in an emergency (break-glass)", "open your record in an emergency"},
	"legal_hold.place":             {"placed a legal hold on your record", "place a legal hold"},
	"legal_hold.lift":              {"lifted the legal hold on your record", "lift the legal hold"},
	"account.read":                 {"looked up your account", "look up your account"},
	"account.setup":                {"sent you the link to set up your account", "send you the account-setup link"},
	"account.register":             {"created your account", "create your account"},
	"account.password":             {"changed your password", "change your password"},
	"account.reset":                {"reset your password", "reset your password"},
	"account.reset_request":        {"asked for a password reset link", "ask for a password reset link"},
	"auth.login":                   {"signed in", "sign in"},
	"auth.logout":                  {"signed out", "sign out"},
	"auth.stepup":                  {"confirmed it was you", "confirm it was you"},
	"mfa.enrol":                    {"set up a second factor", "set up a second factor"},
	"mfa.remove":                   {"removed a second factor", "remove a second factor"},
	"mfa.reset":                    {"reset your second factor", "reset your second factor"},
	"mfa.recovery_issue":           {"made new recovery codes", "make new recovery codes"},
	"session.revoke":               {"signed out a session", "sign out a session"},
	"user.manage":                  {"looked at your account", "look at your account"},
	"user.disable":                 {"disabled or enabled your account", "disable your account"},
	"account.register_request":     {"asked for a registration link", "ask for a registration link"},
	"contact.verify":               {"checked whether an email came from the practice", "check whether an email came from the practice"},
	"contact.report":               {"reported a suspicious message", "report a suspicious message"},
}

// purposeWords say why, after the deed.
var purposeWords = map[string]string{
	"treatment":       "for your care",
	"payment":         "for billing",
	"operations":      "to run the practice",
	"patient_request": "",
	"break_glass":     "in an emergency",
	"security":        "to keep your account safe",
}

// refusalWords say why an access was refused.
var refusalWords = map[string]string{
	"not_on_care_team":    "not on your care team",
	"patient_restriction": "you barred them",
	"breakglass_expired":  "their emergency access had ended",
	"no_clinical_grant":   "their role has no clinical access",
	"role_not_permitted":  "their role may not do this",
	"mfa_required":        "no second factor",
	"step_up_required":    "they had not confirmed it was them",
	"other_practice":      "they are not of your practice",
	"not_found":           "they are not of your practice",
	"other_patient":       "it is not theirs",
	"training_lapsed":     "their security training had lapsed",
	"outside_network":     "they were outside the practice's networks",
}

// actionLabel is an action code as the audit search shows it: the deed,
// or the code itself when there are no words for it.
func actionLabel(code string) string {
	if d, ok := actionWords[code]; ok {
		return strings.Replace(d.done, "your ", "the patient's ", 1)
	}
	return code
}

// historyLine is one line of a patient's access history in words: who did
// what and why, "Dr. Rosa Rivera opened your record for your care", "You
// booked a visit".
func historyLine(e service.AccessEvent) string {
	who := e.ActorName
	if who == "" {
		who = "Someone"
	}
	d, ok := actionWords[e.Action]
	if !ok {
		d = deed{"did something with your record (" + e.Action + ")", "do something with your record (" + e.Action + ")"}
	}
	if e.Decision != "allow" {
		line := who + " tried to " + d.tried + " and was refused"
		if why := refusalWords[e.Reason]; why != "" {
			line += ": " + why
		}
		return line + "."
	}
	done := d.done
	if e.Action == "visit.invite" && e.Subject != "" {
		done = "invited " + e.Subject + " to the video call"
	}
	line := who + " " + done
	if why := purposeWords[e.Purpose]; why != "" && !e.Self {
		line += " " + why
	}
	return line + "."
}

// ruleWords name the detection rules of the compliance officer's alerts.
var ruleWords = map[string]string{
	"bulk_access":           "Many patients opened quickly",
	"repeated_denial":       "Refused again and again",
	"after_hours":           "Access outside working hours",
	"break_glass":           "Emergency access (break-glass)",
	"outside_probe":         "Asked from outside the practice",
	"vendor_egress_refused": "Sending to a vendor refused",
	"vendor_baa_expiring":   "A vendor's agreement ends soon",
	"suspicious_message":    "A patient reported a suspicious message",
}

// outcomeWords name an audited decision.
var outcomeWords = map[string]string{"allow": "Allowed", "deny": "Refused", "fail": "Failed"}

// fileKindWords name a file's stored type.
var fileKindWords = map[string]string{
	"image/jpeg": "Photo", "image/png": "Photo", "application/pdf": "PDF", "application/dicom": "DICOM image",
}

// paymentStateWords are a payment's states as the pages say them.
var paymentStateWords = map[string]string{
	haven.PaymentPending:  "Being confirmed by the card processor",
	haven.PaymentPaid:     "Paid",
	haven.PaymentFailed:   "Did not go through",
	haven.PaymentRefunded: "Refunded",
}
