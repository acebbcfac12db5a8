package fhir

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	m "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// DefaultCount and MaxCount bound a searchset's page.
const (
	DefaultCount = 50
	MaxCount     = 100
)

// Search is a parsed search of one type. Every parameter given more than
// once must hold for each (AND); a value's commas are alternatives (OR).
type Search struct {
	Type    string
	Patient string // the patient's id, "" when not given
	Count   int
	Offset  int
	// Query is the search's parameters as given, without paging, for the
	// paging links.
	Query url.Values
	// Summary is _summary's value, "" when not given (as "false").
	Summary string
	sort    []sortKey
	conds   []cond
}

// sortKey is one key of _sort: a date parameter's elements or the id.
type sortKey struct {
	p    Param
	desc bool
}

type cond struct {
	p    Param
	alts []string // a token's or id's alternatives
	date []dateParam
}

type dateParam struct {
	prefix string
	lo, hi time.Time // [lo, hi)
}

// ErrInvalid is wrapped by every parse error; its message is safe to show
// (it names the parameter, never its value).
var ErrInvalid = errors.New("invalid search")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// ParseSearch parses q as a search of typ. An unknown parameter, a
// modifier or a malformed value is refused: a search the server would
// half-understand could return more than the caller asked for.
func ParseSearch(typ string, q url.Values) (*Search, error) {
	spec, ok := Types[typ]
	if !ok {
		return nil, invalid("resource type not supported")
	}
	s := &Search{Type: typ, Count: DefaultCount, Query: url.Values{}}
	for name, vals := range q {
		switch name {
		case "_format":
			for _, v := range vals {
				if v != "json" && v != ContentType && v != "application/json" {
					return nil, invalid("_format: only JSON is served")
				}
			}
			continue
		case "_offset":
			n, err := strconv.Atoi(vals[len(vals)-1])
			if err != nil || n < 0 || n > 1_000_000 {
				return nil, invalid("_offset is malformed")
			}
			s.Offset = n
			continue
		}
		p, ok := spec.param(name)
		if !ok {
			return nil, invalid("a search parameter is not supported for %s (the capability statement lists those that are)", typ)
		}
		for _, v := range vals {
			if v == "" {
				return nil, invalid("search parameter %q is empty", name)
			}
			s.Query.Add(name, v)
			switch p.Name {
			case "_count":
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return nil, invalid("_count is malformed")
				}
				s.Count = min(n, MaxCount)
			case "patient":
				id := strings.TrimPrefix(v, "Patient/")
				if strings.ContainsAny(id, ",/|") || (s.Patient != "" && s.Patient != id) {
					return nil, invalid("patient must name one patient")
				}
				s.Patient = id
			case "_sort":
				if s.sort != nil {
					return nil, invalid("_sort is given twice")
				}
				for _, k := range strings.Split(v, ",") {
					desc := strings.HasPrefix(k, "-")
					k = strings.TrimPrefix(k, "-")
					kp, ok := spec.param(k)
					if !ok || (kp.Name != "_id" && kp.Type != m.SearchParamTypeDate) {
						return nil, invalid("_sort: %s sorts by %s", typ, sortKeys(spec))
					}
					s.sort = append(s.sort, sortKey{p: kp, desc: desc})
				}
			case "_summary":
				switch v {
				case "true", "false", "data", "count":
				default:
					return nil, invalid("_summary must be true, false, data or count")
				}
				if s.Summary != "" && s.Summary != v {
					return nil, invalid("_summary is given twice")
				}
				s.Summary = v
			case "date":
				dp, err := parseDateParam(v)
				if err != nil {
					return nil, err
				}
				s.conds = append(s.conds, cond{p: p, date: []dateParam{dp}})
			default:
				s.conds = append(s.conds, cond{p: p, alts: strings.Split(v, ",")})
			}
		}
	}
	return s, nil
}

func sortKeys(spec TypeSpec) string {
	var out []string
	for _, p := range spec.Params {
		if p.Name == "_id" || p.Type == m.SearchParamTypeDate {
			out = append(out, p.Name)
		}
	}
	return strings.Join(out, " or ")
}

