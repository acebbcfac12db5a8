package totp

import (
	"testing"
	"time"
)

// FuzzValidate: whatever is typed as a code, Validate never panics and
// accepts nothing but a code the secret produces in the window.
func FuzzValidate(f *testing.F) {
	secret := NewSecret()
	at := time.Unix(1_800_000_000, 0)
	good, _ := Code(secret, at)
	f.Add(good)
	f.Add("12 34 56")
	f.Add("１２３４５６")
	f.Fuzz(func(t *testing.T, code string) {
		step, err := Validate(secret, code, at, 0)
		if err != nil {
			return
		}
		want, _ := Code(secret, time.Unix(step*30, 0))
		if step < Step(at)-Skew || step > Step(at)+Skew {
			t.Fatalf("accepted step %d outside the window", step)
		}
		if got := stripSpaces(code); got != want {
			t.Fatalf("accepted %q for step %d whose code is %s", code, step, want)
		}
	})
}

func stripSpaces(s string) string {
	out := make([]byte, 0, len(s))
	for i := range len(s) {
		if s[i] != ' ' {
			out = append(out, s[i])
		}
	}
	return string(out)
}
