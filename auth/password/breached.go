package password

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"io"
	"sort"
	"sync"
)

// breachedGz is the sorted, de-duplicated, lower-cased list of breached
// passwords, dictionary words and names of at least MinLength characters,
// one per line, gzip-compressed. internal/gen builds it and documents its
// sources and licences (the RockYou-derived part is CC BY-SA 3.0).
//
//go:embed breached.txt.gz
var breachedGz []byte

// breachedList is the decompressed list and the offset of each entry's
// first byte, decompressed once on first use so a process that never sets
// a password never pays for it (about 1.3 MB of text and 0.5 MB of offsets).
type breachedList struct {
	text    []byte
	offsets []uint32 // start of each entry; entry i ends at offsets[i+1]-1
}

var loadBreached = sync.OnceValue(func() *breachedList {
	zr, err := gzip.NewReader(bytes.NewReader(breachedGz))
	if err != nil {
		panic("password: embedded breached list is corrupt: " + err.Error())
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		panic("password: embedded breached list is corrupt: " + err.Error())
	}
	text = bytes.TrimSuffix(text, []byte{'\n'})
	l := &breachedList{text: text, offsets: make([]uint32, 0, bytes.Count(text, []byte{'\n'})+1)}
	for start := 0; start < len(text); {
		l.offsets = append(l.offsets, uint32(start))
		i := bytes.IndexByte(text[start:], '\n')
		if i < 0 {
			i = len(text) - start
		}
		start += i + 1
	}
	l.offsets = append(l.offsets, uint32(len(text)+1)) // sentinel: where a final newline would end
	return l
})

func (l *breachedList) len() int { return len(l.offsets) - 1 }

func (l *breachedList) entry(i int) []byte {
	return l.text[l.offsets[i] : l.offsets[i+1]-1]
}

// breached reports whether the normalised, lower-cased s is in the list,
// by binary search: about 17 comparisons for the 128,637 entries.
func breached(s string) bool {
	l := loadBreached()
	b := []byte(s)
	i := sort.Search(l.len(), func(i int) bool { return bytes.Compare(l.entry(i), b) >= 0 })
	return i < l.len() && bytes.Equal(l.entry(i), b)
}