// Sort orders matches by the search's _sort keys, in turn; a match
// without a key's element comes after those with it, either way. With no
// _sort the order is left as it is (the record's, oldest first).
func (s *Search) Sort(matches []map[string]any) {
	if len(s.sort) == 0 {
		return
	}
	slices.SortStableFunc(matches, func(a, b map[string]any) int {
		for _, k := range s.sort {
			if c := k.compare(a, b); c != 0 {
				return c
			}
		}
		return 0
	})
}

func (k sortKey) compare(a, b map[string]any) int {
	if k.p.Name == "_id" {
		x, _ := a["id"].(string)
		y, _ := b["id"].(string)
		return k.sign(strings.Compare(x, y))
	}
	x, okx := k.when(a)
	y, oky := k.when(b)
	switch {
	case !okx && !oky:
		return 0
	case !okx:
		return 1
	case !oky:
		return -1
	}
	return k.sign(x.Compare(y))
}

func (k sortKey) sign(c int) int {
	if k.desc {
		return -c
	}
	return c
}

// when is the start of a resource's date element, the first of the
// parameter's elements it has.
func (k sortKey) when(res map[string]any) (time.Time, bool) {
	for _, f := range k.p.Fields {
		if v, ok := res[f]; ok {
			lo, _, ok := dateSpan(v)
			return lo, ok
		}
	}
	return time.Time{}, false
}

// subsetted is the meta tag of a resource _summary has cut, a new one
// each time (it goes into resources the caller may change).
func subsetted() map[string]any {
	return map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED", "display": "subsetted"}
}

// Shape returns res as the search's _summary asks: the type's summary
// elements for true, without the narrative for data, and res itself for
// false or none (count answers no resources). A cut resource carries the
// SUBSETTED tag, so that a client never takes it for the whole.
func (s *Search) Shape(res map[string]any) map[string]any {
	var keep func(string) bool
	switch s.Summary {
	case "true":
		sum := Types[s.Type].Summary
		keep = func(k string) bool { return slices.Contains(sum, k) }
	case "data":
		keep = func(k string) bool { return k != "text" }
	default:
		return res
	}
	out := map[string]any{}
	for k, v := range res {
		if k == "resourceType" || k == "id" || k == "meta" || keep(k) {
			out[k] = v
		}
	}
	meta := map[string]any{}
	if old, ok := out["meta"].(map[string]any); ok {
		for k, v := range old {
			meta[k] = v
		}
	}
	tags, _ := meta["tag"].([]any)
	meta["tag"] = append(slices.Clone(tags), any(subsetted()))
	out["meta"] = meta
	return out
}

// Match reports whether res (a resource as JSON decodes it) meets every
// condition of s.
func (s *Search) Match(res map[string]any) bool {
	for _, c := range s.conds {
		if !c.match(res) {
			return false
		}
	}
	return true
}

func (c cond) match(res map[string]any) bool {
	var v any
	for _, f := range c.p.Fields {
		if x, ok := res[f]; ok {
			v = x
			break
		}
	}
	if v == nil {
		return false
	}
	switch {
	case c.date != nil:
		lo, hi, ok := dateSpan(v)
		if !ok {
			return false
		}
		for _, d := range c.date {
			if !d.match(lo, hi) {
				return false
			}
		}
		return true
	case c.p.Name == "code":
		return matchCodeable(v, c.alts)
	case c.p.Type == m.SearchParamTypeString:
		return matchString(v, c.alts)
	default:
		s, _ := v.(string)
		for _, a := range c.alts {
			if s == a {
				return true
			}
		}
		return false
	}
}

