package web

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"haven"
	"haven/fhir"
	"haven/service"
	"haven/smart"
)

// The FHIR R4 API at /fhir/R4 (routes.go lists its routes): the
// CapabilityStatement, read and search of each type package fhir says is
// served, and Patient/$everything. Every read goes through the service's
// gate as the pages' reads do; every error is an OperationOutcome.

// FHIRBase is the API's root path.
const FHIRBase = "/fhir/R4"

// fhirStarted dates the CapabilityStatement: what it says changes only
// with the server.
var fhirStarted = time.Now()

// fhirCaller is the one place the FHIR API takes its caller from: a
// Haven session (its cookie, or its token as a bearer token, which
// withIdentity has checked and put in the context), or a SMART access
// token, resolved to the user it acts for (so the gate decides as for her
// pages) and narrowed by its scopes: typ and op ('r' read, 's' search,
// 'c' create) are what the request does, refused with 403 when the
// token's scopes do not reach them. A token with a patient in context
// reaches that patient's record only (service.WithPatientContext). A
// backend system's token acts as its practice's integration role, which
// policy lets read the structured record practice-wide, one named
// patient at a time, as far as its system/ scopes reach. A token whose
// scopes reach only some resources of typ (narrowed scopes) is refused
// here: fhirCallerNarrowed is for the reads that filter by them.
func (s *Server) fhirCaller(r *http.Request, typ string, op byte) (context.Context, haven.Actor, error) {
	ctx, a, only, err := s.fhirCallerNarrowed(r, typ, op)
	if err == nil && only != nil {
		return nil, a, haven.Errorf(haven.EFORBIDDEN, "the token's scopes do not allow this")
	}
	return ctx, a, err
}

// fhirCallerNarrowed is fhirCaller for a read or a search, which answers
// only the resources only reaches (smart.Narrowing.Matches; nil is every
// one).
func (s *Server) fhirCallerNarrowed(r *http.Request, typ string, op byte) (context.Context, haven.Actor, smart.Narrowing, error) {
	if t := smartBearer(r); t != "" {
		ctx, a, acc, err := s.smartCaller(r, t)
		if err != nil {
			return nil, a, nil, err
		}
		only, err := s.scopeAllows(r, acc, typ, op)
		if err != nil {
			return nil, a, nil, err
		}
		return ctx, a, only, nil
	}
	a, ok := haven.ActorFromContext(r.Context())
	if !ok {
		return nil, a, nil, haven.Errorf(haven.EUNAUTHORIZED, "please sign in")
	}
	return r.Context(), a, nil, nil
}

// fhirError answers err as an OperationOutcome with its status.
func (s *Server) fhirError(w http.ResponseWriter, r *http.Request, err error) {
	status := s.errorStatus(w, r, err)
	code := fhir.IssueException
	switch haven.ErrorCode(err) {
	case haven.EINVALID:
		code = fhir.IssueInvalid
	case haven.ENOTFOUND:
		code = fhir.IssueNotFound
	case haven.EUNAUTHORIZED:
		code = fhir.IssueLogin
		w.Header().Set("WWW-Authenticate", `Bearer realm="haven"`)
	case haven.EFORBIDDEN:
		code = fhir.IssueForbidden
	case haven.ESTEPUP:
		code = fhir.IssueSecurity
	case haven.ETOOMANY:
		code = fhir.IssueThrottled
	case haven.EUNAVAILABLE:
		code = fhir.IssueTransient
	case haven.ECONFLICT:
		code = fhir.IssueConflict
	}
	writeFHIR(w, status, fhir.Outcome(code, haven.ErrorMessage(err)))
}

func writeFHIR(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", fhir.ContentType)
	w.WriteHeader(status)
	w.Write(body)
}

