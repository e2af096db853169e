package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// PreSharedKeyID is RFC 9420 §8.4 PreSharedKeyID:
//
//	struct {
//	  PSKType psktype;
//	  select (PreSharedKeyID.psktype) {
//	    case external:
//	      opaque psk_id<V>;
//	    case resumption:
//	      ResumptionPSKUsage usage;
//	      opaque psk_group_id<V>;
//	      uint64 psk_epoch;
//	  };
//	  opaque psk_nonce<V>;
//	} PreSharedKeyID;
type PreSharedKeyID struct {
	Type PSKType
	// external
	PSKID []byte
	// resumption
	Usage      ResumptionPSKUsage
	PSKGroupID []byte
	PSKEpoch   uint64

	PSKNonce []byte
}

// Marshal writes p. Fields of the arm not selected by p.Type must be zero.
func (p *PreSharedKeyID) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Type))
	switch p.Type {
	case PSKTypeExternal:
		if p.Usage != 0 || len(p.PSKGroupID) != 0 || p.PSKEpoch != 0 {
			invalid(b, "external PSK ID with resumption fields")
			return
		}
		codec.AddVarBytes(b, p.PSKID)
	case PSKTypeResumption:
		if len(p.PSKID) != 0 {
			invalid(b, "resumption PSK ID with psk_id")
			return
		}
		if p.Usage < ResumptionPSKUsageApplication || p.Usage > ResumptionPSKUsageBranch {
			invalid(b, "resumption PSK ID of undefined usage")
			return
		}
		b.AddUint8(uint8(p.Usage))
		codec.AddVarBytes(b, p.PSKGroupID)
		b.AddUint64(p.PSKEpoch)
	default:
		invalid(b, "PSK ID of undefined type")
		return
	}
	codec.AddVarBytes(b, p.PSKNonce)
}

// Unmarshal reads a PreSharedKeyID.
func (p *PreSharedKeyID) Unmarshal(s *cryptobyte.String) bool {
	var v PreSharedKeyID
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	v.Type = PSKType(t)
	switch v.Type {
	case PSKTypeExternal:
		if !readOpaque(s, &v.PSKID) {
			return false
		}
	case PSKTypeResumption:
		var u uint8
		if !s.ReadUint8(&u) {
			return false
		}
		v.Usage = ResumptionPSKUsage(u)
		if v.Usage < ResumptionPSKUsageApplication || v.Usage > ResumptionPSKUsageBranch {
			return false
		}
		if !readOpaque(s, &v.PSKGroupID) || !s.ReadUint64(&v.PSKEpoch) {
			return false
		}
	default:
		return false
	}
	if !readOpaque(s, &v.PSKNonce) {
		return false
	}
	*p = v
	return true
}

// MarshalBinary encodes p.
func (p *PreSharedKeyID) MarshalBinary() ([]byte, error) { return marshalBinary(p) }

// UnmarshalBinary decodes exactly one PreSharedKeyID from data.
func (p *PreSharedKeyID) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, p, "pre-shared key ID")
}

// PSKLabel is RFC 9420 §8.4 PSKLabel, the context of the PSK secret
// derivation:
//
//	struct { PreSharedKeyID id; uint16 index; uint16 count; } PSKLabel;
type PSKLabel struct {
	ID    *PreSharedKeyID
	Index uint16
	Count uint16
}

// Marshal writes l.
func (l *PSKLabel) Marshal(b *cryptobyte.Builder) {
	if l.ID == nil {
		invalid(b, "PSKLabel without an ID")
		return
	}
	l.ID.Marshal(b)
	b.AddUint16(l.Index)
	b.AddUint16(l.Count)
}

// MarshalBinary encodes l.
func (l *PSKLabel) MarshalBinary() ([]byte, error) { return marshalBinary(l) }

// Add is RFC 9420 §12.1.1 Add: struct { KeyPackage key_package; } Add;
type Add struct{ KeyPackage KeyPackage }

// Update is RFC 9420 §12.1.2 Update: struct { LeafNode leaf_node; } Update;
type Update struct{ LeafNode LeafNode }

// Remove is RFC 9420 §12.1.3 Remove: struct { uint32 removed; } Remove;
// Removed is a leaf index.
type Remove struct{ Removed uint32 }

// PreSharedKey is RFC 9420 §12.1.4 PreSharedKey:
// struct { PreSharedKeyID psk; } PreSharedKey;
type PreSharedKey struct{ PSK PreSharedKeyID }

// ReInit is RFC 9420 §12.1.5 ReInit:
//
//	struct {
//	    opaque group_id<V>;
//	    ProtocolVersion version;
//	    CipherSuite cipher_suite;
//	    Extension extensions<V>;
//	} ReInit;
type ReInit struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite CipherSuite
	Extensions  Extensions
}

// ExternalInit is RFC 9420 §12.1.6 ExternalInit:
// struct { opaque kem_output<V>; } ExternalInit;
type ExternalInit struct{ KEMOutput []byte }