// matchString matches a string or HumanName element as FHIR's string
// search does, here: an alternative that starts any word of its text (or
// the whole text), in any case.
func matchString(v any, alts []string) bool {
	var texts []string
	switch v := v.(type) {
	case string:
		texts = append(texts, v)
	case []any:
		for _, x := range v {
			n, _ := x.(map[string]any)
			for _, k := range []string{"text", "family"} {
				if s, ok := n[k].(string); ok {
					texts = append(texts, s)
				}
			}
			given, _ := n["given"].([]any)
			for _, g := range given {
				if s, ok := g.(string); ok {
					texts = append(texts, s)
				}
			}
		}
	}
	for _, t := range texts {
		t = strings.ToLower(t)
		words := append(strings.Fields(t), t)
		for _, a := range alts {
			a = strings.ToLower(strings.TrimSpace(a))
			if a == "" {
				continue
			}
			for _, w := range words {
				if strings.HasPrefix(w, a) {
					return true
				}
			}
		}
	}
	return false
}

// matchCodeable matches a CodeableConcept against [system]|code tokens.
func matchCodeable(v any, alts []string) bool {
	cc, _ := v.(map[string]any)
	codings, _ := cc["coding"].([]any)
	for _, x := range codings {
		c, _ := x.(map[string]any)
		sys, _ := c["system"].(string)
		code, _ := c["code"].(string)
		for _, a := range alts {
			if s, k, ok := strings.Cut(a, "|"); ok {
				if k == code && (s == "" || s == sys) {
					return true
				}
			} else if a == code {
				return true
			}
		}
	}
	return false
}

func (d dateParam) match(lo, hi time.Time) bool {
	switch d.prefix {
	case "lt":
		return lo.Before(d.lo)
	case "le":
		return lo.Before(d.hi)
	case "gt":
		return hi.After(d.hi)
	case "ge":
		return hi.After(d.lo)
	}
	return !lo.Before(d.lo) && !hi.After(d.hi)
}

func parseDateParam(v string) (dateParam, error) {
	d := dateParam{prefix: "eq"}
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		d.prefix, v = v[:2], v[2:]
		switch d.prefix {
		case "eq", "lt", "le", "gt", "ge":
		default:
			return d, invalid("date: the prefix must be eq, lt, le, gt or ge")
		}
	}
	lo, hi, ok := dateRange(v)
	if !ok {
		return d, invalid("date must be YYYY, YYYY-MM, YYYY-MM-DD or a date and time with its offset")
	}
	d.lo, d.hi = lo, hi
	return d, nil
}

// dateSpan is the span of a date, dateTime or Period element; a Period
// without its end is open.
func dateSpan(v any) (time.Time, time.Time, bool) {
	switch v := v.(type) {
	case string:
		return dateRange(v)
	case map[string]any:
		start, _ := v["start"].(string)
		lo, hi, ok := dateRange(start)
		if !ok {
			return lo, hi, false
		}
		if end, ok := v["end"].(string); ok {
			if _, ehi, ok := dateRange(end); ok && !ehi.Before(hi) {
				return lo, ehi, true
			}
			return time.Time{}, time.Time{}, false
		}
		return lo, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), true
	}
	return time.Time{}, time.Time{}, false
}

// dateRange is the span a FHIR date or dateTime stands for, to its
// precision.
func dateRange(v string) (time.Time, time.Time, bool) {
	for _, l := range []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{time.DateOnly, func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{time.RFC3339, func(t time.Time) time.Time { return t.Add(time.Second) }},
	} {
		if t, err := time.Parse(l.layout, v); err == nil {
			return t, l.next(t), true
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, t.Add(time.Nanosecond), true
	}
	return time.Time{}, time.Time{}, false
}

// Page returns the part of n matches the search's page holds, as indexes;
// none for _summary=count.
func (s *Search) Page(n int) (from, to int) {
	if s.Summary == "count" {
		return min(s.Offset, n), min(s.Offset, n)
	}
	from = min(s.Offset, n)
	to = min(from+s.Count, n)
	return from, to
}

// IDs returns the alternatives of the search's one _id parameter, or nil
// when it has none (or more than one, which ParseSearch's caller refuses
// where one is needed).
func (s *Search) IDs() []string {
	var out []string
	n := 0
	for _, c := range s.conds {
		if c.p.Name == "_id" {
			out, n = c.alts, n+1
		}
	}
	if n != 1 {
		return nil
	}
	return out
}
