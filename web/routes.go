package web

import (
	"net/http"

	"haven"
	"haven/policy"
	"haven/service"
)

// routes is every route Haven serves, in one table: its ServeMux pattern,
// what kind of answer it gives, who may call it, the part of the server it
// belongs to, and its handler. The server registers exactly these (see
// register), the OpenAPI test holds web/openapi.yaml against the API rows,
// and adding a route means adding one line here.
//
// Who may call a route:
//   - anyone: no session needed (sign-in, public pages, assets);
//   - signedIn: any session; the service decides what it may see;
//   - may(action): a session, for what policy's action is about; the roles
//     column is policy's (policy.Permits), and policy still decides each
//     request, so every refusal is the service's, and audited;
//   - .evenChallenged(): a session challenged to confirm it is its owner
//     (it moved to another network or device) may still reach the route:
//     the step-up itself, signing out, the session's status.
//
// Web checks only the first half of that: a route that needs a session
// answers a request without one (401 for the API, the sign-in page for
// pages) before its handler runs. Roles are never checked here.
var routes = []route{
	// Health, metrics, assets and the API's description.
	{"GET /{$}", html, anyone, core, (*Server).handleHome, 0},
	{"GET /healthz", ops, anyone, core, (*Server).handleHealthz, 0},
	{"GET /readyz", ops, anyone, core, (*Server).handleReadyz, 0},
	{"GET /metrics", ops, anyone, core, (*Server).handleMetrics, 0}, // a bearer token (metrics.go)
	{"GET /static/", asset, anyone, core, (*Server).handleStatic, 0},
	{"GET " + OpenAPIPath, api, anyone, core, (*Server).handleOpenAPI, 0},

	// Signing in and out, resets, invitations (auth_pages.go).
	{"GET /login", html, anyone, signin, (*Server).loginPage, 0},
	{"POST /login", html, anyone, signin, (*Server).login, 0},
	{"POST /login/choose", html, anyone, signin, (*Server).choose, 0},
	{"GET /login/mfa", html, anyone, signin, (*Server).mfaPage, 0},
	{"POST /login/mfa", html, anyone, signin, (*Server).mfa, 0},
	{"POST /login/enrol", html, anyone, signin, (*Server).enrol, 0},
	{"GET /logout", html, anyone.evenChallenged(), signin, (*Server).logoutPage, 0},
	{"POST /logout", html, anyone.evenChallenged(), signin, (*Server).logout, 0},
	{"GET /reset", html, anyone, signin, (*Server).resetRequestPage, 0},
	{"POST /reset", html, anyone, signin, (*Server).resetRequest, 0},
	{"GET /reset/{token}", html, anyone, signin, (*Server).resetPage, 0},
	{"POST /reset/{token}", html, anyone, signin, (*Server).reset, 0},
	{"GET /invite/{token}", html, anyone, signin, (*Server).invitePage, 0},
	{"POST /invite/{token}", html, anyone, signin, (*Server).acceptInvite, 0},

	// A patient's own registration (auth_register.go).
	{"GET /register", html, anyone, signin, (*Server).registerList, 0},
	{"GET /register/{practice}", html, anyone, signin, (*Server).registerPage, 0},
	{"POST /register/{practice}", html, anyone, signin, (*Server).registerRequest, 0},
	{"GET /register/{practice}/{token}", html, anyone, signin, (*Server).registerLinkPage, 0},
	{"POST /register/{practice}/{token}", html, anyone, signin, (*Server).registerComplete, 0},

	// The signed-in home and the account (auth_account.go).
	{"GET /app", html, signedIn, signin, (*Server).app, 0},
	{"GET /account", html, signedIn, signin, (*Server).account, 0},
	{"POST /account/password", html, signedIn, signin, (*Server).changePassword, 0},
	{"POST /account/sessions/{id}/revoke", html, signedIn, signin, (*Server).revokeSession, 0},
	{"POST /account/sessions/revoke-others", html, signedIn, signin, (*Server).revokeOthers, 0},
	{"GET /account/totp", html, signedIn, signin, (*Server).totpPage, 0},
	{"POST /account/totp", html, signedIn, signin, (*Server).confirmTOTP, 0},
	{"POST /account/totp/remove", html, signedIn, signin, (*Server).removeTOTP, 0},
	{"POST /account/recovery-codes", html, signedIn, signin, (*Server).recoveryCodes, 0},
	{"GET /account/step-up", html, signedIn.evenChallenged(), signin, (*Server).stepUpPage, 0},
	{"POST /account/step-up", html, signedIn.evenChallenged(), signin, (*Server).stepUp, 0},

	// The session API (auth_api.go).
	{"POST /api/v1/session", api, anyone, signin, (*Server).apiLogin, 0},
	{"POST /api/v1/session/mfa", api, anyone, signin, (*Server).apiMFA, 0},
	{"POST /api/v1/session/enrol", api, anyone, signin, (*Server).apiEnrol, 0},
	{"POST /api/v1/session/enrol/confirm", api, anyone, signin, (*Server).apiEnrolConfirm, 0},
	{"GET /api/v1/session", api, signedIn, signin, (*Server).apiWhoAmI, 0},
	{"DELETE /api/v1/session", api, signedIn.evenChallenged(), signin, (*Server).apiLogout, 0},
	{"GET /api/v1/session/status", api, signedIn.evenChallenged(), signin, (*Server).apiStatus, 0},
	{"POST /api/v1/session/keepalive", api, signedIn, signin, (*Server).apiKeepAlive, 0},
	{"POST /api/v1/session/step-up", api, signedIn.evenChallenged(), signin, (*Server).apiStepUp, 0},

	// Account administration, API and pages (auth_admin.go, admin_pages.go).
	{"GET /api/v1/invitations", api, may(policy.UserManage), signin, (*Server).apiInvitations, 0},
	{"POST /api/v1/invitations", api, may(policy.UserManage), signin, (*Server).apiInvite, 0},
	{"POST /api/v1/users/{id}/disable", api, may(policy.UserManage), signin, (*Server).apiDisableUser, 0},
	{"POST /api/v1/users/{id}/enable", api, may(policy.UserManage), signin, (*Server).apiEnableUser, 0},
	{"POST /api/v1/users/{id}/mfa/reset", api, may(policy.MFAReset), signin, (*Server).apiResetMFA, 0},
	{"POST /api/v1/patients/{id}/account-setup", api, may(policy.ContactWrite), signin, (*Server).apiAccountSetup, 0},
	{"GET /app/admin/users", html, may(policy.UserManage), signin, (*Server).adminUsers, 0},
	{"GET /app/admin/users/{id}", html, may(policy.UserManage), signin, (*Server).adminUser, 0},
	{"POST /app/admin/users/{id}/disable", html, may(policy.UserManage), signin, (*Server).adminDisableUser, 0},
	{"POST /app/admin/users/{id}/enable", html, may(policy.UserManage), signin, (*Server).adminEnableUser, 0},
	{"POST /app/admin/users/{id}/mfa-reset", html, may(policy.MFAReset), signin, (*Server).adminResetMFA, 0},
	{"POST /app/admin/users/{id}/account-setup", html, may(policy.ContactWrite), signin, (*Server).adminSendSetup, 0},
	{"POST /app/admin/invitations", html, may(policy.UserManage), signin, (*Server).adminInvite, 0},
	{"POST /app/admin/patients/find", html, may(policy.UserManage), signin, (*Server).adminFindPatient, 0},
	{"GET /app/admin/settings", html, may(policy.PracticeSettings), chart, (*Server).pageSettings, 0},
	{"GET /app/admin/formulary", html, may(policy.PracticeSettings), chart, (*Server).pageFormulary, 0},
	{"POST /app/admin/formulary", html, may(policy.PracticeSettings), chart, (*Server).pageImportFormulary, maxFormularyUpload},
	{"POST /app/admin/settings", html, may(policy.PracticeSettings), chart, (*Server).pageSaveSettings, 0},

	// Prescriptions, allergies and the formulary: the API and the pages
	// (prescriptions.go).
	{"GET /api/v1/formulary", api, signedIn, chart, (*Server).apiFormulary, 0},
	{"POST /api/v1/formulary", api, may(policy.PracticeSettings), chart, (*Server).apiImportFormulary, 0},
	{"GET /api/v1/pharmacies", api, may(policy.PrescriptionDraft), chart, (*Server).apiPharmacies, 0},
	{"GET /api/v1/patients/{id}/allergies", api, may(policy.ChartRead), chart, (*Server).apiAllergies, 0},
	{"POST /api/v1/patients/{id}/allergies", api, may(policy.ChartWrite), chart, (*Server).apiAddAllergy, 0},
	{"DELETE /api/v1/patients/{id}/allergies/{allergy}", api, may(policy.ChartWrite), chart, (*Server).apiRemoveAllergy, 0},
	{"GET /api/v1/patients/{id}/prescriptions", api, may(policy.PrescriptionRead), chart, (*Server).apiPatientPrescriptions, 0},
	{"POST /api/v1/patients/{id}/prescriptions", api, may(policy.PrescriptionDraft), chart, (*Server).apiDraftPrescription, 0},
	{"POST /api/v1/prescriptions", api, may(policy.PrescriptionDraft), chart, (*Server).apiDraftPrescription, 0},
	{"GET /api/v1/prescriptions/{id}", api, may(policy.PrescriptionRead), chart, (*Server).apiPrescription, 0},
	{"POST /api/v1/prescriptions/{id}/sign", api, may(policy.PrescriptionWrite), chart, (*Server).apiSignPrescription, 0},
	{"POST /api/v1/prescriptions/{id}/cancel", api, may(policy.PrescriptionWrite), chart, (*Server).apiCancelPrescription, 0},
	{"POST /api/v1/prescriptions/{id}/renewal-request", api, may(policy.PrescriptionRead), chart, (*Server).apiRenewalRequest, 0},
	{"POST /api/v1/prescriptions/{id}/renew", api, may(policy.PrescriptionDraft), chart, (*Server).apiRenewPrescription, 0},
	// Workforce security training: each member's own modules and quizzes,
	// and who is due (training.go).
	{"GET /api/v1/training", api, may(policy.TrainingTake), chart, (*Server).apiTraining, 0},
	{"POST /api/v1/training/{module}", api, may(policy.TrainingTake), chart, (*Server).apiTakeTraining, 0},
	{"GET /api/v1/training/report", api, may(policy.TrainingReport), chart, (*Server).apiTrainingReport, 0},
	{"GET /app/training", html, may(policy.TrainingTake), chart, (*Server).pageTraining, 0},
	{"GET /app/training/report", html, may(policy.TrainingReport), chart, (*Server).pageTrainingReport, 0},
	{"GET /app/training/{module}", html, may(policy.TrainingTake), chart, (*Server).pageTrainingModule, 0},
	{"POST /app/training/{module}", html, may(policy.TrainingTake), chart, (*Server).pageTakeTraining, 0},
	// The patient's side of security: her checklist (checklist.go), and
	// checking an email's code or reporting a suspicious message
	// (contact.go).
	{"GET /app/security", html, may(policy.ContactVerify), signin, (*Server).pageChecklist, 0},
	{"GET /account/check-message", html, may(policy.ContactVerify), chart, (*Server).pageCheckMessage, 0},
	{"POST /account/check-message", html, may(policy.ContactVerify), chart, (*Server).pagePostCheckMessage, 0},
	{"POST /account/report-message", html, may(policy.ContactVerify), chart, (*Server).pageReportMessage, 0},
	{"POST /api/v1/contact-codes/check", api, may(policy.ContactVerify), chart, (*Server).apiCheckContactCode, 0},
	{"POST /api/v1/contact-codes/report", api, may(policy.ContactVerify), chart, (*Server).apiReportMessage, 0},

	// Lab orders and the lab catalogue (labs.go).
	{"GET /api/v1/lab-catalogue", api, signedIn, chart, (*Server).apiLabCatalogue, 0},
	{"POST /api/v1/lab-catalogue", api, may(policy.PracticeSettings), chart, (*Server).apiImportLabCatalogue, 0},
	{"GET /api/v1/labs", api, may(policy.LabOrder), chart, (*Server).apiLabs, 0},
	{"POST /api/v1/lab-orders", api, may(policy.LabOrder), chart, (*Server).apiOrderLabs, 0},
	{"GET /api/v1/lab-orders/{id}", api, may(policy.LabRead), chart, (*Server).apiLabOrder, 0},
	{"POST /api/v1/lab-orders/{id}/cancel", api, may(policy.LabOrder), chart, (*Server).apiCancelLabOrder, 0},
	{"GET /api/v1/patients/{id}/lab-orders", api, may(policy.LabRead), chart, (*Server).apiPatientLabOrders, 0},
	{"POST /api/v1/labs/{id}/interface", api, may(policy.VendorManage), chart, (*Server).apiSetLabInterface, 0},
	// Results in from labs (the integration token is the sender's
	// credential) and out to clinicians and patients (labs.go).
	{"POST /api/v1/hl7", api, anyone, chart, (*Server).apiReceiveHL7, 0},
	{"GET /api/v1/results", api, may(policy.LabRead), chart, (*Server).apiResults, 0},
	{"GET /api/v1/results/{id}", api, may(policy.LabRead), chart, (*Server).apiResult, 0},
	{"POST /api/v1/results/{id}/review", api, may(policy.LabOrder), chart, (*Server).apiReviewResult, 0},
	{"GET /api/v1/patients/{id}/results", api, may(policy.LabRead), chart, (*Server).apiPatientResults, 0},
	{"GET /api/v1/lab-unmatched", api, may(policy.PatientSearch), chart, (*Server).apiUnmatchedResults, 0},
	{"POST /api/v1/lab-unmatched/{id}/match", api, may(policy.PatientSearch), chart, (*Server).apiMatchResult, 0},
	{"GET /app/patients/{id}/labs/new", html, may(policy.LabOrder), chart, (*Server).pageOrderLabs, 0},
	{"POST /app/patients/{id}/lab-orders", html, may(policy.LabOrder), chart, (*Server).pagePlaceLabOrder, 0},
	{"POST /app/lab-orders/{id}/cancel", html, may(policy.LabOrder), chart, (*Server).pageCancelLabOrder, 0},
	{"GET /app/results", html, may(policy.LabRead), chart, (*Server).pageResults, 0},
	{"GET /app/results/{id}", html, may(policy.LabRead), chart, (*Server).pageResult, 0},
	{"POST /app/results/{id}/review", html, may(policy.LabOrder), chart, (*Server).pageReviewResult, 0},
	{"GET /app/lab-unmatched", html, may(policy.PatientSearch), chart, (*Server).pageUnmatched, 0},
	{"POST /app/lab-unmatched/{id}/match", html, may(policy.PatientSearch), chart, (*Server).pageMatchResult, 0},
	{"GET /app/prescriptions", html, may(policy.PrescriptionRead), chart, (*Server).pageMyPrescriptions, 0},
	{"GET /app/prescriptions/{id}", html, may(policy.PrescriptionRead), chart, (*Server).pagePrescription, 0},
	{"POST /app/prescriptions/{id}/sign", html, may(policy.PrescriptionWrite), chart, (*Server).pageSignPrescription, 0},
	{"POST /app/prescriptions/{id}/cancel", html, may(policy.PrescriptionWrite), chart, (*Server).pageCancelPrescription, 0},
	{"POST /app/prescriptions/{id}/renewal-request", html, may(policy.PrescriptionRead), chart, (*Server).pageRenewalRequest, 0},
	{"POST /app/prescriptions/{id}/renew", html, may(policy.PrescriptionDraft), chart, (*Server).pageRenewPrescription, 0},
	{"GET /app/patients/{id}/prescribe", html, may(policy.PrescriptionDraft), chart, (*Server).pagePrescribe, 0},
	{"POST /app/patients/{id}/prescriptions", html, may(policy.PrescriptionDraft), chart, (*Server).pageDraftPrescription, 0},
	{"POST /app/patients/{id}/allergies", html, may(policy.ChartWrite), chart, (*Server).pageAddAllergy, 0},
	{"POST /app/patients/{id}/allergies/{allergy}/remove", html, may(policy.ChartWrite), chart, (*Server).pageRemoveAllergy, 0},

	// The vendor registry, API and page (vendors.go).
	{"GET /api/v1/vendors", api, may(policy.VendorRead), chart, (*Server).apiVendors, 0},
	{"POST /api/v1/vendors", api, may(policy.VendorManage), chart, (*Server).apiAddVendor, 0},
	{"GET /api/v1/vendors/{id}", api, may(policy.VendorRead), chart, (*Server).apiVendor, 0},
	{"PUT /api/v1/vendors/{id}", api, may(policy.VendorManage), chart, (*Server).apiUpdateVendor, 0},
	{"POST /api/v1/vendors/{id}/retire", api, may(policy.VendorManage), chart, (*Server).apiRetireVendor, 0},
	{"GET /app/admin/vendors", html, may(policy.VendorRead), chart, (*Server).pageVendors, 0},
	{"POST /app/admin/vendors", html, may(policy.VendorManage), chart, (*Server).pageSaveVendor, 0},
	{"POST /app/admin/vendors/{id}/retire", html, may(policy.VendorManage), chart, (*Server).pageRetireVendor, 0},
	// A lab's results interface, on the admin's pages (labs_admin.go).
	{"GET /app/admin/labs/{id}/interface", html, may(policy.VendorManage), chart, (*Server).pageLabInterface, 0},
	{"POST /app/admin/labs/{id}/interface", html, may(policy.VendorManage), chart, (*Server).pageSetLabInterface, 0},
	{"POST /app/admin/labs/{id}/interface/revoke", html, may(policy.VendorManage), chart, (*Server).pageRevokeLabInterface, 0},

	// Passkeys and security keys (auth_webauthn.go). The options routes
	// answer JSON to static/webauthn.js; the forms carry its answer back.
	{"POST /login/passkey/options", api, anyone, passkeys, (*Server).passkeyLoginOptions, 0},
	{"POST /login/passkey", html, anyone, passkeys, (*Server).passkeyLogin, 0},
	{"POST /login/mfa/webauthn/options", api, anyone, passkeys, (*Server).passkeyMFAOptions, 0},
	{"POST /login/mfa/webauthn", html, anyone, passkeys, (*Server).passkeyMFA, 0},
	{"POST /login/enrol/passkey/options", api, anyone, passkeys, (*Server).passkeyEnrolOptions, 0},
	{"POST /login/enrol/passkey", html, anyone, passkeys, (*Server).passkeyEnrol, 0},
	{"POST /account/step-up/webauthn/options", api, signedIn.evenChallenged(), passkeys, (*Server).passkeyStepUpOptions, 0},
	{"POST /account/step-up/webauthn", html, signedIn.evenChallenged(), passkeys, (*Server).passkeyStepUp, 0},
	{"GET /account/passkeys", html, signedIn, passkeys, (*Server).passkeyList, 0},
	{"POST /account/passkeys/options", api, signedIn, passkeys, (*Server).passkeyRegisterOptions, 0},
	{"POST /account/passkeys", html, signedIn, passkeys, (*Server).passkeyRegister, 0},
	{"POST /account/passkeys/{id}/remove", html, signedIn, passkeys, (*Server).passkeyRemove, 0},

	// Charts, files, care teams, break-glass, the audit log and the
	// compliance officer's tools: the API (chart.go).
	{"GET /api/v1/patients", api, may(policy.PatientSearch), chart, (*Server).listPatients, 0},
	{"POST /api/v1/patients", api, may(policy.PatientRegister), chart, (*Server).registerPatient, 0},
	{"GET /api/v1/patients/{id}", api, may(policy.ChartRead), chart, (*Server).getChart, 0},
	{"PATCH /api/v1/patients/{id}", api, may(policy.ContactWrite), chart, (*Server).updateChart, 0},
	{"GET /api/v1/patients/{id}/care-team", api, may(policy.CareTeamRead), chart, (*Server).getCareTeam, 0},
	{"POST /api/v1/patients/{id}/care-team", api, may(policy.CareTeamManage), chart, (*Server).addCareTeam, 0},
	{"DELETE /api/v1/patients/{id}/care-team/{user}", api, may(policy.CareTeamManage), chart, (*Server).removeCareTeam, 0},
	{"POST /api/v1/patients/{id}/break-glass", api, may(policy.BreakGlassRequest), chart, (*Server).breakGlass, 0},
	{"GET /api/v1/patients/{id}/access-history", api, may(policy.AuditReadOwn), chart, (*Server).accessHistory, 0},
	{"POST /api/v1/patients/{id}/files", api, may(policy.FileUpload), chart, (*Server).uploadFile, service.MaxFileSize},
	{"GET /api/v1/patients/{id}/files", api, may(policy.FileRead), chart, (*Server).listFiles, 0},
	{"GET /api/v1/files/{id}", api, may(policy.FileRead), chart, (*Server).downloadFile, 0},
	{"GET /api/v1/files/{id}/renditions", api, may(policy.FileRead), chart, (*Server).fileRenditions, 0},
	{"GET /api/v1/files/{id}/renditions/{kind}", api, may(policy.FileRead), chart, (*Server).downloadRendition, 0},
	{"GET /api/v1/audit/events", api, may(policy.AuditSearch), chart, (*Server).searchAudit, 0},
	{"GET /api/v1/audit/proofs", api, signedIn, chart, (*Server).auditProofs, 0},
	{"GET /api/v1/practice/settings", api, signedIn, chart, (*Server).getSettings, 0},
	{"PUT /api/v1/practice/settings", api, may(policy.PracticeSettings), chart, (*Server).putSettings, 0},
	{"GET /api/v1/alerts", api, may(policy.AlertReview), chart, (*Server).alerts, 0},
	{"POST /api/v1/alerts/{id}/close", api, may(policy.AlertReview), chart, (*Server).closeAlert, 0},
	{"GET /api/v1/break-glass/queue", api, may(policy.BreakGlassReview), chart, (*Server).breakGlassQueue, 0},
	{"POST /api/v1/break-glass/{id}/review", api, may(policy.BreakGlassReview), chart, (*Server).reviewBreakGlass, 0},

	// The same as pages (chart_pages.go).
	{"GET /app/patients", html, may(policy.PatientSearch), chart, (*Server).pagePatients, 0},
	{"GET /app/patients/new", html, may(policy.PatientRegister), chart, (*Server).pageNewPatient, 0},
	{"POST /app/patients", html, may(policy.PatientRegister), chart, (*Server).pageRegisterPatient, 0},
	{"GET /app/patients/{id}", html, may(policy.ChartRead), chart, (*Server).pageChart, 0},
	{"GET /app/patients/{id}/files", html, may(policy.FileRead), chart, (*Server).pagePatientFiles, 0},
	{"POST /app/patients/{id}/files", html, may(policy.FileUpload), chart, (*Server).pagePatientUpload, service.MaxFileSize},
	{"GET /app/files/{id}", html, may(policy.FileRead), chart, (*Server).pageFile, 0},
	{"POST /app/patients/{id}/break-glass", html, may(policy.BreakGlassRequest), chart, (*Server).pageBreakGlass, 0},
	{"GET /app/history", html, may(policy.AuditReadOwn), chart, (*Server).pageHistory, 0},
	{"GET /app/files", html, may(policy.FileRead), chart, (*Server).pageFiles, 0},
	{"POST /app/files", html, may(policy.FileUpload), chart, (*Server).pageUpload, service.MaxFileSize},
	{"GET /app/compliance", html, may(policy.AuditSearch), chart, (*Server).pageCompliance, 0},
	{"GET /app/compliance/report", html, may(policy.AuditVerify), chart, (*Server).pageComplianceReport, 0},
	{"GET /app/compliance/report/{format}", html, may(policy.AuditVerify), chart, (*Server).pageDownloadReport, 0},
	{"GET /api/v1/compliance/report", api, may(policy.AuditVerify), chart, (*Server).apiComplianceReport, 0},
	{"POST /app/compliance/patient", html, may(policy.PatientFind), chart, (*Server).pageCompliancePatient, 0},
	{"POST /app/compliance/alerts/{id}/close", html, may(policy.AlertReview), chart, (*Server).pageCloseAlert, 0},
	{"POST /app/compliance/break-glass/{id}/review", html, may(policy.BreakGlassReview), chart, (*Server).pageReview, 0},
	{"GET /app/care-teams", html, may(policy.CareTeamManage), chart, (*Server).pageCareTeams, 0},
	{"POST /app/care-teams", html, may(policy.CareTeamManage), chart, (*Server).pageCareTeamChange, 0},
	{"POST /app/care-teams/find", html, may(policy.PatientFind), chart, (*Server).pageCareTeamFind, 0},

	// A patient's rights over her record: the download of her whole
	// record and the accounting of disclosures (export.go).
	{"GET /api/v1/patients/{id}/export", api, may(policy.ExportPatient), chart, (*Server).apiExport, 0},
	{"GET /api/v1/patients/{id}/disclosures", api, may(policy.AuditReadOwn), chart, (*Server).apiDisclosures, 0},
	{"GET /app/export", html, may(policy.ExportPatient), chart, (*Server).pageExport, 0},
	{"GET /app/disclosures", html, may(policy.AuditReadOwn), chart, (*Server).pageDisclosures, 0},
	// Incidents and breach notification (incidents.go).
	{"GET /api/v1/incidents", api, may(policy.IncidentManage), chart, (*Server).apiIncidents, 0},
	{"POST /api/v1/incidents", api, may(policy.IncidentManage), chart, (*Server).apiOpenIncident, 0},
	{"GET /api/v1/incidents/{id}", api, may(policy.IncidentManage), chart, (*Server).apiIncident, 0},
	{"PUT /api/v1/incidents/{id}/scope", api, may(policy.IncidentManage), chart, (*Server).apiScopeIncident, 0},
	{"GET /api/v1/incidents/{id}/affected", api, may(policy.IncidentManage), chart, (*Server).apiIncidentAffected, 0},
	{"POST /api/v1/incidents/{id}/contain", api, may(policy.IncidentContain), chart, (*Server).apiContainIncident, 0},
	{"PUT /api/v1/incidents/{id}/assessment", api, may(policy.IncidentManage), chart, (*Server).apiAssessIncident, 0},
	{"POST /api/v1/incidents/{id}/decision", api, may(policy.IncidentManage), chart, (*Server).apiDecideIncident, 0},
	{"POST /api/v1/incidents/{id}/letters", api, may(policy.IncidentManage), chart, (*Server).apiDraftIncidentLetters, 0},
	{"GET /api/v1/incidents/{id}/letters", api, may(policy.IncidentManage), chart, (*Server).apiIncidentLetters, 0},
	{"GET /api/v1/incident-letters/{id}", api, may(policy.IncidentLetter), chart, (*Server).apiIncidentLetter, 0},
	{"POST /api/v1/incident-letters/{id}/state", api, may(policy.IncidentLetter), chart, (*Server).apiIncidentLetterState, 0},
	{"GET /app/incidents", html, may(policy.IncidentManage), chart, (*Server).pageIncidents, 0},
	{"POST /app/incidents", html, may(policy.IncidentManage), chart, (*Server).pageOpenIncident, 0},
	{"GET /app/incidents/{id}", html, may(policy.IncidentManage), chart, (*Server).pageIncident, 0},
	{"POST /app/incidents/{id}/scope", html, may(policy.IncidentManage), chart, (*Server).pageScopeIncident, 0},
	{"POST /app/incidents/{id}/contain", html, may(policy.IncidentContain), chart, (*Server).pageContainIncident, 0},
	{"POST /app/incidents/{id}/assessment", html, may(policy.IncidentManage), chart, (*Server).pageAssessIncident, 0},
	{"POST /app/incidents/{id}/decision", html, may(policy.IncidentManage), chart, (*Server).pageDecideIncident, 0},
	{"POST /app/incidents/{id}/letters", html, may(policy.IncidentManage), chart, (*Server).pageDraftIncidentLetters, 0},
	{"GET /app/incident-letters/{id}", html, may(policy.IncidentLetter), chart, (*Server).pageIncidentLetter, 0},
	{"POST /app/incident-letters/{id}/state", html, may(policy.IncidentLetter), chart, (*Server).pageIncidentLetterState, 0},

	// Written requests for a copy (access_requests.go).
	{"GET /api/v1/access-requests", api, may(policy.AccessRequestQueue), chart, (*Server).apiAccessRequests, 0},
	{"POST /api/v1/access-requests", api, may(policy.AccessRequestManage), chart, (*Server).apiRecordAccessRequest, 0},
	{"GET /api/v1/access-requests/{id}/export", api, may(policy.ExportForRequest), chart, (*Server).apiFulfilAccessRequest, 0},
	{"GET /app/access-requests", html, may(policy.AccessRequestQueue), chart, (*Server).pageAccessRequests, 0},
	{"POST /app/patients/{id}/access-requests", html, may(policy.AccessRequestManage), chart, (*Server).pageRecordAccessRequest, 0},
	{"POST /app/access-requests/{id}/export", html, may(policy.ExportForRequest), chart, (*Server).pageFulfilAccessRequest, 0},

	// Secure messaging: conversations, the practice's inbox and its
	// triage, live updates, and a patient's privacy limits; the API
	// (messages.go) and the pages (messages_pages.go). A visit's
	// waiting-room thread is the thread with the visit's id.
	{"GET /api/v1/threads", api, may(policy.MessageRead), chart, (*Server).apiThreads, 0},
	{"POST /api/v1/threads", api, may(policy.MessageSend), chart, (*Server).apiStartThread, 0},
	{"GET /api/v1/threads/watch", api, may(policy.MessageRead), chart, (*Server).apiWatchThreads, 0},
	{"GET /api/v1/threads/{id}", api, may(policy.MessageRead), chart, (*Server).apiThread, 0},
	{"POST /api/v1/threads/{id}/messages", api, may(policy.MessageSend), chart, (*Server).apiReply, 0},
	{"GET /api/v1/threads/{id}/watch", api, may(policy.MessageRead), chart, (*Server).apiWatchThread, 0},
	{"GET /api/v1/threads/{id}/assignees", api, may(policy.MessageTriage), chart, (*Server).apiAssignees, 0},
	{"POST /api/v1/threads/{id}/assign", api, may(policy.MessageTriage), chart, (*Server).apiAssign, 0},
	{"POST /api/v1/threads/{id}/done", api, may(policy.MessageTriage), chart, (*Server).apiDone, 0},
	{"GET /api/v1/restrictions", api, may(policy.RestrictionsRead), chart, (*Server).apiRestrictions, 0},
	{"PUT /api/v1/restrictions", api, may(policy.RestrictionsWrite), chart, (*Server).apiSetRestrictions, 0},
	{"GET /api/v1/restrictions/people", api, may(policy.RestrictionsRead), chart, (*Server).apiRestrictablePeople, 0},
	{"GET /app/messages", html, may(policy.MessageRead), chart, (*Server).pageMessages, 0},
	{"GET /app/messages/new", html, may(policy.MessageSend), chart, (*Server).pageNewMessage, 0},
	{"POST /app/messages", html, may(policy.MessageSend), chart, (*Server).pageStartThread, 0},
	{"GET /app/messages/{id}", html, may(policy.MessageRead), chart, (*Server).pageThread, 0},
	{"POST /app/messages/{id}/reply", html, may(policy.MessageSend), chart, (*Server).pageReply, service.MaxFileSize},
	{"POST /app/messages/{id}/assign", html, may(policy.MessageTriage), chart, (*Server).pageAssign, 0},
	{"POST /app/messages/{id}/done", html, may(policy.MessageTriage), chart, (*Server).pageDone, 0},
	{"GET /app/inbox", html, may(policy.MessageInbox), chart, (*Server).pageInbox, 0},
	{"GET /account/restrictions", html, may(policy.RestrictionsRead), chart, (*Server).pageRestrictions, 0},
	{"POST /account/restrictions", html, may(policy.RestrictionsWrite), chart, (*Server).pageSetRestrictions, 0},
	{"POST /account/restrictions/find", html, may(policy.RestrictionsRead), chart, (*Server).pageFindRestrictable, 0},

	// Visit notes and amendment requests: the API (notes.go) and the
	// pages (notes_pages.go).
	{"GET /api/v1/visits/{id}/note", api, may(policy.NoteRead), chart, (*Server).apiNote, 0},
	{"PUT /api/v1/visits/{id}/note", api, may(policy.NoteWrite), chart, (*Server).apiSaveNote, 0},
	{"POST /api/v1/visits/{id}/note/sign", api, may(policy.NoteSign), chart, (*Server).apiSignNote, 0},
	{"POST /api/v1/visits/{id}/note/addenda", api, may(policy.NoteSign), chart, (*Server).apiAddendum, 0},
	{"GET /api/v1/patients/{id}/notes", api, may(policy.NoteRead), chart, (*Server).apiPatientNotes, 0},
	{"GET /api/v1/patients/{id}/amendments", api, may(policy.AmendmentRead), chart, (*Server).apiPatientAmendments, 0},
	{"GET /api/v1/amendments", api, may(policy.AmendmentQueue), chart, (*Server).apiAmendments, 0},
	{"POST /api/v1/amendments", api, may(policy.AmendmentRequest), chart, (*Server).apiRequestAmendment, 0},
	{"GET /api/v1/amendments/{id}", api, may(policy.AmendmentRead), chart, (*Server).apiAmendment, 0},
	{"POST /api/v1/amendments/{id}/decision", api, may(policy.AmendmentDecide), chart, (*Server).apiDecideAmendment, 0},
	{"POST /api/v1/amendments/{id}/extension", api, may(policy.AmendmentDecide), chart, (*Server).apiExtendAmendment, 0},
	{"POST /api/v1/amendments/{id}/disagreement", api, may(policy.AmendmentRequest), chart, (*Server).apiDisagree, 0},
	{"GET /app/visits/{id}/note", html, may(policy.NoteRead), chart, (*Server).pageNote, 0},
	{"POST /app/visits/{id}/note", html, may(policy.NoteWrite), chart, (*Server).pageSaveNote, 0},
	{"POST /app/visits/{id}/note/sign", html, may(policy.NoteSign), chart, (*Server).pageSignNote, 0},
	{"POST /app/visits/{id}/note/addenda", html, may(policy.NoteSign), chart, (*Server).pageAddendum, 0},
	{"GET /app/record", html, signedIn, chart, (*Server).pageRecord, 0},
	{"GET /app/amendments", html, may(policy.AmendmentQueue), chart, (*Server).pageAmendments, 0},
	{"POST /app/amendments", html, may(policy.AmendmentRequest), chart, (*Server).pageRequestAmendment, 0},
	{"GET /app/amendments/{id}", html, may(policy.AmendmentRead), chart, (*Server).pageAmendment, 0},
	{"POST /app/amendments/{id}/decision", html, may(policy.AmendmentDecide), chart, (*Server).pageDecideAmendment, 0},
	{"POST /app/amendments/{id}/extension", html, may(policy.AmendmentDecide), chart, (*Server).pageExtendAmendment, 0},
	{"POST /app/amendments/{id}/disagreement", html, may(policy.AmendmentRequest), chart, (*Server).pageDisagree, 0},

	// Payments: a patient's fees, paying and receipts; the administrator's
	// prices, ledger and refunds; the card processor's notices, which
	// carry no session and are trusted by their signature alone (the API
	// in payments.go, the pages in payments_pages.go).
	{"GET /api/v1/payments", api, may(policy.PaymentRead), chart, (*Server).apiFees, 0},
	{"POST /api/v1/payments", api, may(policy.PaymentPay), chart, (*Server).apiPay, 0},
	{"GET /api/v1/payments/{id}", api, may(policy.PaymentRead), chart, (*Server).apiReceipt, 0},
	{"GET /api/v1/payments/ledger", api, may(policy.PaymentList), chart, (*Server).apiLedger, 0},
	{"POST /api/v1/payments/{id}/refund", api, may(policy.PaymentRefund), chart, (*Server).apiRefund, 0},
	{"GET /api/v1/payments/prices", api, may(policy.PaymentPrices), chart, (*Server).apiPrices, 0},
	{"PUT /api/v1/payments/prices", api, may(policy.PaymentPrices), chart, (*Server).apiSetPrice, 0},
	{"POST /api/v1/payments/webhook", api, anyone, chart, (*Server).paymentWebhook, 0},
	{"GET /app/payments", html, may(policy.PaymentRead), chart, (*Server).pagePayments, 0},
	{"POST /app/payments", html, may(policy.PaymentPay), chart, (*Server).pagePay, 0},
	{"GET /app/payments/{id}", html, may(policy.PaymentRead), chart, (*Server).pageReceipt, 0},
	{"GET /app/admin/payments", html, may(policy.PaymentList), chart, (*Server).adminPayments, 0},
	{"GET /app/admin/payments/{id}", html, may(policy.PaymentList), chart, (*Server).adminPayment, 0},
	{"POST /app/admin/payments/{id}/refund", html, may(policy.PaymentRefund), chart, (*Server).adminRefund, 0},
	{"POST /app/admin/prices", html, may(policy.PaymentPrices), chart, (*Server).adminSetPrice, 0},

	// The FHIR R4 API (fhir.go): the capability statement, read and
	// search of each served type (the service decides each read as the
	// pages' reads), Patient/$everything, a patient's message to her care
	// team (as the thread pages send it), a vital sign she records, and an
	// OperationOutcome for the rest.
	{"GET " + FHIRBase + "/metadata", fhirJSON, anyone, chart, (*Server).fhirMetadata, 0},
	{"GET " + FHIRBase + "/{type}/{id}", fhirJSON, signedIn, chart, (*Server).fhirRead, 0},
	{"GET " + FHIRBase + "/Patient/{id}/$everything", fhirJSON, may(policy.ExportPatient), chart, (*Server).fhirEverything, 0},
	{"GET " + FHIRBase + "/{type}", fhirJSON, signedIn, chart, (*Server).fhirSearch, 0},
	{"POST " + FHIRBase + "/Communication", fhirJSON, may(policy.MessageSend), chart, (*Server).fhirCreateCommunication, 0},
	{"POST " + FHIRBase + "/Observation", fhirJSON, may(policy.ObservationRecord), chart, (*Server).fhirCreateObservation, 0},
	{FHIRBase + "/", fhirJSON, anyone, chart, (*Server).fhirNotSupported, 0},

	// SMART App Launch and OAuth 2 (smart.go): the configuration, the
	// authorization endpoint behind Haven's sign-in with its consent page,
	// the token and revocation endpoints (no session: the app's client
	// authentication and PKCE are their proof), and the preflights a
	// browser app on another origin sends first.
	{"GET " + FHIRBase + "/.well-known/smart-configuration", fhirJSON, anyone, smartApps, (*Server).smartConfiguration, 0},
	{"GET " + FHIRBase + "/.well-known/openid-configuration", fhirJSON, anyone, smartApps, (*Server).openIDConfiguration, 0},
	{"GET /oauth2/jwks", oauth, anyone, smartApps, (*Server).smartJWKS, 0},
	{"OPTIONS " + FHIRBase + "/", fhirJSON, anyone, smartApps, (*Server).smartPreflight, 0},
	{"GET /oauth2/authorize", html, signedIn, smartApps, (*Server).smartAuthorize, 0},
	{"POST /oauth2/authorize", html, signedIn, smartApps, (*Server).smartDecide, 0},
	{"POST /oauth2/token", oauth, anyone, smartApps, (*Server).smartToken, 0},
	{"OPTIONS /oauth2/token", oauth, anyone, smartApps, (*Server).smartPreflight, 0},
	{"POST /oauth2/revoke", oauth, anyone, smartApps, (*Server).smartRevoke, 0},
	{"OPTIONS /oauth2/revoke", oauth, anyone, smartApps, (*Server).smartPreflight, 0},
	{"GET /app/patients/{id}/apps/{client}", html, may(policy.ChartRead), smartApps, (*Server).smartLaunch, 0},
	{"GET /app/admin/apps", html, signedIn, smartApps, (*Server).pageApps, 0},
	{"POST /app/admin/apps", html, signedIn, smartApps, (*Server).pageAddApp, 0},
	{"POST /app/admin/apps/{id}/revoke", html, signedIn, smartApps, (*Server).pageRevokeApp, 0},

	// Video visits: the API, the call's WebSocket (visit.go,
	// visit_reschedule.go) and the pages (visit_pages.go).
	{"GET " + CallPath, websocket, may(policy.VisitJoin), visits, (*Server).handleCall, 0},
	{"GET /api/v1/clinicians", api, signedIn, visits, (*Server).apiClinicians, 0},
	{"GET /api/v1/visits/{id}/state", api, may(policy.VisitRead), visits, (*Server).apiState, 0},
	{"POST /api/v1/visits/{id}/check-in", api, may(policy.VisitCheckIn), visits, (*Server).apiCheckIn, 0},
	{"POST /api/v1/visits/{id}/join-token", api, may(policy.VisitJoin), visits, (*Server).apiJoinToken, 0},
	{"POST /api/v1/visits/{id}/admit", api, may(policy.VisitAdmit), visits, (*Server).apiAdmit, 0},
	{"POST /api/v1/visits/{id}/cancel", api, may(policy.VisitCancel), visits, (*Server).apiCancel, 0},
	{"POST /api/v1/visits/{id}/end", api, may(policy.VisitEnd), visits, (*Server).apiEnd, 0},
	{"POST /api/v1/visits/{id}/reschedule", api, may(policy.VisitReschedule), visits, (*Server).apiReschedule, 0},
	{"GET /api/v1/visits/{id}/people", api, may(policy.VisitJoin), visits, (*Server).apiCallPeople, 0},
	{"GET /api/v1/waiting-room", api, may(policy.VisitQueue), visits, (*Server).apiWaitingRoom, 0},
	{"GET /api/v1/network-check", api, signedIn, visits, (*Server).apiNetworkCheck, 0},
	{"GET /app/visits", html, may(policy.VisitBook), visits, (*Server).pageVisits, 0},
	{"POST /app/visits", html, may(policy.VisitBook), visits, (*Server).pageBook, 0},
	{"POST /app/visits/{id}/cancel", html, may(policy.VisitCancel), visits, (*Server).pageCancel, 0},
	{"POST /app/visits/{id}/reschedule", html, may(policy.VisitReschedule), visits, (*Server).pageReschedule, 0},
	{"GET /app/visits/{id}/check-in", html, may(policy.VisitCheckIn), visits, (*Server).pageCheckIn, 0},
	{"POST /app/visits/{id}/check-in", html, may(policy.VisitCheckIn), visits, (*Server).pageCheckInFor, 0},
	{"GET /app/visits/{id}/call", html, may(policy.VisitJoin), visits, (*Server).pageCall, 0},
	{"GET /app/waiting-room", html, may(policy.VisitQueue), visits, (*Server).pageWaitingRoom, 0},
}