// fhirAnswer writes body with its ETag, or 304 when the client holds it.
func fhirAnswer(w http.ResponseWriter, r *http.Request, body []byte) {
	etag := fhir.ETag(body)
	w.Header().Set("ETag", etag)
	for _, t := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if t = strings.TrimSpace(t); t == etag || t == "*" || "W/"+t == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	writeFHIR(w, http.StatusOK, body)
}

// fhirRoot is the API's root URL as the client reached it, for the
// paging links and fullUrls.
func fhirRoot(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host + FHIRBase
}

func (s *Server) fhirMetadata(w http.ResponseWriter, r *http.Request) {
	body, err := fhir.Capability(fhirRoot(r), "Haven", fhirStarted)
	if err != nil {
		s.fhirError(w, r, haven.Wrap(haven.EINTERNAL, err, "cannot write the capability statement"))
		return
	}
	fhirAnswer(w, r, body)
}

// fhirNotSupported answers what the API does not serve.
func (s *Server) fhirNotSupported(w http.ResponseWriter, r *http.Request) {
	writeFHIR(w, http.StatusNotFound, fhir.Outcome(fhir.IssueNotSupported, "not supported; see "+FHIRBase+"/metadata"))
}

// fhirRead answers GET [type]/[id].
func (s *Server) fhirRead(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	if spec, ok := fhir.Types[typ]; !ok || !spec.Read || !service.FHIRServes(typ) {
		s.fhirNotSupported(w, r)
		return
	}
	ctx, a, only, err := s.fhirCallerNarrowed(r, typ, 'r')
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	res, err := s.svc.FHIRResource(ctx, typ, r.PathValue("id"))
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	if !only.Matches(res) {
		s.fhirError(w, r, s.outsideNarrowing(ctx, r, a))
		return
	}
	body, err := json.Marshal(res)
	if err != nil {
		s.fhirError(w, r, haven.Wrap(haven.EINTERNAL, err, "cannot write the resource"))
		return
	}
	fhirAnswer(w, r, body)
}

// fhirEverything answers Patient/{id}/$everything with the Bundle of the
// patient's download of her record, decided as that download is.
func (s *Server) fhirEverything(w http.ResponseWriter, r *http.Request) {
	ctx, _, err := s.fhirCaller(r, "*", 'r')
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	if p, ok := service.PatientContext(ctx); ok && p != r.PathValue("id") {
		s.fhirError(w, r, haven.Errorf(haven.ENOTFOUND, "not found"))
		return
	}
	x, err := s.svc.PrepareExport(ctx, r.PathValue("id"))
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	fhirAnswer(w, r, x.Bundle())
}

// fhirBody reads a create's body, which must be FHIR JSON (the body is
// bounded before it reaches a handler).
func fhirBody(r *http.Request) ([]byte, error) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != fhir.ContentType && ct != "application/json" {
		return nil, haven.Errorf(haven.EINVALID, "the body must be %s", fhir.ContentType)
	}
	in, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, haven.Errorf(haven.EINVALID, "the body is too large or cut short")
	}
	return in, nil
}

// fhirCreated answers a create: 201 with the resource as the API reads it
// back, its Location and its ETag.
func (s *Server) fhirCreated(w http.ResponseWriter, r *http.Request, typ string, res map[string]any) {
	body, err := json.Marshal(res)
	if err != nil {
		s.fhirError(w, r, haven.Wrap(haven.EINTERNAL, err, "cannot write the resource"))
		return
	}
	id, _ := res["id"].(string)
	w.Header().Set("Location", fhirRoot(r)+"/"+typ+"/"+id)
	w.Header().Set("ETag", fhir.ETag(body))
	writeFHIR(w, http.StatusCreated, body)
}

