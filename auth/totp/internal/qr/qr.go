// Package qr encodes short text as a QR code (ISO/IEC 18004), byte mode,
// error correction level M, versions 1 to 10: enough for an otpauth://
// enrolment URI of up to 213 bytes. It exists so that showing a TOTP secret
// as a picture needs no third-party module: the secret goes into it, so the
// fewer hands it passes through the better.
//
// It only encodes; it never logs or keeps its input.
package qr

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
)

// ErrTooLong is returned for text beyond version 10's capacity at level M.
var ErrTooLong = errors.New("qr: text too long")

// block structure for level M, versions 1..10: EC codewords per block,
// and the count and data size of the blocks in each of two groups.
var levelM = [11]struct{ ec, n1, d1, n2, d2 int }{
	{},
	{10, 1, 16, 0, 0},
	{16, 1, 28, 0, 0},
	{26, 1, 44, 0, 0},
	{18, 2, 32, 0, 0},
	{24, 2, 43, 0, 0},
	{16, 4, 27, 0, 0},
	{18, 4, 31, 0, 0},
	{22, 2, 38, 2, 39},
	{22, 3, 36, 2, 37},
	{26, 4, 43, 1, 44},
}

// alignment pattern centres, versions 1..10.
var alignment = [11][]int{
	{}, {}, {6, 18}, {6, 22}, {6, 26}, {6, 30}, {6, 34},
	{6, 22, 38}, {6, 24, 42}, {6, 26, 46}, {6, 28, 50},
}

// Code is an encoded symbol: Size×Size modules, true for dark.
type Code struct {
	Version int
	Size    int
	Mask    int
	dark    []bool
	fn      []bool // function modules (not data)
}

// Dark reports whether the module at column x, row y is dark.
func (c *Code) Dark(x, y int) bool { return c.dark[y*c.Size+x] }

func (c *Code) set(x, y int, dark, function bool) {
	c.dark[y*c.Size+x] = dark
	if function {
		c.fn[y*c.Size+x] = true
	}
}

func dataCodewords(v int) int { b := levelM[v]; return b.n1*b.d1 + b.n2*b.d2 }

// Encode returns the QR code for text at the smallest version that fits,
// with the mask that scores lowest under the standard's penalty rules.
func Encode(text []byte) (*Code, error) {
	v := 1
	for ; v <= 10; v++ {
		countBits := 8
		if v >= 10 {
			countBits = 16
		}
		if 4+countBits+8*len(text) <= 8*dataCodewords(v) {
			break
		}
	}
	if v > 10 {
		return nil, ErrTooLong
	}
	codewords := interleave(v, dataBits(v, text))

	var best *Code
	bestScore := -1
	for mask := range 8 {
		c := withMask(v, codewords, mask)
		if s := c.penalty(); best == nil || s < bestScore {
			best, bestScore = c, s
		}
	}
	return best, nil
}

func withMask(v int, codewords []byte, mask int) *Code {
	c := newCode(v)
	c.drawCodewords(codewords)
	c.applyMask(mask)
	c.drawFormat(mask)
	return c
}

// dataBits builds the data codewords: byte-mode header, text, terminator
// and padding.
func dataBits(v int, text []byte) []byte {
	var bits []bool
	put := func(val, n int) {
		for i := n - 1; i >= 0; i-- {
			bits = append(bits, val>>i&1 == 1)
		}
	}
	put(0b0100, 4)
	if v >= 10 {
		put(len(text), 16)
	} else {
		put(len(text), 8)
	}
	for _, b := range text {
		put(int(b), 8)
	}
	capacity := 8 * dataCodewords(v)
	put(0, min(4, capacity-len(bits)))
	for len(bits)%8 != 0 {
		bits = append(bits, false)
	}
	out := make([]byte, 0, capacity/8)
	for i := 0; i < len(bits); i += 8 {
		var b byte
		for j := range 8 {
			if bits[i+j] {
				b |= 0x80 >> j
			}
		}
		out = append(out, b)
	}
	for pad := byte(0xEC); len(out) < capacity/8; pad ^= 0xEC ^ 0x11 {
		out = append(out, pad)
	}
	return out
}

