package fhir_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"haven/fhir"
)

func obs(id, when, status, code string) map[string]any {
	var r map[string]any
	json.Unmarshal([]byte(`{"resourceType":"Observation","id":"`+id+`","status":"`+status+`","effectiveDateTime":"`+when+
		`","code":{"coding":[{"system":"http://loinc.org","code":"`+code+`"}]}}`), &r)
	return r
}

func search(t *testing.T, typ, q string) *fhir.Search {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fhir.ParseSearch(typ, v)
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, q, err)
	}
	return s
}

// TestSearchDatePrefixes: each prefix against a value at the second, a
// day and a month, on both sides of it.
func TestSearchDatePrefixes(t *testing.T) {
	noon := obs("a", "2026-03-15T12:00:00Z", "final", "2345-7")
	day := obs("b", "2026-03-15", "final", "2345-7")
	for _, c := range []struct {
		q          string
		noon, day_ bool
	}{
		{"date=2026-03-15", true, true},
		{"date=eq2026-03-15", true, true},
		{"date=eq2026-03", true, true},
		{"date=2026-03-16", false, false},
		{"date=2026-03-15T12:00:00Z", true, false},
		{"date=lt2026-03-15T12:00:00Z", false, true},
		{"date=le2026-03-15T12:00:00Z", true, true},
		{"date=gt2026-03-15T12:00:00Z", false, true},
		{"date=ge2026-03-15T12:00:00Z", true, true},
		{"date=gt2026-03-15", false, false},
		{"date=ge2026-03-15", true, true},
		{"date=lt2026-03-15", false, false},
		{"date=le2026-03-14", false, false},
		{"date=ge2026-03-01&date=lt2026-04-01", true, true},
		{"date=ge2026-03-16&date=lt2026-04-01", false, false},
		{"date=ge2025", true, true},
		{"date=lt2026", false, false},
	} {
		s := search(t, "Observation", c.q)
		if got := s.Match(noon); got != c.noon {
			t.Errorf("%s on a noon value: %v, want %v", c.q, got, c.noon)
		}
		if got := s.Match(day); got != c.day_ {
			t.Errorf("%s on a day value: %v, want %v", c.q, got, c.day_)
		}
	}
}

