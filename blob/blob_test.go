package blob_test

import (
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"haven"
	"haven/blob"
)

func TestValidKeyAcceptsIDPaths(t *testing.T) {
	for _, key := range []string{
		"a",
		"0",
		"practice/0123abcd/patient/xyz_9/file-1",
		"a/b/c",
		"_",
		"-",
		strings.Repeat("k", blob.MaxKeyLen),
	} {
		if err := blob.ValidKey(key); err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil", key, err)
		}
	}
}

// BadKeys are keys an attacker might send to escape the store or to collide
// with another blob. blobtest reuses the list against every Store.
func TestValidKeyRefusesTraversalAndOddBytes(t *testing.T) {
	for _, key := range badKeys {
		err := blob.ValidKey(key)
		if haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("ValidKey(%q) = %v, want EINVALID", key, err)
			continue
		}
		if key != "" && strings.Contains(haven.ErrorMessage(err), key) {
			t.Errorf("ValidKey(%q) echoes the rejected key in its message %q", key, haven.ErrorMessage(err))
		}
	}
}

var badKeys = []string{
	"",
	".",
	"..",
	"../etc/passwd",
	"a/../../b",
	"a/./b",
	"/etc/passwd",
	"/a",
	"a/",
	"a//b",
	`a\b`,
	`..\..\windows`,
	"A",
	"Patient",
	"a b",
	"a\x00b",
	"a\nb",
	"a.b",
	".hidden",
	"%2e%2e/x",
	"a:b",
	"~",
	"a\u2215b", // division slash, looks like "/"
	"é",
	strings.Repeat("k", blob.MaxKeyLen+1),
}

// FuzzValidKey checks that every key ValidKey accepts stays inside a store
// root however a backend turns it into a path.
func FuzzValidKey(f *testing.F) {
	for _, k := range badKeys {
		f.Add(k)
	}
	f.Add("practice/p1/patient/x/file-1")
	f.Fuzz(func(t *testing.T, key string) {
		if blob.ValidKey(key) != nil {
			return
		}
		if len(key) == 0 || len(key) > blob.MaxKeyLen {
			t.Fatalf("accepted key of length %d", len(key))
		}
		if strings.Contains(key, "..") || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
			t.Fatalf("accepted traversal key %q", key)
		}
		if path.Clean(key) != key {
			t.Fatalf("accepted non-canonical key %q", key)
		}
		if !filepath.IsLocal(key) || !fs.ValidPath(key) {
			t.Fatalf("accepted key %q that is not a local path", key)
		}
		root := filepath.Join("store", "root")
		if p := filepath.Join(root, key); !strings.HasPrefix(p, root+string(filepath.Separator)) {
			t.Fatalf("key %q escapes root: %s", key, p)
		}
		if strings.ToLower(key) != key {
			t.Fatalf("accepted upper-case key %q", key)
		}
	})
}
