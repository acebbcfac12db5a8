package password

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"unicode/utf8"

	"haven"

	"golang.org/x/text/unicode/norm"
)

func TestBreachedAndCommonPasswordsAreRefused(t *testing.T) {
	for _, pw := range []string{
		"password1", "iloveyou", "Password1", "PASSWORD1", "ILoveYou",
		"12345678", "qwertyuiop", "trustno1", "baseball", "starwars",
		"football1", "1qaz2wsx", "superman", "sunshine",
	} {
		if !Breached(pw) {
			t.Errorf("Breached(%q) = false, want true", pw)
			continue
		}
		err := Check(pw)
		if haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("Check(%q) = %v, want %s", pw, err, haven.EINVALID)
			continue
		}
		msg := haven.ErrorMessage(err)
		if !strings.Contains(msg, "breached or common") {
			t.Errorf("Check(%q) message %q does not say why", pw, msg)
		}
		if strings.Contains(strings.ToLower(msg), strings.ToLower(pw)) {
			t.Errorf("Check(%q) message echoes the password: %q", pw, msg)
		}
	}
}

func TestRandomPassphraseIsAccepted(t *testing.T) {
	pw := rand.Text()[:20] // 100 bits from crypto/rand, base32
	if err := Check(pw); err != nil {
		t.Fatalf("Check(random 20 characters) = %v, want nil", err)
	}
	if err := Check("correct horse battery staple"); err != nil {
		t.Fatalf("Check(passphrase) = %v, want nil", err)
	}
}

func TestPasswordLength(t *testing.T) {
	decomposedE := "e\u0301" // "é" as two code points; one character after NFC
	tests := []struct {
		name string
		pw   string
		ok   bool
	}{
		{"Empty", "", false},
		{"SevenCharacters", "zQ8#kW2", false},
		{"EightCharacters", "zQ8#kW2v", true},
		{"128Characters", strings.Repeat("zQ8#kW2v", 16), true},
		{"256Characters", strings.Repeat("zQ8#kW2v", 32), true},
		{"257Characters", strings.Repeat("zQ8#kW2v", 32) + "x", false},
		{"EightCharactersOf16CodePointsBeforeNFC", strings.Repeat(decomposedE, 4) + "zQ8#", true},
		{"SevenCharactersOf10CodePointsBeforeNFC", strings.Repeat(decomposedE, 3) + "zQ8#", false},
		{"UnicodeCountsCharactersNotBytes", "ümlaut€✓", true},
		{"OverByteLimit", strings.Repeat("€", MaxBytes/3+1), false},
		{"NotUTF8", "zQ8#kW2v\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.pw)
			if tt.ok && err != nil {
				t.Fatalf("Check = %v, want nil", err)
			}
			if !tt.ok && haven.ErrorCode(err) != haven.EINVALID {
				t.Fatalf("Check = %v, want %s", err, haven.EINVALID)
			}
		})
	}
}

// TestBreachedListIsWellFormed guards the embedded artefact: enough entries
// to matter, and sorted and normalised exactly as the lookup assumes, or
// the binary search would silently miss entries.
func TestBreachedListIsWellFormed(t *testing.T) {
	l := loadBreached()
	if n := l.len(); n < 100_000 {
		t.Fatalf("breached list has %d entries, want at least 100,000", n)
	}
	var prev []byte
	for i := range l.len() {
		e := l.entry(i)
		s := string(e)
		if i > 0 && bytes.Compare(prev, e) >= 0 {
			t.Fatalf("entry %d %q is not after %q", i, e, prev)
		}
		if !utf8.Valid(e) || utf8.RuneCount(e) < MinLength || norm.NFC.String(s) != s || strings.ToLower(s) != s || bytes.ContainsAny(e, "\n\r") {
			t.Fatalf("entry %d %q is not NFC, lower-case, %d+ characters", i, e, MinLength)
		}
		prev = e
	}
	// The first and last entries are found too (off-by-one guards).
	if !breached(string(l.entry(0))) || !breached(string(l.entry(l.len()-1))) {
		t.Fatal("first or last entry not found")
	}
	if breached("") || breached(string(l.entry(0))[:MinLength-1]) {
		t.Fatal("a prefix of an entry was reported as breached")
	}
}
