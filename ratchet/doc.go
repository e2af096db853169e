// Package ratchet implements Signal's Double Ratchet algorithm with header
// encryption (Double Ratchet §4), hardened with a post-quantum KEM step that
// follows SimpleX's post-quantum double ratchet ("PQ2HE", simplex-chat
// docs/rfcs/2023-09-30-pq-double-ratchet.md): every ratchet public key
// travels with an ML-KEM-768 encapsulation key, the peer's next ratchet step
// encapsulates to it, and the KEM shared secret is concatenated with the
// X25519 output as the input keying material of KDF_RK, so an attacker must
// break both X25519 and ML-KEM-768.
//
// Specification: https://signal.org/docs/specifications/doubleratchet/
// (revision 1, 2016-11-20). Section numbers in comments refer to it.
//
// A Session is created from the output of PQXDH (the shared secret SK, the
// associated data AD and Bob's signed prekey as his first ratchet key) with
// NewInitiator or NewResponder. Encrypt and Decrypt advance it;
// MarshalBinary and UnmarshalSession persist it. Decrypt is transactional:
// on any error the session is left exactly as it was.
//
// A Session is not safe for concurrent use.
//
// The byte layouts, labels, limits and the choice of post-quantum design are
// documented in docs/PROTOCOL.md, "Double Ratchet with a post-quantum step".
package ratchet
