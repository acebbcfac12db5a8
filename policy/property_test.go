package policy_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"haven"
	"haven/policy"
)

// sourceFiles parses the package's non-test Go files.
func sourceFiles(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatal("no source files found")
	}
	return fset, files
}

// TestEveryActionConstantIsInThePermissionTable reads the source for every
// constant of type Action, so that an action added without a row in the
// table (or a row without a constant) fails here rather than being
// silently denied or silently allowed.
func TestEveryActionConstantIsInThePermissionTable(t *testing.T) {
	_, files := sourceFiles(t)
	seen := map[policy.Action]string{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Action" {
					continue
				}
				for i, name := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("action %s is not a string literal", name.Name)
					}
					v, _ := strconv.Unquote(lit.Value)
					if other, dup := seen[policy.Action(v)]; dup {
						t.Errorf("%s and %s share the value %q", name.Name, other, v)
					}
					seen[policy.Action(v)] = name.Name
					if !policy.Action(v).Valid() {
						t.Errorf("action %s (%q) has no row in the permission table", name.Name, v)
					}
				}
			}
		}
	}
	for _, act := range policy.Actions() {
		if _, ok := seen[act]; !ok {
			t.Errorf("the permission table has a row for %q that no Action constant names", act)
		}
	}
	if len(seen) < 40 {
		t.Fatalf("found only %d action constants; the source scan is broken", len(seen))
	}
}

// TestDecideReadsNoClockAndDoesNoIO holds policy to its promise of purity:
// it imports nothing that reaches outside, and never asks the clock.
func TestDecideReadsNoClockAndDoesNoIO(t *testing.T) {
	fset, files := sourceFiles(t)
	allowedImports := map[string]bool{"haven": true, "slices": true, "time": true, "net/netip": true} // netip: address values, no I/O
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true}
	for _, f := range files {
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowedImports[path] {
				t.Errorf("%s imports %q", fset.Position(imp.Pos()), path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" && clock[n.Sel.Name] {
					t.Errorf("%s reads the clock (time.%s)", fset.Position(n.Pos()), n.Sel.Name)
				}
			case *ast.GoStmt:
				t.Errorf("%s starts a goroutine", fset.Position(n.Pos()))
			}
			return true
		})
	}
}

// request pools: few values, so that equal practices, users and patients
// turn up often enough for the properties to be tested on allows too.
var (
	practicePool = []string{"", practiceA, practiceB}
	userPool     = []string{"", "u1", "u2", "p1", "p2"}
	categoryPool = []string{"", "mental_health", "substance_use"}
	// visitStates makes one visit in three a cancelled one.
	visitStates = []string{haven.VisitBooked, haven.VisitWaiting, haven.VisitCancelled}
	rolePool    = append([]haven.Role{"", "root"}, haven.Roles...)
	actionPool  = append([]policy.Action{"", "chart.*"}, policy.Actions()...)
	kindPool    = []policy.Kind{"", policy.KindChart, policy.KindNote, policy.KindUser, policy.KindKey, policy.KindVisit}
)

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func pickSome(rng *rand.Rand, xs []string) []string {
	var out []string
	for _, x := range xs {
		if rng.IntN(2) == 0 {
			out = append(out, x)
		}
	}
	return out
}

