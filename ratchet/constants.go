package ratchet

// Specification constants (Double Ratchet §3.1, §4, §5.2; FIPS 203).
const (
	// MaxSkip is MAX_SKIP (defined in Double Ratchet §3.1, used by
	// SkipMessageKeys in §3.5 and §4.6: "if state.Nr + MAX_SKIP < until:
	// raise Error()"): the most message keys one header may make the
	// receiver skip in a single chain. It is checked before any key is
	// derived.
	MaxSkip = 1000

	// kdfCKMessageKey and kdfCKChainKey are the HMAC inputs of KDF_CK
	// (Double Ratchet §5.2: "HMAC with SHA-256 using ck as the HMAC key and
	// using separate constants as input (e.g. a single byte 0x01 as input to
	// produce the message key, and a single byte 0x02 as input to produce
	// the next chain key)").
	kdfCKMessageKey = 0x01
	kdfCKChainKey   = 0x02

	keySize       = 32   // RK, CK, MK, HK: 32 bytes (Double Ratchet §5.2)
	x25519KeySize = 32   // RFC 7748 §5
	kemSeedSize   = 64   // ML-KEM-768 decapsulation key seed d||z (FIPS 203 §7.1)
	kemEKSize     = 1184 // ML-KEM-768 encapsulation key (FIPS 203 §8, Table 3)
	kemCTSize     = 1088 // ML-KEM-768 ciphertext (FIPS 203 §8, Table 3)
	kemSSSize     = 32   // ML-KEM shared secret (FIPS 203 §8)
	nonceSize     = 24   // XChaCha20-Poly1305 nonce (draft-irtf-cfrg-xchacha-03 §2)
	tagSize       = 16   // Poly1305 tag (RFC 8439 §2.5)
)

// KDF labels: HKDF info strings (RFC 5869 §2.3). Double Ratchet §5.2 asks
// for "an application-specific byte sequence as HKDF info", "chosen to be
// distinct from other uses of HKDF in the application". All of Parley's ratchet labels start with the
// same prefix and differ after it.
const (
	// labelKDFRK is the info of KDF_RK_HE (Double Ratchet §4.2, §5.2).
	labelKDFRK = "Parley_DoubleRatchet_v1_KDF_RK_HE"
	// labelRootKey, labelSharedHKa and labelSharedNHKb derive the initial
	// root key and the shared header keys shared_hka and shared_nhkb
	// (Double Ratchet §4.3, §4.4) from PQXDH's SK with HKDF-Expand
	// (RFC 5869 §2.3); SK is already a uniformly random key, the output of
	// PQXDH's KDF (PQXDH §2.2), so it serves as the PRK (RFC 5869 §3.3).
	labelRootKey    = "Parley_DoubleRatchet_v1_RK"
	labelSharedHKa  = "Parley_DoubleRatchet_v1_shared_hka"
	labelSharedNHKb = "Parley_DoubleRatchet_v1_shared_nhkb"
)

// Implementation limits (Parley's choices, documented in docs/PROTOCOL.md).
const (
	// MaxSkippedKeys caps the total number of stored skipped message keys
	// across all chains (Double Ratchet §6.4). When a new skipped key would
	// exceed it, the oldest stored key is evicted.
	MaxSkippedKeys = 2000

	// MaxChainAge is how many receiving ratchet steps a past receiving
	// chain (its header key and its skipped message keys) is kept for
	// (Double Ratchet §6.4: delete skipped keys "after an appropriate time
	// period" or after a number of ratchet steps). Keeping the header key
	// of recent chains also lets a replay of an old message be reported as
	// ErrReplay rather than as an unknown header.
	MaxChainAge = 32

	// MaxPlaintextSize bounds one message's plaintext.
	MaxPlaintextSize = 1 << 24

	// minPaddedSize is the smallest padded plaintext (see pad).
	minPaddedSize = 64

	// messageVersion and stateVersion are the version bytes of the wire
	// message and of the serialized session state.
	messageVersion = 1
	stateVersion   = 1
)

// Header KEM field kinds (see docs/PROTOCOL.md): a header carries the
// sender's current ML-KEM-768 encapsulation key and, once the sender has
// seen one of the receiver's, the ciphertext its ratchet step encapsulated.
const (
	kemNone          = 0 // classical-only session: no KEM fields
	kemKey           = 1 // encapsulation key only
	kemKeyCiphertext = 2 // encapsulation key and ciphertext
)