// fhirCreateCommunication answers POST Communication: a signed-in
// patient's message to her care team, 201 with its Location and the
// message as the API reads it back.
func (s *Server) fhirCreateCommunication(w http.ResponseWriter, r *http.Request) {
	ctx, _, err := s.fhirCaller(r, "Communication", 'c')
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	in, err := fhirBody(r)
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	msg, err := fhir.ParseCommunication(in)
	if err != nil {
		s.fhirError(w, r, haven.Errorf(haven.EINVALID, "%s", err.Error()))
		return
	}
	res, err := s.svc.FHIRSendMessage(ctx, msg.Patient, msg.Subject, msg.Body)
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	s.fhirCreated(w, r, "Communication", res)
}

// fhirCreateObservation answers POST Observation: a vital sign a patient's
// app or device records in her own record (a token with
// patient/Observation.c, or v1's .write), 201 with its Location, ETag and
// the Observation as the API reads it back.
func (s *Server) fhirCreateObservation(w http.ResponseWriter, r *http.Request) {
	ctx, _, err := s.fhirCaller(r, "Observation", 'c')
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	in, err := fhirBody(r)
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	o, err := fhir.ParseObservation(in)
	if err != nil {
		s.fhirError(w, r, haven.Errorf(haven.EINVALID, "%s", err.Error()))
		return
	}
	res, err := s.svc.FHIRRecordObservation(ctx, service.NewVitalSign{PatientID: o.Patient, Status: o.Status, LOINC: o.LOINC,
		Display: o.Display, Value: o.Value, Unit: o.Unit, Effective: o.Effective})
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	s.fhirCreated(w, r, "Observation", res)
}

// fhirSearch answers GET [type]?params with a searchset Bundle.
func (s *Server) fhirSearch(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	if _, ok := fhir.Types[typ]; !ok || !service.FHIRServes(typ) {
		s.fhirNotSupported(w, r)
		return
	}
	ctx, a, only, err := s.fhirCallerNarrowed(r, typ, 's')
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.fhirError(w, r, haven.Errorf(haven.EINVALID, "the query is malformed"))
		return
	}
	srch, err := fhir.ParseSearch(typ, q)
	if err != nil {
		s.fhirError(w, r, haven.Errorf(haven.EINVALID, "%s", err.Error()))
		return
	}
	patient := srch.Patient
	switch {
	case typ == "Practitioner": // the practice's, not a patient's
	case typ == "Patient":
		switch ids := srch.IDs(); {
		case len(ids) == 1:
			patient = ids[0]
		case ids != nil || len(q["_id"]) > 1:
			s.fhirError(w, r, haven.Errorf(haven.EINVALID, "search one patient by _id"))
			return
		}
	}
	if p, ok := service.PatientContext(ctx); ok && patient == "" && typ != "Practitioner" {
		patient = p // a SMART token's patient in context
	}
	if patient == "" && typ != "Practitioner" {
		if a.Role != haven.RolePatient {
			param := "patient"
			if typ == "Patient" {
				param = "_id"
			}
			s.fhirError(w, r, haven.Errorf(haven.EINVALID, "name the patient with %s", param))
			return
		}
		patient = a.UserID
	}
	all, err := s.svc.FHIRResources(ctx, typ, patient)
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	var hits []map[string]any
	for _, res := range all {
		if srch.Match(res) && only.Matches(res) {
			hits = append(hits, res)
		}
	}
	srch.Sort(hits)
	from, to := srch.Page(len(hits))
	page := make([]fhir.Entry, 0, to-from)
	for _, res := range hits[from:to] {
		b, err := json.Marshal(srch.Shape(res))
		if err != nil {
			s.fhirError(w, r, haven.Wrap(haven.EINTERNAL, err, "cannot write the results"))
			return
		}
		id, _ := res["id"].(string)
		page = append(page, fhir.Entry{Type: typ, ID: id, JSON: b})
	}
	body, err := fhir.SearchSet(fhirRoot(r), srch, len(hits), from, page)
	if err != nil {
		s.fhirError(w, r, haven.Wrap(haven.EINTERNAL, err, "cannot write the results"))
		return
	}
	fhirAnswer(w, r, body)
}