// randomRequest draws an arbitrary, often generous, often malformed request.
func randomRequest(rng *rand.Rand) (haven.Actor, policy.Action, policy.Resource, policy.Facts) {
	at := func() time.Time {
		if rng.IntN(8) == 0 {
			return time.Time{}
		}
		return now.Add(time.Duration(rng.Int64N(int64(20*24*time.Hour))) - 10*24*time.Hour)
	}
	a := haven.Actor{
		UserID: pick(rng, userPool), PracticeID: pick(rng, practicePool), Role: pick(rng, rolePool),
		MFA: rng.IntN(4) != 0, AuthTime: now.Add(-time.Duration(rng.Int64N(int64(2 * time.Hour)))),
	}
	act := pick(rng, actionPool)
	r := policy.Resource{Kind: act.Sensitivity().Kind, ID: "r", PracticeID: pick(rng, practicePool),
		PatientID: pick(rng, userPool), Category: pick(rng, categoryPool)}
	if rng.IntN(6) == 0 {
		r.Kind = pick(rng, kindPool)
	}
	f := policy.Facts{
		Now: now,
		Practice: policy.PracticeFacts{PracticeID: pick(rng, practicePool), PatientsRequireMFA: rng.IntN(2) == 0,
			StepUpMaxAge: time.Duration(rng.Int64N(int64(time.Hour))), ClinicalAccess: pickSome(rng, userPool)},
		Patient: policy.PatientFacts{PracticeID: pick(rng, practicePool), PatientID: pick(rng, userPool),
			CareTeam: pickSome(rng, userPool)},
	}
	if rng.IntN(10) == 0 {
		f.Now = time.Time{}
	}
	// Half the requests are well formed, so that allows are common enough
	// for the invariants to bite.
	if rng.IntN(2) == 0 {
		a.MFA = true
		a.UserID = pick(rng, userPool[1:])
		a.Role = pick(rng, haven.Roles)
		a.PracticeID = pick(rng, practicePool[1:])
		if a.Role == haven.RolePlatformOperator {
			a.PracticeID = ""
		}
		if rng.IntN(2) == 0 {
			r.PatientID = a.UserID
		}
		r.PracticeID = a.PracticeID
		f.Practice.PracticeID = a.PracticeID
		f.Patient.PracticeID, f.Patient.PatientID = r.PracticeID, r.PatientID
	}
	for range rng.IntN(3) {
		f.Patient.Visits = append(f.Patient.Visits, haven.Visit{ClinicianID: pick(rng, userPool), Start: at(), End: at(), State: pick(rng, visitStates)})
		f.Patient.BreakGlass = append(f.Patient.BreakGlass, haven.BreakGlassGrant{UserID: pick(rng, userPool), Start: at(), Expires: at()})
	}
	if rng.IntN(4) == 0 {
		f.Patient.Restrictions = haven.Restrictions{
			BarredUsers: pickSome(rng, userPool), StaffFromMessages: rng.IntN(2) == 0,
			Categories: pickSome(rng, categoryPool),
			Consents:   []haven.CategoryConsent{{UserID: pick(rng, userPool), Category: pick(rng, categoryPool)}},
		}
	}
	return a, act, r, f
}

