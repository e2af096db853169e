package ratchet

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"math/bits"

	"golang.org/x/crypto/chacha20poly1305"
)

// kdfRKHE is KDF_RK_HE(rk, dh_out) of Double Ratchet §4.2 with the
// recommendation of §5.2: HKDF-SHA256 with rk as salt and the ratchet secret
// as input keying material, output split into a new root key, a chain key
// and a next header key. For the post-quantum step the input keying material
// is DH output || KEM shared secret, as in SimpleX's PQ double ratchet
// (KDF_RK_HE(state.RK, DH(...) || ss)); kemSS is empty for a step without a
// KEM contribution.
func kdfRKHE(rk *rootKey, dhOut, kemSS []byte) (newRK rootKey, ck chainKey, nhk headerKey, err error) {
	var ikmBuf [x25519KeySize + kemSSSize]byte
	ikm := append(append(ikmBuf[:0], dhOut...), kemSS...)
	out, err := hkdf.Key(sha256.New, ikm, rk[:], labelKDFRK, 3*keySize)
	clear(ikmBuf[:])
	if err != nil {
		return newRK, ck, nhk, fmt.Errorf("ratchet: KDF_RK: %w", err)
	}
	copy(newRK[:], out[0:keySize])
	copy(ck[:], out[keySize:2*keySize])
	copy(nhk[:], out[2*keySize:])
	clear(out)
	return newRK, ck, nhk, nil
}

// kdfCK is KDF_CK(ck) of Double Ratchet §3.1 with the recommendation of
// §5.2: HMAC-SHA256 keyed with ck over the constant 0x01 gives the message
// key, over 0x02 the next chain key.
func kdfCK(ck *chainKey) (next chainKey, mk messageKey) {
	h := hmac.New(sha256.New, ck[:])
	h.Write([]byte{kdfCKMessageKey})
	h.Sum(mk[:0])
	h.Reset()
	h.Write([]byte{kdfCKChainKey})
	h.Sum(next[:0])
	return next, mk
}

// initialKeys derives the initial root key and the shared header keys
// shared_hka and shared_nhkb (Double Ratchet §4.4) from PQXDH's SK.
func initialKeys(sk *[keySize]byte) (rk rootKey, hka, nhkb headerKey, err error) {
	for _, k := range []struct {
		dst   *[keySize]byte
		label string
	}{{(*[keySize]byte)(&rk), labelRootKey}, {(*[keySize]byte)(&hka), labelSharedHKa}, {(*[keySize]byte)(&nhkb), labelSharedNHKb}} {
		out, err := hkdf.Expand(sha256.New, sk[:], k.label, keySize)
		if err != nil {
			return rk, hka, nhkb, fmt.Errorf("ratchet: deriving initial keys: %w", err)
		}
		copy(k.dst[:], out)
		clear(out)
	}
	return rk, hka, nhkb, nil
}

// One type per key role (Double Ratchet §3.2 state variables), so that a
// key of one role cannot be passed where another is expected.
type (
	rootKey    [keySize]byte // RK
	chainKey   [keySize]byte // CKs, CKr
	headerKey  [keySize]byte // HKs, HKr, NHKs, NHKr (Double Ratchet §4.3)
	messageKey [keySize]byte // mk
)

// headerAEAD is the AEAD of HENCRYPT/HDECRYPT (Double Ratchet §4.2).
func headerAEAD(hk *headerKey) cipher.AEAD { return newAEAD((*[keySize]byte)(hk)) }

// messageAEAD is the AEAD of ENCRYPT/DECRYPT (Double Ratchet §3.1).
func messageAEAD(mk *messageKey) cipher.AEAD { return newAEAD((*[keySize]byte)(mk)) }

// newAEAD returns XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03) keyed
// with k. ENCRYPT and HENCRYPT may be any AEAD (Double Ratchet §3.1, §4.2,
// §5.2). HENCRYPT's key is reused across a chain, so §4.2 asks for a
// stateful nonce or "a random non-repeating value chosen with at least 128
// bits of entropy": XChaCha20's 192-bit nonce is drawn at random, which
// AES-GCM's 96-bit nonce would not allow. ChaCha20 is also constant-time
// in software, on platforms without AES instructions (WebAssembly, older
// phones).
func newAEAD(k *[keySize]byte) cipher.AEAD {
	aead, err := chacha20poly1305.NewX(k[:])
	if err != nil {
		panic("ratchet: XChaCha20-Poly1305 with a 32-byte key failed: " + err.Error())
	}
	return aead
}

// paddedSize returns the padded length of a plaintext of n bytes: Padmé
// (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
// Communication with PURBs", PETS 2019, §4) applied to n+1 (the length
// with the 0x80 marker), and at least minPaddedSize. Padmé leaks
// O(log log n) bits of the length with at most 12% overhead.
func paddedSize(n int) int {
	l := n + 1
	if l <= minPaddedSize {
		return minPaddedSize
	}
	e := bits.Len(uint(l)) - 1 // floor(log2 l)
	s := bits.Len(uint(e))     // floor(log2 e) + 1
	mask := 1<<(e-s) - 1
	return (l + mask) &^ mask
}

// pad appends plaintext, the marker byte 0x80 and zero bytes up to
// paddedSize (ISO/IEC 7816-4 padding), so unpad removes it unambiguously.
func pad(dst, plaintext []byte) []byte {
	total := paddedSize(len(plaintext))
	dst = append(dst, plaintext...)
	dst = append(dst, 0x80)
	for range total - len(plaintext) - 1 {
		dst = append(dst, 0)
	}
	return dst
}

// unpad removes the padding added by pad, or reports false if the input is
// not exactly what pad produces. It runs only on authenticated plaintext,
// so it is no oracle.
func unpad(p []byte) ([]byte, bool) {
	i := len(p) - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	if i < 0 || p[i] != 0x80 || paddedSize(i) != len(p) {
		return nil, false
	}
	return p[:i], true
}
