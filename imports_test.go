package haven_test

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A listed package, as `go list -deps -test` reports it.
type listed struct {
	ImportPath string // "haven/web", or "haven/web [haven/web.test]" compiled with its tests
	ForTest    string // the package whose tests this variant is built for
	Name       string
	Doc        string
	Standard   bool
	Imports    []string
	Deps       []string
	Dir        string
	GoFiles    []string
}

// goList runs go list -json over the module with the given flags.
func goList(t *testing.T, flags ...string) []listed {
	t.Helper()
	args := append([]string{"list", "-json=ImportPath,ForTest,Name,Doc,Standard,Imports,Deps,Dir,GoFiles"}, flags...)
	cmd := exec.Command("go", append(args, "haven/...")...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var ps []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// plain strips a test variant's suffix: "haven/web [haven/web.test]" and
// the external test package "haven/web_test [haven/web.test]" are both
// haven/web's.
func plain(path string) string {
	path, _, _ = strings.Cut(path, " ")
	return strings.TrimSuffix(path, "_test")
}

// under reports whether path is root or inside it.
func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

func underAny(path string, roots ...string) bool {
	return slices.ContainsFunc(roots, func(r string) bool { return under(path, r) })
}

// boundary is a rule about what a set of packages may depend on.
type boundary struct {
	why        string                // the promise the rule keeps
	applies    func(pkg string) bool // the packages it binds
	tests      bool                  // their tests too
	transitive bool                  // every dependency, not only direct imports
	forbidden  func(dep string) bool // what they must not reach
}

// TestPackageBoundaries holds the spine in the import graph, so it is a
// structure the compiler keeps rather than a convention reviewers keep.
func TestPackageBoundaries(t *testing.T) {
	ps := goList(t, "-deps", "-test")
	std := map[string]bool{}
	for _, p := range ps {
		if p.Standard {
			std[plain(p.ImportPath)] = true
		}
	}
	haven := func(dep string) bool { return dep == "haven" || strings.HasPrefix(dep, "haven/") }
	rules := []boundary{{
		why:        "the domain imports only the standard library, so it reads without knowing what is wired in",
		applies:    func(p string) bool { return p == "haven" },
		transitive: true,
		forbidden:  func(dep string) bool { return !std[dep] },
	}, {
		why:        "storage sees ciphertext only: no storage package, nor its tests, may reach a key",
		applies:    func(p string) bool { return underAny(p, "haven/store", "haven/blob") },
		tests:      true,
		transitive: true,
		forbidden:  func(dep string) bool { return under(dep, "haven/keyring") },
	}, {
		why:        "blob stores hold opaque streams: they reach nothing of Haven's but the domain and each other",
		applies:    func(p string) bool { return under(p, "haven/blob") },
		tests:      true,
		transitive: true,
		forbidden:  func(dep string) bool { return haven(dep) && dep != "haven" && !under(dep, "haven/blob") },
	}, {
		why:        "policy is a pure function of the domain: the domain and the standard library only",
		applies:    func(p string) bool { return under(p, "haven/policy") },
		transitive: true,
		forbidden:  func(dep string) bool { return dep != "haven" && !std[dep] },
	}, {
		why:       "web reaches keys, storage and blobs only through service, whose gate (policy, audit) it cannot skip",
		applies:   func(p string) bool { return under(p, "haven/web") },
		forbidden: func(dep string) bool { return underAny(dep, "haven/store", "haven/keyring", "haven/blob") },
	}, {
		why: "only service opens PHI: no other code holds the keyring (cmd/haven wires it in; tests and their kit may build one)",
		applies: func(p string) bool {
			return !underAny(p, "haven/service", "haven/cmd/haven", "haven/keyring", "haven/internal/testkit")
		},
		forbidden: func(dep string) bool { return under(dep, "haven/keyring") },
	}, {
		why:       "identity holds no key and no blob: it seals, opens and records through the service's gate",
		applies:   func(p string) bool { return under(p, "haven/identity") },
		forbidden: func(dep string) bool { return underAny(dep, "haven/keyring", "haven/blob") },
	}, {
		why:        "service opens PHI for an actor identity has already established: it never reaches back into identity",
		applies:    func(p string) bool { return under(p, "haven/service") },
		transitive: true,
		forbidden:  func(dep string) bool { return under(dep, "haven/identity") },
	}, {
		why:        "media works on the bytes it is handed: it reaches no storage, key, blob, audit log or service, so nothing it does can store, seal or log plaintext",
		applies:    func(p string) bool { return under(p, "haven/media") },
		transitive: true,
		forbidden: func(dep string) bool {
			return underAny(dep, "haven/store", "haven/keyring", "haven/blob", "haven/audit", "haven/service", "haven/web", "haven/identity", "haven/internal")
		},
	}, {
		why:        "hl7 reads and writes the bytes it is handed: it reaches nothing of Haven's and has no logger, so no field of a lab message can be stored, sealed or logged by it",
		applies:    func(p string) bool { return under(p, "haven/hl7") },
		transitive: true,
		forbidden: func(dep string) bool {
			return (haven(dep) && !under(dep, "haven/hl7")) || dep == "log" || dep == "log/slog"
		},
	}, {
		why:        "the card processor adapter is handed PHI-free domain types only: it reaches nothing of Haven's but the domain, so it has no patient, visit or key to send",
		applies:    func(p string) bool { return under(p, "haven/stripe") },
		transitive: true,
		forbidden:  func(dep string) bool { return haven(dep) && dep != "haven" },
	}, {
		why:        "the audit log stands apart from keys and storage: it can be checked with public material alone",
		applies:    func(p string) bool { return under(p, "haven/audit") },
		transitive: true,
		forbidden:  func(dep string) bool { return underAny(dep, "haven/keyring", "haven/store", "haven/blob") },
	}, {
		why:        "the keyring stands apart from the audit log and storage: its key table is an interface",
		applies:    func(p string) bool { return under(p, "haven/keyring") },
		transitive: true,
		forbidden:  func(dep string) bool { return underAny(dep, "haven/audit", "haven/store", "haven/blob") },
	}}

	bound := 0
	for _, r := range rules {
		seen := map[string]bool{}
		for _, p := range ps {
			if p.Standard || strings.HasSuffix(p.ImportPath, ".test") {
				continue
			}
			isTest := p.ForTest != ""
			pkg := plain(p.ImportPath)
			if !haven(pkg) || !r.applies(pkg) || (isTest && !r.tests) {
				continue
			}
			bound++
			deps := p.Imports
			if r.transitive {
				deps = p.Deps
			}
			for _, dep := range deps {
				dep = plain(dep)
				if dep == pkg || !r.forbidden(dep) {
					continue
				}
				if edge := pkg + " -> " + dep; !seen[edge] {
					seen[edge] = true
					t.Errorf("%s: %s", edge, r.why)
				}
			}
		}
	}
	if bound < 20 {
		t.Fatalf("the rules bound only %d packages: go list did not report the module", bound)
	}
}

// TestOnlyTheWiringHoldsTheGate: service.Gate seals, opens and records
// without deciding for an actor (identity decides who the actor is), so
// outside service only identity and smart (the OAuth server, which decides
// who an app's token acts for), which are given it, and cmd/haven, which
// gives it, may name it. web holds the service and could otherwise call
// Service.Gate and open what it likes; the import graph cannot see a
// method call, so this test reads the code.
func TestOnlyTheWiringHoldsTheGate(t *testing.T) {
	allowed := func(p string) bool {
		return underAny(p, "haven/service", "haven/identity", "haven/smart", "haven/cmd/haven")
	}
	checked := 0
	for _, p := range goList(t) {
		if allowed(p.ImportPath) {
			continue
		}
		for _, name := range p.GoFiles {
			fs := token.NewFileSet()
			f, err := parser.ParseFile(fs, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Gate" {
					t.Errorf("%s/%s:%d names the service's gate: only identity, smart and the wiring may", p.ImportPath, name, fs.Position(sel.Pos()).Line)
				}
				return true
			})
		}
	}
	if checked < 100 {
		t.Fatalf("read only %d files: go list did not report the module", checked)
	}
}