// checkInvariants states what must hold for every request, however odd.
func checkInvariants(t *testing.T, a haven.Actor, act policy.Action, r policy.Resource, f policy.Facts) {
	t.Helper()
	d := policy.Decide(a, act, r, f)
	if d != policy.Decide(a, act, r, f) {
		t.Fatalf("Decide is not deterministic for %+v %s %+v", a, act, r)
	}
	if a.Role == haven.RolePatient {
		// The gate reads a patient's record for her without its relations
		// (service's relationsFor): they must not matter to her decision.
		bare := f
		bare.Patient.CareTeam, bare.Patient.Visits, bare.Patient.BreakGlass = nil, nil, nil
		if bd := policy.Decide(a, act, r, bare); bd != d {
			t.Fatalf("a patient's decision read her relations: %+v with them, %+v without (%+v %s %+v)", d, bd, a, act, r)
		}
	}
	if !d.Allow && !d.StepUp {
		if d.Purpose != policy.PurposeNone || d.Reason == "" {
			t.Fatalf("denial %+v must carry a reason and no purpose", d)
		}
		return
	}
	if d.Allow && d.StepUp {
		t.Fatalf("a decision both allows and asks for step-up: %+v", d)
	}
	s := act.Sensitivity()
	switch {
	case a.PracticeID != r.PracticeID:
		t.Fatalf("crossed practices: actor %q, resource %q, %s: %+v", a.PracticeID, r.PracticeID, act, d)
	case a.UserID == "" || !a.Role.Valid() || !act.Valid():
		t.Fatalf("allowed a malformed request %+v %s: %+v", a, act, d)
	case a.Role.Workforce() && !a.MFA:
		t.Fatalf("workforce without MFA allowed %s: %+v", act, d)
	case a.Role == haven.RolePatient && r.PatientID != a.UserID:
		t.Fatalf("patient %s reached patient %s's record (%s)", a.UserID, r.PatientID, act)
	case a.Role == haven.RolePlatformOperator && s.PHI:
		t.Fatalf("operator allowed PHI action %s", act)
	case r.Kind != s.Kind:
		t.Fatalf("allowed %s on a resource of kind %q", act, r.Kind)
	case d.Purpose == policy.PurposeNone:
		t.Fatalf("allowed without a purpose of use: %+v", d)
	case s.PatientScoped && a.Role.Workforce() && contains(f.Patient.Restrictions.BarredUsers, a.UserID) && f.Patient.PatientID == r.PatientID:
		t.Fatalf("barred user %s allowed %s: %+v", a.UserID, act, d)
	case d.Allow && s.StepUp && (a.AuthTime.IsZero() || f.Now.Sub(a.AuthTime) > policy.DefaultStepUpMaxAge):
		t.Fatalf("%s allowed on a stale authentication", act)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestRandomRequestsKeepTheInvariants draws many arbitrary requests from a
// fixed seed (reproducible) and checks the promises that hold for all.
func TestRandomRequestsKeepTheInvariants(t *testing.T) {
	n := 50_000
	if testing.Short() {
		n = 5_000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var allowed, crossing int
	for range n {
		a, act, r, f := randomRequest(rng)
		if a.PracticeID != r.PracticeID {
			crossing++
		}
		if policy.Decide(a, act, r, f).Allow {
			allowed++
		}
		checkInvariants(t, a, act, r, f)
	}
	if allowed == 0 || crossing == 0 {
		t.Fatalf("the generator is too narrow: %d allowed, %d crossing, of %d", allowed, crossing, n)
	}
	t.Logf("%d requests, %d allowed, %d across practices", n, allowed, crossing)
}

// FuzzDecideNeverCrossesPractices lets the fuzzer choose the tenant fields
// freely (any string, not just the pool) while the rest of the request is
// drawn from its seeds.
func FuzzDecideNeverCrossesPractices(f *testing.F) {
	f.Add(practiceA, practiceB, "u1", "p1", uint64(1), uint64(2))
	f.Add(practiceA, practiceA, "u1", "u1", uint64(3), uint64(4))
	f.Add("", "", "op", "", uint64(5), uint64(6))
	f.Add("", practiceA, "u2", "p2", uint64(7), uint64(8))
	f.Add(practiceA, "practice-a ", "u1", "p1", uint64(9), uint64(10))
	f.Fuzz(func(t *testing.T, actorPractice, resourcePractice, user, patient string, s1, s2 uint64) {
		rng := rand.New(rand.NewPCG(s1, s2))
		a, act, r, facts := randomRequest(rng)
		a.PracticeID, a.UserID = actorPractice, user
		r.PracticeID, r.PatientID = resourcePractice, patient
		// Facts that claim everything for the actor, bound to either side.
		facts.Practice.PracticeID = pick(rng, []string{actorPractice, resourcePractice})
		facts.Practice.ClinicalAccess = append(facts.Practice.ClinicalAccess, user)
		facts.Patient.PracticeID = pick(rng, []string{actorPractice, resourcePractice})
		facts.Patient.PatientID = patient
		facts.Patient.CareTeam = append(facts.Patient.CareTeam, user)
		facts.Patient.BreakGlass = append(facts.Patient.BreakGlass, haven.BreakGlassGrant{UserID: user, Start: now.Add(-time.Minute), Expires: now.Add(time.Hour)})
		checkInvariants(t, a, act, r, facts)
	})
}
