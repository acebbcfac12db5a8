package keyring

import (
	"context"
	"encoding/binary"
	"sync"

	"haven"
)

// AD says where a sealed value belongs. It is authenticated with the value
// (associated data), so a ciphertext copied to another practice, patient,
// record kind, record or field fails to open: swapping encrypted cells
// between rows is caught, not silently believed.
type AD struct {
	// PracticeID is the tenant ([PlatformPracticeID] for platform records).
	PracticeID string
	// PatientID is the patient the value is about. Empty means a
	// practice-level record (a workforce user's email, say), sealed under
	// the practice's own data key.
	PatientID string
	// Kind is the record kind ("user", "note", "message", "blob" …).
	Kind string
	// RecordID is the row's id.
	RecordID string
	// Field is the column or part ("email", "body", "content" …).
	Field string
}

func (a AD) validate() error {
	if err := validPracticeID(a.PracticeID); err != nil {
		return err
	}
	if a.Kind == "" || a.RecordID == "" || a.Field == "" {
		return haven.Errorf(haven.EINVALID, "sealing needs a record kind, record id and field")
	}
	return nil
}

// appendAD appends the domain tag and every field, each length-prefixed,
// so no two different ADs encode alike.
func (a AD) append(b []byte, domain string) []byte {
	b = appendLP(b, domain)
	b = appendLP(b, a.PracticeID)
	b = appendLP(b, a.PatientID)
	b = appendLP(b, a.Kind)
	b = appendLP(b, a.RecordID)
	return appendLP(b, a.Field)
}

// Sealed value, format 1:
//
//	format 0x01 | key kind | key version u32 | nonce [12] | AES-256-GCM ciphertext and tag
//
// The first six bytes are authenticated too. The key is found from the AD
// (practice, patient) and the header (kind, version), so rotating a data
// key or adding an algorithm later is a new version or format byte, never
// a flag day.
const (
	sealedFormatV1 = 0x01
	keyKindData    = 0x01
	sealedHeader   = 6
	nonceSize      = 12
	tagSize        = 16
	sealedMin      = sealedHeader + nonceSize + tagSize
	fieldDomain    = "haven.field.v1"
)

// aadPool recycles associated-data buffers: sealing a field is on every
// PHI write path, and the buffer is the one allocation besides the output.
var aadPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// SealedParts is a parsed sealed value. Its slices alias the input.
type SealedParts struct {
	Format     byte
	KeyKind    string // KindData
	KeyVersion int
	Nonce      []byte
	Ciphertext []byte // ciphertext followed by the 16-byte tag
}

// ParseSealed splits a sealed value into its parts, checking only the
// framing (authentication happens in Open). It never panics, whatever the
// input: sealed values come back from storage, which Haven does not trust.
func ParseSealed(s haven.Sealed) (SealedParts, error) {
	if len(s) < sealedMin {
		return SealedParts{}, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed value is too short")
	}
	if s[0] != sealedFormatV1 {
		return SealedParts{}, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed value has an unknown format")
	}
	if s[1] != keyKindData {
		return SealedParts{}, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed value names an unknown key kind")
	}
	v := binary.BigEndian.Uint32(s[2:6])
	if v == 0 || v > 1<<30 {
		return SealedParts{}, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed value names an impossible key version")
	}
	return SealedParts{
		Format:     s[0],
		KeyKind:    KindData,
		KeyVersion: int(v),
		Nonce:      s[sealedHeader : sealedHeader+nonceSize],
		Ciphertext: s[sealedHeader+nonceSize:],
	}, nil
}

// Seal encrypts plaintext under the data key of ad's patient (made on first
// use), bound to ad. The nonce is random: with one key per patient, the
// 2^32-messages-per-key bound of random GCM nonces is out of reach.
func (k *Keyring) Seal(ctx context.Context, ad AD, plaintext []byte) (haven.Sealed, error) {
	if err := ad.validate(); err != nil {
		return nil, err
	}
	e, err := k.dataKey(ctx, ad.PracticeID, ad.PatientID, 0, true)
	if err != nil {
		return nil, err
	}
	out := make([]byte, sealedHeader, sealedMin+len(plaintext))
	out[0] = sealedFormatV1
	out[1] = keyKindData
	binary.BigEndian.PutUint32(out[2:6], uint32(e.version))
	bp := aadPool.Get().(*[]byte)
	aad := ad.append(append((*bp)[:0], out[:sealedHeader]...), fieldDomain)
	// The random-nonce GCM (see newGCM) appends nonce || ciphertext.
	out = e.aead.Seal(out, nil, plaintext, aad)
	*bp = aad
	aadPool.Put(bp)
	return out, nil
}

// Open decrypts s, which must have been sealed with exactly this ad. It
// fails with haven.ENOTFOUND (cause ErrKeyDestroyed) if the patient's data
// key was shredded, and with haven.EINTERNAL (cause ErrTampered) if s was
// altered, truncated or belongs to another record.
func (k *Keyring) Open(ctx context.Context, ad AD, s haven.Sealed) ([]byte, error) {
	if err := ad.validate(); err != nil {
		return nil, err
	}
	p, err := ParseSealed(s)
	if err != nil {
		return nil, err
	}
	e, err := k.dataKey(ctx, ad.PracticeID, ad.PatientID, p.KeyVersion, false)
	if err != nil {
		return nil, err
	}
	bp := aadPool.Get().(*[]byte)
	aad := ad.append(append((*bp)[:0], s[:sealedHeader]...), fieldDomain)
	pt, err := e.aead.Open(nil, nil, s[sealedHeader:], aad)
	*bp = aad
	aadPool.Put(bp)
	if err != nil {
		return nil, haven.Wrap(haven.EINTERNAL, ErrTampered, "sealed value failed authentication")
	}
	return pt, nil
}