// interleave splits data into blocks, appends each block's Reed-Solomon
// codewords, and interleaves them as the symbol stores them.
func interleave(v int, data []byte) []byte {
	b := levelM[v]
	div := rsDivisor(b.ec)
	var blocks, ecs [][]byte
	for i, off := 0, 0; i < b.n1+b.n2; i++ {
		n := b.d1
		if i >= b.n1 {
			n = b.d2
		}
		blk := data[off : off+n]
		off += n
		blocks = append(blocks, blk)
		ecs = append(ecs, rsRemainder(blk, div))
	}
	var out []byte
	for i := range max(b.d1, b.d2) {
		for _, blk := range blocks {
			if i < len(blk) {
				out = append(out, blk[i])
			}
		}
	}
	for i := range b.ec {
		for _, ec := range ecs {
			out = append(out, ec[i])
		}
	}
	return out
}

// gfMul multiplies in GF(2^8) modulo x^8+x^4+x^3+x^2+1.
func gfMul(x, y byte) byte {
	var z byte
	for i := 7; i >= 0; i-- {
		hi := z & 0x80
		z <<= 1
		if hi != 0 {
			z ^= 0x1D
		}
		if y>>i&1 == 1 {
			z ^= x
		}
	}
	return z
}

// rsDivisor returns the generator polynomial of the given degree, highest
// coefficient first, leading 1 omitted.
func rsDivisor(degree int) []byte {
	r := make([]byte, degree)
	r[degree-1] = 1
	root := byte(1)
	for range degree {
		for j := range r {
			r[j] = gfMul(r[j], root)
			if j+1 < len(r) {
				r[j] ^= r[j+1]
			}
		}
		root = gfMul(root, 2)
	}
	return r
}

func rsRemainder(data, div []byte) []byte {
	r := make([]byte, len(div))
	for _, b := range data {
		f := b ^ r[0]
		copy(r, r[1:])
		r[len(r)-1] = 0
		for i := range r {
			r[i] ^= gfMul(div[i], f)
		}
	}
	return r
}

