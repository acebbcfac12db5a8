package qr

import (
	"bytes"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodesWithAnIndependentReader renders codes of every version this
// package makes and reads them back with zbarimg (Debian's zbar-tools),
// a decoder written by other people to the same standard. Without it the
// test is skipped: TestStructure below still runs.
func TestDecodesWithAnIndependentReader(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg not installed (apt-get install zbar-tools)")
	}
	dir := t.TempDir()
	seen := map[int]bool{}
	for _, n := range []int{1, 14, 20, 26, 40, 60, 62, 84, 100, 106, 120, 122, 150, 152, 180, 213} {
		text := strings.Repeat("otpauth://totp/Haven:alex?secret=JBSWY3DPEHPK3PXP&", 5)[:n]
		c, err := Encode([]byte(text))
		if err != nil {
			t.Fatalf("Encode(%d bytes) = %v", n, err)
		}
		seen[c.Version] = true
		img, err := c.PNG(4)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "code.png")
		if err := os.WriteFile(f, img, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zbar, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", f).Output()
		if err != nil {
			t.Fatalf("version %d, mask %d, %d bytes: zbarimg failed: %v", c.Version, c.Mask, n, err)
		}
		if got := strings.TrimSuffix(string(out), "\n"); got != text {
			t.Fatalf("version %d: decoded %q, want %q", c.Version, got, text)
		}
	}
	for v := 1; v <= 10; v++ {
		if !seen[v] {
			t.Errorf("version %d was not exercised", v)
		}
	}
	// Every mask pattern, whichever the penalty rules would pick, at a
	// version with version information (7) and one without (2).
	for _, text := range []string{"otpauth://totp/a", strings.Repeat("k", 120)} {
		c, _ := Encode([]byte(text))
		for mask := range 8 {
			m := withMask(c.Version, interleave(c.Version, dataBits(c.Version, []byte(text))), mask)
			img, _ := m.PNG(4)
			f := filepath.Join(dir, "mask.png")
			os.WriteFile(f, img, 0o600)
			out, err := exec.Command(zbar, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", f).Output()
			if got := strings.TrimSuffix(string(out), "\n"); err != nil || got != text {
				t.Errorf("version %d mask %d: decoded %q, %v; want %q", m.Version, mask, got, err, text)
			}
		}
	}
}

func TestTooLongTextIsRefused(t *testing.T) {
	if _, err := Encode(make([]byte, 214)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Encode(214 bytes) = %v, want ErrTooLong", err)
	}
	if _, err := Encode(make([]byte, 213)); err != nil {
		t.Fatalf("Encode(213 bytes) = %v", err)
	}
}

// TestStructure checks what a reader relies on first: finder patterns in
// three corners, timing patterns, and format information that decodes to
// level M and the chosen mask in both of its copies.
func TestStructure(t *testing.T) {
	c, err := Encode([]byte("otpauth://totp/Haven:alex?secret=JBSWY3DPEHPK3PXP"))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Size
	if n != 17+4*c.Version {
		t.Fatalf("size %d for version %d", n, c.Version)
	}
	for _, corner := range [][2]int{{0, 0}, {n - 7, 0}, {0, n - 7}} {
		for dy := range 7 {
			for dx := range 7 {
				d := max(abs(dx-3), abs(dy-3))
				if c.Dark(corner[0]+dx, corner[1]+dy) != (d != 2) {
					t.Fatalf("finder at %v is wrong at (%d,%d)", corner, dx, dy)
				}
			}
		}
	}
	for i := 8; i < n-8; i++ {
		if c.Dark(i, 6) != (i%2 == 0) || c.Dark(6, i) != (i%2 == 0) {
			t.Fatalf("timing pattern wrong at %d", i)
		}
	}
	var first, second int
	for i := 0; i <= 5; i++ {
		first |= b(c.Dark(8, i)) << i
	}
	first |= b(c.Dark(8, 7))<<6 | b(c.Dark(8, 8))<<7 | b(c.Dark(7, 8))<<8
	for i := 9; i < 15; i++ {
		first |= b(c.Dark(14-i, 8)) << i
	}
	for i := range 8 {
		second |= b(c.Dark(n-1-i, 8)) << i
	}
	for i := 8; i < 15; i++ {
		second |= b(c.Dark(8, n-15+i)) << i
	}
	if first != second {
		t.Fatalf("format copies differ: %015b vs %015b", first, second)
	}
	f := first ^ 0x5412
	if level, mask := f>>13, f>>10&7; level != 0 || mask != c.Mask {
		t.Fatalf("format says level %02b mask %d; want M (00) mask %d", level, mask, c.Mask)
	}
	rem := f >> 10
	for range 10 {
		rem = rem<<1 ^ (rem>>9)*0x537
	}
	if rem != f&0x3FF {
		t.Fatalf("format BCH check bits %010b, want %010b", f&0x3FF, rem)
	}
	if _, err := png.Decode(bytes.NewReader(mustPNG(t, c))); err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}
}

// TestReedSolomonKnownAnswer checks the error correction against the
// worked example of ISO/IEC 18004 Annex I (version 1-M, "01234567").
func TestReedSolomonKnownAnswer(t *testing.T) {
	data := []byte{0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11}
	want := []byte{0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55}
	if got := rsRemainder(data, rsDivisor(10)); !bytes.Equal(got, want) {
		t.Fatalf("EC codewords % X, want % X", got, want)
	}
}

func b(x bool) int {
	if x {
		return 1
	}
	return 0
}

func mustPNG(t *testing.T, c *Code) []byte {
	t.Helper()
	p, err := c.PNG(2)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
