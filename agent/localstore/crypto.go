package localstore

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// Labels, spelled once. Every AEAD associated data and every HKDF info
// string starts with one of them, so a value sealed for one purpose never
// opens for another.
const (
	labelHeader = "parley localstore v1 header"
	labelValue  = "parley localstore v1 value"
	labelKeyEnc = "parley localstore v1 value-encryption key"
	labelKeyMAC = "parley localstore v1 lookup-key hmac key"
)

// Sizes.
const (
	masterKeySize = 32
	saltSize      = 16 // RFC 9106 §3.1 recommends 128 bits of salt
	sealedVersion = 1
	headerVersion = 1
	kdfArgon2id   = 1
)

// KDFParams are the Argon2id parameters (RFC 9106 §3.1) a profile's key is
// derived with. They are stored in the header, so a profile keeps the
// parameters it was created with.
type KDFParams struct {
	Time    uint32 // passes, t
	Memory  uint32 // KiB, m
	Threads uint8  // lanes, p
}

// DefaultKDF is RFC 9106 §4's SECOND RECOMMENDED option: Argon2id with
// t=3, p=4 and m=2^16 KiB (64 MiB). The first recommended option needs 2 GiB
// of memory, which phones and browsers do not have; the second is the one the
// RFC names for memory-constrained environments.
var DefaultKDF = KDFParams{Time: 3, Memory: 64 * 1024, Threads: 4}

// TestKDF is a deliberately weak setting (t=1, m=64 KiB) for tests only, so
// that a test suite can create many stores quickly under the race detector.
// Never use it for a real profile.
var TestKDF = KDFParams{Time: 1, Memory: 64, Threads: 1}

func (p KDFParams) valid() error {
	// RFC 9106 §3.1: t ≥ 1, p in [1, 2^24-1], m ≥ 8p KiB. The upper bound on
	// memory (4 GiB) keeps a tampered header from making Open allocate
	// without limit.
	if p.Time < 1 || p.Threads < 1 || p.Memory < 8*uint32(p.Threads) || p.Memory > 4<<20 || p.Time > 1000 {
		return errors.New("invalid argon2id parameters")
	}
	return nil
}

// header is the one plaintext record of the store (in table meta): the KDF
// parameters, the salt and the master key sealed under the passphrase key.
// The sealed master key doubles as the passphrase verifier: a wrong
// passphrase fails its authentication.
//
//	struct {
//	    uint8 version = 1;
//	    uint8 kdf = 1;              /* Argon2id, RFC 9106 */
//	    uint32 time; uint32 memory; uint8 threads;
//	    opaque salt<1..255>;
//	    opaque sealed_master_key<1..2^16-1>;
//	} Header;
type header struct {
	params KDFParams
	salt   []byte
	sealed []byte
}

func (h *header) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(headerVersion)
	b.AddUint8(kdfArgon2id)
	b.AddUint32(h.params.Time)
	b.AddUint32(h.params.Memory)
	b.AddUint8(h.params.Threads)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(h.salt) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(h.sealed) })
	return b.BytesOrPanic()
}

// parseHeader decodes a header, cheapest checks first.
func parseHeader(data []byte) (*header, error) {
	s := cryptobyte.String(data)
	var version, kdf uint8
	h := new(header)
	var salt, sealed cryptobyte.String
	if !s.ReadUint8(&version) || version != headerVersion {
		return nil, fmt.Errorf("%w: unknown header version", ErrCorrupt)
	}
	if !s.ReadUint8(&kdf) || kdf != kdfArgon2id {
		return nil, fmt.Errorf("%w: unknown key derivation function", ErrCorrupt)
	}
	if !s.ReadUint32(&h.params.Time) || !s.ReadUint32(&h.params.Memory) || !s.ReadUint8(&h.params.Threads) ||
		!s.ReadUint8LengthPrefixed(&salt) || !s.ReadUint16LengthPrefixed(&sealed) || !s.Empty() {
		return nil, fmt.Errorf("%w: malformed header", ErrCorrupt)
	}
	if len(salt) == 0 || len(sealed) == 0 {
		return nil, fmt.Errorf("%w: malformed header", ErrCorrupt)
	}
	if err := h.params.valid(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	h.salt = []byte(salt)
	h.sealed = []byte(sealed)
	return h, nil
}

// headerAD binds the sealed master key to the parameters and salt it was
// sealed with.
func (h *header) ad() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(labelHeader))
	b.AddUint32(h.params.Time)
	b.AddUint32(h.params.Memory)
	b.AddUint8(h.params.Threads)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(h.salt) })
	return b.BytesOrPanic()
}

// passphraseKey derives the key-encryption key with Argon2id (RFC 9106 §3).
func passphraseKey(passphrase []byte, h *header) []byte {
	return argon2.IDKey(passphrase, h.salt, h.params.Time, h.params.Memory, h.params.Threads, chacha20poly1305.KeySize)
}

// keys are the working keys derived from the master key with HKDF-SHA256
// (RFC 5869): one encrypts values, one computes lookup-key HMACs.
type keys struct {
	enc []byte // XChaCha20-Poly1305 key
	mac []byte // HMAC-SHA256 key
}

func deriveKeys(master []byte) (*keys, error) {
	enc, err := hkdf.Key(sha256.New, master, nil, labelKeyEnc, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	mac, err := hkdf.Key(sha256.New, master, nil, labelKeyMAC, sha256.Size)
	if err != nil {
		return nil, err
	}
	return &keys{enc: enc, mac: mac}, nil
}

// seal encrypts plaintext with XChaCha20-Poly1305 under a fresh random
// 192-bit nonce (random nonces are safe at this size: draft-irtf-cfrg-xchacha
// §3.1). Layout: version(1) || nonce(24) || ciphertext||tag.
func seal(key, plaintext, ad []byte) []byte {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic("localstore: bad key size") // keys are always 32 bytes here
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(plaintext)+chacha20poly1305.Overhead)
	out[0] = sealedVersion
	if _, err := rand.Read(out[1:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return aead.Seal(out, out[1:], plaintext, ad)
}

// open reverses seal. Any failure is reported as ErrCorrupt without detail.
func open(key, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < 1+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead || sealed[0] != sealedVersion {
		return nil, ErrCorrupt
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, ErrCorrupt
	}
	nonce := sealed[1 : 1+chacha20poly1305.NonceSizeX]
	pt, err := aead.Open(nil, nonce, sealed[1+chacha20poly1305.NonceSizeX:], ad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// lookup computes the keyed lookup key stored in place of a plaintext key:
// HMAC-SHA256(mac, len(table) || table || key).
func (k *keys) lookup(table string, key []byte) []byte {
	m := hmac.New(sha256.New, k.mac)
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(table)) })
	m.Write(b.BytesOrPanic())
	m.Write(key)
	return m.Sum(nil)
}

// groupLookup is lookup in a separate domain for group keys.
func (k *keys) groupLookup(table string, group []byte) []byte {
	if group == nil {
		return []byte{}
	}
	return k.lookup("group:"+table, group)
}

// valueAD binds a sealed cell to its table, column, row and group, so that
// cells cannot be swapped between rows, columns, tables or groups.
func valueAD(table, column string, lk, grp []byte) []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(labelValue))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(table)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(column)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(lk) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(grp) })
	return b.BytesOrPanic()
}

func newSalt() []byte {
	s := make([]byte, saltSize)
	if _, err := rand.Read(s); err != nil {
		panic(err)
	}
	return s
}

func newMasterKey() []byte {
	k := make([]byte, masterKeySize)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}