// route is one row of the table.
type route struct {
	pattern string // a ServeMux pattern with its method
	kind    kind
	who     who
	part    part
	handle  func(*Server, http.ResponseWriter, *http.Request)
	// limit is the route's body limit when it takes more than
	// MaxBodyBytes; its handler must stream the body.
	limit int64
}

// kind is what a route answers with, which decides how it says no: the
// API and the WebSocket answer JSON errors (401 without a session), pages
// answer pages (the sign-in page without a session).
type kind uint8

const (
	html      kind = iota + 1 // a page: server-rendered HTML
	api                       // JSON (and the API's files)
	asset                     // embedded CSS and JavaScript
	websocket                 // the call's signaling
	ops                       // health and metrics, for operators
	fhirJSON                  // the FHIR API: FHIR JSON, errors as OperationOutcome
	oauth                     // the OAuth 2 token and revocation endpoints: JSON as RFC 6749 writes it
)

func (k kind) String() string {
	return [...]string{"", "page", "API", "asset", "WebSocket", "operator", "FHIR", "OAuth"}[k]
}

// who is who may call a route; see the table's comment.
type who struct {
	session    bool          // a session is required
	action     policy.Action // the policy action the route is about, if one
	challenged bool          // a challenged session may reach it
}

var (
	anyone   = who{}
	signedIn = who{session: true}
)