// GroupContextExtensions is RFC 9420 §12.1.7 GroupContextExtensions:
// struct { Extension extensions<V>; } GroupContextExtensions;
type GroupContextExtensions struct{ Extensions Extensions }

// Marshal writes a.
func (a *Add) Marshal(b *cryptobyte.Builder) { a.KeyPackage.Marshal(b) }

// Unmarshal reads an Add.
func (a *Add) Unmarshal(s *cryptobyte.String) bool { return a.KeyPackage.Unmarshal(s) }

// Marshal writes u.
func (u *Update) Marshal(b *cryptobyte.Builder) { u.LeafNode.Marshal(b) }

// Unmarshal reads an Update.
func (u *Update) Unmarshal(s *cryptobyte.String) bool { return u.LeafNode.Unmarshal(s) }

// Marshal writes r.
func (r *Remove) Marshal(b *cryptobyte.Builder) { b.AddUint32(r.Removed) }

// Unmarshal reads a Remove.
func (r *Remove) Unmarshal(s *cryptobyte.String) bool { return s.ReadUint32(&r.Removed) }

// Marshal writes p.
func (p *PreSharedKey) Marshal(b *cryptobyte.Builder) { p.PSK.Marshal(b) }

// Unmarshal reads a PreSharedKey.
func (p *PreSharedKey) Unmarshal(s *cryptobyte.String) bool { return p.PSK.Unmarshal(s) }

// Marshal writes r.
func (r *ReInit) Marshal(b *cryptobyte.Builder) {
	if r.Version == ProtocolVersionReserved || r.CipherSuite == 0 {
		invalid(b, "ReInit with reserved version or cipher suite")
		return
	}
	codec.AddVarBytes(b, r.GroupID)
	b.AddUint16(uint16(r.Version))
	b.AddUint16(uint16(r.CipherSuite))
	r.Extensions.Marshal(b)
}

// Unmarshal reads a ReInit.
func (r *ReInit) Unmarshal(s *cryptobyte.String) bool {
	var v ReInit
	if !readOpaque(s, &v.GroupID) ||
		!readUint16(s, &v.Version) || v.Version == ProtocolVersionReserved ||
		!readUint16(s, &v.CipherSuite) || v.CipherSuite == 0 ||
		!v.Extensions.Unmarshal(s) {
		return false
	}
	*r = v
	return true
}

// Marshal writes e.
func (e *ExternalInit) Marshal(b *cryptobyte.Builder) { codec.AddVarBytes(b, e.KEMOutput) }

// Unmarshal reads an ExternalInit.
func (e *ExternalInit) Unmarshal(s *cryptobyte.String) bool { return readOpaque(s, &e.KEMOutput) }

// Marshal writes g.
func (g *GroupContextExtensions) Marshal(b *cryptobyte.Builder) { g.Extensions.Marshal(b) }

// Unmarshal reads a GroupContextExtensions.
func (g *GroupContextExtensions) Unmarshal(s *cryptobyte.String) bool {
	return g.Extensions.Unmarshal(s)
}

// MarshalBinary encodes a.
func (a *Add) MarshalBinary() ([]byte, error) { return marshalBinary(a) }

// UnmarshalBinary decodes exactly one Add from data.
func (a *Add) UnmarshalBinary(data []byte) error { return unmarshalBinary(data, a, "Add") }

// MarshalBinary encodes u.
func (u *Update) MarshalBinary() ([]byte, error) { return marshalBinary(u) }

// UnmarshalBinary decodes exactly one Update from data.
func (u *Update) UnmarshalBinary(data []byte) error { return unmarshalBinary(data, u, "Update") }

// MarshalBinary encodes r.
func (r *Remove) MarshalBinary() ([]byte, error) { return marshalBinary(r) }

// UnmarshalBinary decodes exactly one Remove from data.
func (r *Remove) UnmarshalBinary(data []byte) error { return unmarshalBinary(data, r, "Remove") }

// MarshalBinary encodes p.
func (p *PreSharedKey) MarshalBinary() ([]byte, error) { return marshalBinary(p) }

// UnmarshalBinary decodes exactly one PreSharedKey from data.
func (p *PreSharedKey) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, p, "PreSharedKey")
}

// MarshalBinary encodes r.
func (r *ReInit) MarshalBinary() ([]byte, error) { return marshalBinary(r) }

// UnmarshalBinary decodes exactly one ReInit from data.
func (r *ReInit) UnmarshalBinary(data []byte) error { return unmarshalBinary(data, r, "ReInit") }

// MarshalBinary encodes e.
func (e *ExternalInit) MarshalBinary() ([]byte, error) { return marshalBinary(e) }

// UnmarshalBinary decodes exactly one ExternalInit from data.
func (e *ExternalInit) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, e, "ExternalInit")
}

// MarshalBinary encodes g.
func (g *GroupContextExtensions) MarshalBinary() ([]byte, error) { return marshalBinary(g) }

// UnmarshalBinary decodes exactly one GroupContextExtensions from data.
func (g *GroupContextExtensions) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, g, "GroupContextExtensions")
}