// TestSearchTokens: code with and without its system, alternatives,
// status and _id; a resource without the element never matches.
func TestSearchTokens(t *testing.T) {
	r := obs("r1", "2026-03-15", "final", "2345-7")
	for q, want := range map[string]bool{
		"code=2345-7":                        true,
		"code=http://loinc.org|2345-7":       true,
		"code=|2345-7":                       true,
		"code=http://snomed.info/sct|2345-7": false,
		"code=1111-1,2345-7":                 true,
		"code=1111-1":                        false,
		"status=final":                       true,
		"status=preliminary,final":           true,
		"status=cancelled":                   false,
		"_id=r1":                             true,
		"_id=r2":                             false,
		"_id=r1&status=cancelled":            false,
		"code=2345-7&status=final&_count=10": true,
		"patient=Patient/abc&code=2345-7":    true,
		"patient=abc&_format=json":           true,
		"_count=0&_offset=5":                 true,
		"date=2026-03-15&code=1111-1,2345-7": true,
		"date=2026-03-14&code=1111-1,2345-7": false,
		"_id=r1&_id=r1":                      true,
	} {
		if got := search(t, "Observation", q).Match(r); got != want {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	if search(t, "Appointment", "status=booked").Match(map[string]any{"resourceType": "Appointment"}) {
		t.Error("a resource without status matched status=booked")
	}
	if s := search(t, "Observation", "patient=Patient/abc"); s.Patient != "abc" {
		t.Errorf("patient %q", s.Patient)
	}
}

// TestSearchRefusesWhatItDoesNotUnderstand: unknown parameters, modifiers,
// parameters of another type, bad prefixes and dates, two patients, and
// a type not served are refused, never ignored; the error names the
// parameter and never echoes a value.
func TestSearchRefusesWhatItDoesNotUnderstand(t *testing.T) {
	for _, c := range []struct{ typ, q string }{
		{"Observation", "subject=abc"},
		{"Observation", "code:text=glucose"},
		{"Observation", "date=xx2026-01-01"},
		{"Observation", "date=2026-13-01"},
		{"Observation", "date=yesterday"},
		{"Observation", "patient=a&patient=b"},
		{"Observation", "patient=a,b"},
		{"Observation", "_count=-1"},
		{"Observation", "_count=many"},
		{"Observation", "_offset=-3"},
		{"Observation", "_format=xml"},
		{"Observation", "status="},
		{"Appointment", "code=x"},
		{"Patient", "name=Smith"},
		{"Patient", "patient=abc"},
		{"Binary", ""},
		{"Encounter", "code=x"},
		{"Observation", "<script>SECRETVALUE=1"},
	} {
		v, _ := url.ParseQuery(c.q)
		_, err := fhir.ParseSearch(c.typ, v)
		if !errors.Is(err, fhir.ErrInvalid) {
			t.Errorf("%s?%s: %v, want refused", c.typ, c.q, err)
			continue
		}
		if strings.Contains(err.Error(), "SECRETVALUE") || strings.Contains(err.Error(), "<") || strings.Contains(err.Error(), "Smith") {
			t.Errorf("%s?%s: the error echoes the query: %v", c.typ, c.q, err)
		}
	}
}

// TestSearchSetPages: _count bounds the page, _offset moves it, the
// next link is there while matches remain and carries the search.
func TestSearchSetPages(t *testing.T) {
	entries := make([]fhir.Entry, 5)
	for i := range entries {
		entries[i] = fhir.Entry{Type: "Observation", ID: string(rune('a' + i)), JSON: json.RawMessage(`{"resourceType":"Observation"}`)}
	}
	type bundle struct {
		Total int
		Link  []struct{ Relation, URL string }
		Entry []struct {
			FullURL string
			Search  struct{ Mode string }
		}
	}
	page := func(q string) bundle {
		s := search(t, "Observation", q)
		from, to := s.Page(len(entries))
		b, err := fhir.SearchSet("https://h.example/fhir/R4", s, len(entries), from, entries[from:to])
		if err != nil {
			t.Fatal(err)
		}
		var out bundle
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	b := page("_count=2&status=final")
	if b.Total != 5 || len(b.Entry) != 2 || b.Entry[0].FullURL != "https://h.example/fhir/R4/Observation/a" || b.Entry[0].Search.Mode != "match" {
		t.Fatalf("first page %+v", b)
	}
	if len(b.Link) != 2 || b.Link[1].Relation != "next" || !strings.Contains(b.Link[1].URL, "_offset=2") || !strings.Contains(b.Link[1].URL, "status=final") {
		t.Fatalf("links %+v", b.Link)
	}
	next, _ := url.Parse(b.Link[1].URL)
	b = page(next.RawQuery)
	if len(b.Entry) != 2 || b.Entry[0].FullURL != "https://h.example/fhir/R4/Observation/c" {
		t.Fatalf("second page %+v", b)
	}
	b = page("_count=2&_offset=4")
	if len(b.Entry) != 1 || len(b.Link) != 1 || b.Link[0].Relation != "self" {
		t.Fatalf("last page %+v", b)
	}
	if b = page("_count=1000"); len(b.Entry) != 5 {
		t.Fatalf("_count over the maximum: %d entries", len(b.Entry))
	}
	if b = page("_count=0"); len(b.Entry) != 0 || b.Total != 5 || len(b.Link) != 1 {
		t.Fatalf("_count=0: %+v", b)
	}
	if b = page("_offset=99"); len(b.Entry) != 0 {
		t.Fatalf("past the end: %+v", b)
	}
}

// TestSearchSort: date ascending and descending with ties broken by a
// second key, _id both ways, a resource without the date last either
// way; a key the type cannot sort by, or _sort twice, is refused.
func TestSearchSort(t *testing.T) {
	ids := func(rs []map[string]any) string {
		var out []string
		for _, r := range rs {
			out = append(out, r["id"].(string))
		}
		return strings.Join(out, " ")
	}
	all := func() []map[string]any {
		nodate := obs("e", "", "final", "1")
		delete(nodate, "effectiveDateTime")
		return []map[string]any{obs("c", "2026-03-15T12:00:00Z", "final", "1"), obs("a", "2026-01-02", "final", "1"),
			nodate, obs("d", "2026-03-15T12:00:00Z", "final", "1"), obs("b", "2026-02", "final", "1")}
	}
	for q, want := range map[string]string{
		"":                 "c a e d b",
		"_sort=date":       "a b c d e",
		"_sort=-date":      "c d b a e",
		"_sort=-date,-_id": "d c b a e",
		"_sort=_id":        "a b c d e",
		"_sort=-_id":       "e d c b a",
	} {
		rs := all()
		search(t, "Observation", q).Sort(rs)
		if got := ids(rs); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}
	for _, c := range []struct{ typ, q string }{
		{"Observation", "_sort=status"},
		{"Observation", "_sort=code"},
		{"Observation", "_sort=date&_sort=_id"},
		{"Observation", "_sort=date,"},
		{"Patient", "_sort=date"},
		{"Observation", "_sort=--date"},
	} {
		v, _ := url.ParseQuery(c.q)
		if _, err := fhir.ParseSearch(c.typ, v); !errors.Is(err, fhir.ErrInvalid) {
			t.Errorf("%s?%s: %v, want refused", c.typ, c.q, err)
		}
	}
	if s := search(t, "Patient", "_sort=-_id"); s == nil {
		t.Error("Patient?_sort=-_id refused")
	}
}

// TestSearchSummary: true keeps the summary elements and tags the
// resource SUBSETTED, data drops only the narrative, false and none
// leave it whole, count pages no entries but keeps the total; other
// values are refused.
func TestSearchSummary(t *testing.T) {
	r := obs("r1", "2026-03-15", "final", "2345-7")
	r["note"] = []any{map[string]any{"text": "NOTEVALUE"}}
	r["text"] = map[string]any{"status": "generated", "div": "<div>x</div>"}
	r["meta"] = map[string]any{"versionId": "1"}
	tagged := func(x map[string]any) bool {
		meta, _ := x["meta"].(map[string]any)
		tags, _ := meta["tag"].([]any)
		for _, tg := range tags {
			if m, _ := tg.(map[string]any); m["code"] == "SUBSETTED" {
				return true
			}
		}
		return false
	}
	got := search(t, "Observation", "_summary=true").Shape(r)
	if got["note"] != nil || got["text"] != nil || got["code"] == nil || got["status"] != "final" || got["id"] != "r1" ||
		got["resourceType"] != "Observation" || !tagged(got) || got["meta"].(map[string]any)["versionId"] != "1" {
		t.Errorf("_summary=true: %v", got)
	}
	if tagged(r) {
		t.Error("_summary=true changed the resource it cut")
	}
	got = search(t, "Observation", "_summary=data").Shape(r)
	if got["note"] == nil || got["text"] != nil || !tagged(got) {
		t.Errorf("_summary=data: %v", got)
	}
	for _, q := range []string{"_summary=false", ""} {
		if got = search(t, "Observation", q).Shape(r); got["note"] == nil || got["text"] == nil || tagged(got) {
			t.Errorf("%q: %v", q, got)
		}
	}
	s := search(t, "Observation", "_summary=count")
	if from, to := s.Page(7); from != to {
		t.Errorf("_summary=count pages [%d, %d)", from, to)
	}
	b, err := fhir.SearchSet("https://h.example/fhir/R4", s, 7, 0, nil)
	if err != nil || !strings.Contains(string(b), `"total":7`) || strings.Contains(string(b), `"entry"`) ||
		!strings.Contains(string(b), "_summary=count") {
		t.Errorf("_summary=count: %s, %v", b, err)
	}
	for _, q := range []string{"_summary=text", "_summary=yes", "_summary=true&_summary=count"} {
		v, _ := url.ParseQuery(q)
		if _, err := fhir.ParseSearch("Observation", v); !errors.Is(err, fhir.ErrInvalid) {
			t.Errorf("%s: %v, want refused", q, err)
		}
	}
	// The statement advertises both for every type, from the same table.
	cs, err := fhir.Capability("https://h.example/fhir/R4", "Haven", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rest []struct {
			Resource []struct {
				Type        string
				SearchParam []struct{ Name string }
			}
		}
	}
	json.Unmarshal(cs, &doc)
	for _, r := range doc.Rest[0].Resource {
		var names []string
		for _, p := range r.SearchParam {
			names = append(names, p.Name)
		}
		if !slices.Contains(names, "_sort") || !slices.Contains(names, "_summary") {
			t.Errorf("%s advertises %v", r.Type, names)
		}
	}
}

// TestSearchPeriod: an Encounter's date is its period: a date within it
// or overlapping it matches as FHIR's prefixes say; an open period runs
// on; _sort reads its start.
func TestSearchPeriod(t *testing.T) {
	enc := func(id, start, end string) map[string]any {
		p := map[string]any{"start": start}
		if end != "" {
			p["end"] = end
		}
		return map[string]any{"resourceType": "Encounter", "id": id, "status": "finished", "period": p}
	}
	r := enc("a", "2026-03-15T10:00:00Z", "2026-03-15T10:30:00Z")
	open := enc("b", "2026-03-14T10:00:00Z", "")
	for q, want := range map[string][2]bool{
		"date=2026-03-15":                {true, false},
		"date=2026-03-16":                {false, false},
		"date=ge2026-03-15T10:15:00Z":    {true, true},
		"date=lt2026-03-15T10:00:00Z":    {false, true},
		"date=gt2026-03-15T10:30:00Z":    {false, true},
		"date=le2026-03-14":              {false, true},
		"date=ge2026-03-15&status=final": {false, false},
	} {
		s := search(t, "Encounter", q)
		if got := [2]bool{s.Match(r), s.Match(open)}; got != want {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	rs := []map[string]any{r, open}
	search(t, "Encounter", "_sort=date").Sort(rs)
	if rs[0]["id"] != "b" {
		t.Errorf("_sort=date: %v first", rs[0]["id"])
	}
	if search(t, "Encounter", "date=2026").Match(enc("c", "2026-03-15T10:00:00Z", "2026-03-15T09:00:00Z")) {
		t.Error("a period ending before it starts matched")
	}
}

// TestSearchName: a Practitioner's name matches by the start of any of
// its words, or of the whole, in any case; alternatives; nothing in the
// middle of a word.
func TestSearchName(t *testing.T) {
	r := map[string]any{"resourceType": "Practitioner", "id": "p1", "name": []any{map[string]any{"text": "Dr. Ana Rivera"}}}
	for q, want := range map[string]bool{
		"name=rivera": true, "name=RIV": true, "name=ana": true, "name=dr. ana": true, "name=vera": false,
		"name=smith,riv": true, "name=smith": false, "name=ana&name=riv": true, "name=ana&name=smith": false,
	} {
		if got := search(t, "Practitioner", q).Match(r); got != want {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
}