// may is a route for what policy lets roles do with act.
func may(act policy.Action) who { return who{session: true, action: act} }

// evenChallenged lets a challenged session reach the route.
func (w who) evenChallenged() who {
	w.challenged = true
	return w
}

// Roles returns the roles that may call the route: nil for anyone, every
// role for any session, and policy's roles for an action.
func (w who) Roles() []haven.Role {
	if !w.session {
		return nil
	}
	var out []haven.Role
	for _, r := range haven.Roles {
		if w.action == "" || policy.Permits(r, w.action) {
			out = append(out, r)
		}
	}
	return out
}

// part is the part of the server a route belongs to; a server built
// without that part (a test's, or one whose passkeys are off) does not
// register its routes, so they answer 404.
type part uint8

const (
	core      part = iota // always
	signin                // Config.Identity
	passkeys              // Config.Passkeys
	chart                 // Config.Service
	visits                // Config.Service and Config.Video
	smartApps             // Config.Service and Config.SMART
)

// has reports whether s was built with part p.
func (s *Server) has(p part) bool {
	switch p {
	case signin:
		return s.id != nil
	case passkeys:
		return s.passkeys != nil
	case chart:
		return s.svc != nil
	case visits:
		return s.svc != nil && s.calls != nil
	case smartApps:
		return s.svc != nil && s.smart != nil && s.id != nil
	}
	return true
}

