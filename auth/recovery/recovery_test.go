package recovery

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"haven"
)

var ctx = context.Background()

func issue(t *testing.T, st Store, userID string) []string {
	t.Helper()
	codes, err := Issue(ctx, st, userID)
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

func TestEachCodeWorksOnce(t *testing.T) {
	st := &MemoryStore{}
	codes := issue(t, st, "u1")
	for i, c := range codes {
		left, err := Redeem(ctx, st, "u1", c)
		if err != nil || left != Count-1-i {
			t.Fatalf("Redeem(code %d) = %d, %v; want %d, nil", i, left, err, Count-1-i)
		}
		if _, err := Redeem(ctx, st, "u1", c); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Fatalf("Redeem(code %d) a second time = %v, want %s", i, err, haven.EUNAUTHORIZED)
		}
	}
}

func TestWrongCodeIsRefused(t *testing.T) {
	st := &MemoryStore{}
	issue(t, st, "u1")
	other, _ := Generate("u1") // well-formed, never issued
	for _, c := range append(other[:3], "", "0000-0000-0000", "not a code", "ABCD-EFGH-JKMN-P", "ÅBCD-EFGH-JKMN") {
		if _, err := Redeem(ctx, st, "u1", c); haven.ErrorCode(err) != haven.EUNAUTHORIZED {
			t.Errorf("Redeem(%q) = %v, want %s", c, err, haven.EUNAUTHORIZED)
		}
	}
	if codes, _ := st.RecoveryCodes(ctx, "u1"); len(codes) != Count {
		t.Fatalf("%d codes left after wrong guesses, want %d", len(codes), Count)
	}
}

func TestAnotherUsersCodeIsRefused(t *testing.T) {
	st := &MemoryStore{}
	issue(t, st, "victim")
	mine := issue(t, st, "attacker")
	if _, err := Redeem(ctx, st, "victim", mine[0]); err == nil {
		t.Fatal("the attacker's own code worked on the victim's account")
	}
	// Copying the attacker's stored hashes into the victim's row does not
	// help either: hashes bind the user id.
	h, _ := st.RecoveryCodes(ctx, "attacker")
	st.ReplaceRecoveryCodes(ctx, "victim", h)
	if _, err := Redeem(ctx, st, "victim", mine[1]); err == nil {
		t.Fatal("a hash copied from another user's row accepted that user's code")
	}
}

func TestNewSetRevokesOldCodes(t *testing.T) {
	st := &MemoryStore{}
	old := issue(t, st, "u1")
	issue(t, st, "u1")
	if _, err := Redeem(ctx, st, "u1", old[0]); err == nil {
		t.Fatal("a code from the replaced set still works")
	}
}

func TestCodeIsReadAsWrittenByHand(t *testing.T) {
	st := &MemoryStore{}
	codes := issue(t, st, "u1")
	// Lower case, no dashes, spaces, and the look-alike letters.
	sloppy := strings.ToLower(strings.ReplaceAll(codes[0], "-", " "))
	sloppy = strings.NewReplacer("0", "o", "1", "l").Replace(sloppy)
	if _, err := Redeem(ctx, st, "u1", sloppy); err != nil {
		t.Fatalf("Redeem(%q for %q) = %v", sloppy, codes[0], err)
	}
}

func TestRacingRedeemsOfOneCodeSucceedOnce(t *testing.T) {
	st := &MemoryStore{}
	c := issue(t, st, "u1")[0]
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := Redeem(ctx, st, "u1", c); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d racing redeems succeeded, want 1", ok.Load())
	}
}

func TestGeneratedCodesAndTheirStoredForm(t *testing.T) {
	codes, hashes := Generate("u1")
	format := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)
	seen := map[string]bool{}
	for i, c := range codes {
		if !format.MatchString(c) || seen[c] {
			t.Fatalf("code %q is malformed or repeated", c)
		}
		seen[c] = true
		if bytes.Contains(hashes[i], []byte(strings.ReplaceAll(c, "-", ""))) || len(hashes[i]) != 32 {
			t.Fatalf("stored form of code %d is not a SHA-256 hash", i)
		}
		if j, ok := Match(hashes, "u1", c); !ok || j != i {
			t.Fatalf("Match(code %d) = %d, %v", i, j, ok)
		}
	}
}
