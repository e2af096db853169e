// Package identity holds a Parley device's long-term keys, its prekeys and
// the safety numbers two people compare to verify each other.
//
// A device identity is an Ed25519 signing key and a separate X25519
// key-agreement key. Signal's PQXDH specification uses one Curve25519
// identity key (PQXDH §2.4) for both XEdDSA signatures (§3.2) and
// Diffie-Hellman (§3.3); Parley splits the roles because Go's standard
// library has Ed25519 but no XEdDSA, and Parley builds nothing
// cryptographic of its own. The signing key signs
// the agreement key (a binding signature carried in every PublicIdentity),
// every prekey, and both keys enter the associated data of PQXDH and the
// safety number.
//
// There is no personal identifier anywhere: no phone number, user name or
// account ID. Signal mixes a stable identifier into its fingerprints; Parley
// has none, so safety numbers are computed from the public keys alone.
//
// Key roles each have their own type (SigningPublicKey, AgreementPublicKey,
// PrekeyPublicKey, KEMPublicKey, …) wrapping unexported fields, with a
// constant-time Equal and, for public keys, a text form whose prefix names
// the role ("parley-idsig:", "parley-iddh:", …) so that one kind of key can
// never be parsed as another.
//
// Prekeys follow PQXDH §3.2: a signed X25519 prekey (SPK), one-time X25519
// prekeys (OPK), and signed ML-KEM-1024 prekeys, one-time or last-resort.
// A PrekeyStore generates and keeps their private halves, issues Bundles,
// and deletes one-time prekeys once a session that used them is confirmed.
// The byte layouts are in docs/PROTOCOL.md, section "Identity".
package identity