// register adds every route of the table that s has the parts for, each
// behind its gate.
func (s *Server) register() {
	for _, rt := range routes {
		if !s.has(rt.part) {
			continue
		}
		if rt.limit > 0 {
			s.uploads.Handle(rt.pattern, uploadLimit(rt.limit))
		}
		s.mux.Handle(rt.pattern, s.gate(rt))
	}
}

// gate answers for a route what its "who" column says before the handler
// runs: a request without a session where one is needed is sent to sign
// in; a challenged session is sent to its step-up unless the route is one
// it may still reach.
func (s *Server) gate(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.kind == fhirJSON && s.smart != nil {
			allowAnyOrigin(w) // SMART apps read from their own origins (smart.go)
		}
		_, signedIn := haven.ActorFromContext(r.Context())
		if rt.who.session && !signedIn && !(rt.kind == fhirJSON && smartBearer(r) != "") {
			// A SMART token is no session: the FHIR handler's caller
			// (fhirCaller) resolves it, or refuses it.
			s.signInFirst(w, r, rt.kind)
			return
		}
		if cur := sessionFromContext(r.Context()); cur != nil && cur.Challenged && !rt.who.challenged && rt.kind != asset {
			s.challenge(w, r, rt.kind)
			return
		}
		rt.handle(s, w, r)
	})
}
