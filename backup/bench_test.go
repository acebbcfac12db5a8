package backup_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"haven/backup"
)

// BenchmarkBackup measures a backup's create and restore throughput over
// files on disk (a 16 MiB database snapshot and 32 blobs of 1 MiB: random
// bytes, like the sealed content they stand for) against a plain copy of
// the same files in the same run (baseline). Create reads, hashes, tars
// and age-encrypts into a file; restore decrypts, checks every part and
// the signed manifest and writes each part to a file.
func BenchmarkBackup(b *testing.B) {
	src := b.TempDir()
	type file struct {
		name, path string
		size       int64
	}
	var files []file
	var total int64
	add := func(name string, size int64) {
		p := filepath.Join(src, fmt.Sprintf("f%d", len(files)))
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, size); err != nil {
			b.Fatal(err)
		}
		f.Close()
		files = append(files, file{name, p, size})
		total += size
	}
	add(backup.PartSQLite, 16<<20)
	for i := range 32 {
		add(fmt.Sprintf("%s%02x/blob-%d", backup.BlobPrefix, i, i), 1<<20)
	}
	keys, err := backup.GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	rs, _ := backup.ParseRecipients(keys.Recipient)
	ids, _ := backup.ParseIdentities(strings.NewReader(keys.Identity))
	work := b.TempDir()
	archive := filepath.Join(work, "backup")

	create := func() {
		out, err := os.Create(archive)
		if err != nil {
			b.Fatal(err)
		}
		w, err := backup.NewWriter(out, rs, keys.SigningKey, "sqlite", time.Now())
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range files {
			in, err := os.Open(f.path)
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Add(f.name, f.size, in); err != nil {
				b.Fatal(err)
			}
			in.Close()
		}
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
		out.Close()
	}
	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(total)
		for i := 0; b.Loop(); i++ {
			dst := filepath.Join(work, fmt.Sprintf("copy-%d", i))
			os.Mkdir(dst, 0o700)
			for j, f := range files {
				in, _ := os.Open(f.path)
				out, err := os.Create(filepath.Join(dst, fmt.Sprint(j)))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(out, in); err != nil {
					b.Fatal(err)
				}
				in.Close()
				out.Close()
			}
			os.RemoveAll(dst)
		}
	})
	b.Run("create", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			create()
		}
	})
	b.Run("restore", func(b *testing.B) {
		create()
		b.SetBytes(total)
		for i := 0; b.Loop(); i++ {
			dst := filepath.Join(work, fmt.Sprintf("restore-%d", i))
			os.Mkdir(dst, 0o700)
			in, _ := os.Open(archive)
			n := 0
			_, err := backup.Read(in, ids, keys.VerifierKey, func(p backup.Part, r io.Reader) error {
				out, err := os.Create(filepath.Join(dst, fmt.Sprint(n)))
				if err != nil {
					return err
				}
				n++
				_, err = io.Copy(out, r)
				out.Close()
				return err
			})
			in.Close()
			if err != nil {
				b.Fatal(err)
			}
			os.RemoveAll(dst)
		}
	})
}