func newCode(v int) *Code {
	size := 17 + 4*v
	c := &Code{Version: v, Size: size, dark: make([]bool, size*size), fn: make([]bool, size*size)}
	for i := range size { // timing patterns
		c.set(6, i, i%2 == 0, true)
		c.set(i, 6, i%2 == 0, true)
	}
	for _, p := range [][2]int{{3, 3}, {size - 4, 3}, {3, size - 4}} { // finders and separators
		for dy := -4; dy <= 4; dy++ {
			for dx := -4; dx <= 4; dx++ {
				x, y := p[0]+dx, p[1]+dy
				if x < 0 || y < 0 || x >= size || y >= size {
					continue
				}
				d := max(abs(dx), abs(dy))
				c.set(x, y, d != 2 && d != 4, true)
			}
		}
	}
	al := alignment[v]
	for i, ax := range al {
		for j, ay := range al {
			if (i == 0 && j == 0) || (i == 0 && j == len(al)-1) || (i == len(al)-1 && j == 0) {
				continue // overlaps a finder
			}
			for dy := -2; dy <= 2; dy++ {
				for dx := -2; dx <= 2; dx++ {
					c.set(ax+dx, ay+dy, max(abs(dx), abs(dy)) != 1, true)
				}
			}
		}
	}
	c.drawFormat(0) // reserve the format areas; redrawn after masking
	if v >= 7 {
		rem := v
		for range 12 {
			rem = rem<<1 ^ (rem>>11)*0x1F25
		}
		bits := v<<12 | rem
		for i := range 18 {
			bit := bits>>i&1 == 1
			a, b := size-11+i%3, i/3
			c.set(a, b, bit, true)
			c.set(b, a, bit, true)
		}
	}
	return c
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// drawFormat writes the format information (level M, mask) in both places.
func (c *Code) drawFormat(mask int) {
	data := 0<<3 | mask // level M's format bits are 00
	rem := data
	for range 10 {
		rem = rem<<1 ^ (rem>>9)*0x537
	}
	bits := (data<<10 | rem) ^ 0x5412
	bit := func(i int) bool { return bits>>i&1 == 1 }
	for i := 0; i <= 5; i++ {
		c.set(8, i, bit(i), true)
	}
	c.set(8, 7, bit(6), true)
	c.set(8, 8, bit(7), true)
	c.set(7, 8, bit(8), true)
	for i := 9; i < 15; i++ {
		c.set(14-i, 8, bit(i), true)
	}
	for i := range 8 {
		c.set(c.Size-1-i, 8, bit(i), true)
	}
	for i := 8; i < 15; i++ {
		c.set(8, c.Size-15+i, bit(i), true)
	}
	c.set(8, c.Size-8, true, true) // the dark module
}

// drawCodewords places the codewords in the zigzag order of the standard,
// two columns at a time from the right, skipping the vertical timing column.
func (c *Code) drawCodewords(data []byte) {
	i := 0
	for right := c.Size - 1; right >= 1; right -= 2 {
		if right == 6 {
			right = 5
		}
		for vert := range c.Size {
			for j := range 2 {
				x := right - j
				y := vert
				if (right+1)&2 == 0 {
					y = c.Size - 1 - vert
				}
				if c.fn[y*c.Size+x] {
					continue
				}
				if i < len(data)*8 {
					c.dark[y*c.Size+x] = data[i>>3]>>(7-i&7)&1 == 1
					i++
				}
				// Remainder bits stay light.
			}
		}
	}
}

func (c *Code) applyMask(mask int) {
	for y := range c.Size {
		for x := range c.Size {
			var m bool
			switch mask {
			case 0:
				m = (x+y)%2 == 0
			case 1:
				m = y%2 == 0
			case 2:
				m = x%3 == 0
			case 3:
				m = (x+y)%3 == 0
			case 4:
				m = (x/3+y/2)%2 == 0
			case 5:
				m = x*y%2+x*y%3 == 0
			case 6:
				m = (x*y%2+x*y%3)%2 == 0
			case 7:
				m = ((x+y)%2+x*y%3)%2 == 0
			}
			if m && !c.fn[y*c.Size+x] {
				c.dark[y*c.Size+x] = !c.dark[y*c.Size+x]
			}
		}
	}
	c.Mask = mask
}

// penalty scores the symbol under the four rules of ISO/IEC 18004 §7.8.3;
// lower is easier for a camera to read.
func (c *Code) penalty() int {
	n := c.Size
	score := 0
	line := func(get func(i int) bool) {
		run := 1
		for i := 1; i <= n; i++ {
			if i < n && get(i) == get(i-1) {
				run++
				continue
			}
			if run >= 5 {
				score += 3 + run - 5
			}
			run = 1
		}
		// Finder-like 1:1:3:1:1 with four light modules on either side.
		pat := []bool{true, false, true, true, true, false, true}
		for i := 0; i+7 <= n; i++ {
			match := true
			for k, p := range pat {
				if get(i+k) != p {
					match = false
					break
				}
			}
			if !match {
				continue
			}
			light := func(from, to int) bool {
				for k := from; k < to; k++ {
					if k >= 0 && k < n && get(k) {
						return false
					}
				}
				return true
			}
			if light(i-4, i) || light(i+7, i+11) {
				score += 40
			}
		}
	}
	for y := range n {
		line(func(i int) bool { return c.Dark(i, y) })
	}
	for x := range n {
		line(func(i int) bool { return c.Dark(x, i) })
	}
	dark := 0
	for y := range n {
		for x := range n {
			if c.Dark(x, y) {
				dark++
			}
			if x+1 < n && y+1 < n {
				d := c.Dark(x, y)
				if c.Dark(x+1, y) == d && c.Dark(x, y+1) == d && c.Dark(x+1, y+1) == d {
					score += 3
				}
			}
		}
	}
	dev := abs(dark*20-n*n*10) / (n * n) // in 5% steps from 50%
	score += 10 * dev
	return score
}

// PNG renders the code with scale pixels per module and the standard quiet
// zone of four modules, black on white.
func (c *Code) PNG(scale int) ([]byte, error) {
	scale = max(1, scale)
	side := (c.Size + 8) * scale
	img := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.White, color.Black})
	for y := range c.Size {
		for x := range c.Size {
			if !c.Dark(x, y) {
				continue
			}
			for dy := range scale {
				for dx := range scale {
					img.SetColorIndex((x+4)*scale+dx, (y+4)*scale+dy, 1)
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
