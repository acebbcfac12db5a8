package recovery

import "testing"

// FuzzRedeemInput: whatever is typed as a recovery code, Hash never
// panics, and anything it accepts is exactly Length symbols of the
// alphabet once separators are dropped.
func FuzzRedeemInput(f *testing.F) {
	codes, _ := Generate("u1")
	f.Add(codes[0])
	f.Add("o0il-1LIO-xxxx")
	f.Fuzz(func(t *testing.T, code string) {
		c, ok := canonical(code)
		if !ok {
			if _, ok := Hash("u1", code); ok {
				t.Fatal("Hash accepted what canonical refused")
			}
			return
		}
		if len(c) != Length {
			t.Fatalf("canonical(%q) = %q", code, c)
		}
		for i := range len(c) {
			found := false
			for j := range len(alphabet) {
				found = found || alphabet[j] == c[i]
			}
			if !found {
				t.Fatalf("canonical(%q) = %q has %q", code, c, c[i])
			}
		}
	})
}
