package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// GroupInfoTBSLabel is the SignWithLabel label of a group info (RFC 9420
// §12.4.3).
const GroupInfoTBSLabel = "GroupInfoTBS"

// GroupInfo is RFC 9420 §12.4.3 GroupInfo:
//
//	struct {
//	    GroupContext group_context;
//	    Extension extensions<V>;
//	    MAC confirmation_tag;
//	    uint32 signer;
//	    /* SignWithLabel(., "GroupInfoTBS", GroupInfoTBS) */
//	    opaque signature<V>;
//	} GroupInfo;
//
// Signer is the leaf index of the signing member.
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      Extensions
	ConfirmationTag []byte
	Signer          uint32
	Signature       []byte
}

// MarshalTBS writes GroupInfoTBS: the group info without its signature.
func (g *GroupInfo) MarshalTBS(b *cryptobyte.Builder) {
	g.GroupContext.Marshal(b)
	g.Extensions.Marshal(b)
	codec.AddVarBytes(b, g.ConfirmationTag)
	b.AddUint32(g.Signer)
}

// TBS returns the encoded GroupInfoTBS, the content the signature covers.
func (g *GroupInfo) TBS() ([]byte, error) {
	var b cryptobyte.Builder
	g.MarshalTBS(&b)
	return b.Bytes()
}

// Marshal writes g.
func (g *GroupInfo) Marshal(b *cryptobyte.Builder) {
	g.MarshalTBS(b)
	codec.AddVarBytes(b, g.Signature)
}

// Unmarshal reads a GroupInfo.
func (g *GroupInfo) Unmarshal(s *cryptobyte.String) bool {
	var v GroupInfo
	if !v.GroupContext.Unmarshal(s) ||
		!v.Extensions.Unmarshal(s) ||
		!readOpaque(s, &v.ConfirmationTag) ||
		!s.ReadUint32(&v.Signer) ||
		!readOpaque(s, &v.Signature) {
		return false
	}
	*g = v
	return true
}

// MarshalBinary encodes g.
func (g *GroupInfo) MarshalBinary() ([]byte, error) { return marshalBinary(g) }

// UnmarshalBinary decodes exactly one GroupInfo from data.
func (g *GroupInfo) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, g, "group info")
}

// PathSecret is RFC 9420 §12.4.3.1 PathSecret:
// struct { opaque path_secret<V>; } PathSecret;
type PathSecret struct {
	PathSecret []byte
}

// Marshal writes p.
func (p *PathSecret) Marshal(b *cryptobyte.Builder) { codec.AddVarBytes(b, p.PathSecret) }

// Unmarshal reads a PathSecret.
func (p *PathSecret) Unmarshal(s *cryptobyte.String) bool { return readOpaque(s, &p.PathSecret) }

// MarshalBinary encodes p.
func (p *PathSecret) MarshalBinary() ([]byte, error) { return marshalBinary(p) }

// UnmarshalBinary decodes exactly one PathSecret from data.
func (p *PathSecret) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, p, "path secret")
}

// GroupSecrets is RFC 9420 §12.4.3.1 GroupSecrets, the plaintext of
// EncryptedGroupSecrets.encrypted_group_secrets:
//
//	struct {
//	  opaque joiner_secret<V>;
//	  optional<PathSecret> path_secret;
//	  PreSharedKeyID psks<V>;
//	} GroupSecrets;
//
// PathSecret is nil when absent.
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   *PathSecret
	PSKs         []PreSharedKeyID
}

// Marshal writes g.
func (g *GroupSecrets) Marshal(b *cryptobyte.Builder) {
	codec.AddVarBytes(b, g.JoinerSecret)
	addPresence(b, g.PathSecret != nil)
	if g.PathSecret != nil {
		g.PathSecret.Marshal(b)
	}
	addList(b, g.PSKs, addStruct[PreSharedKeyID])
}

// Unmarshal reads a GroupSecrets.
func (g *GroupSecrets) Unmarshal(s *cryptobyte.String) bool {
	var v GroupSecrets
	var present bool
	if !readOpaque(s, &v.JoinerSecret) || !readPresence(s, &present) {
		return false
	}
	if present {
		v.PathSecret = new(PathSecret)
		if !v.PathSecret.Unmarshal(s) {
			return false
		}
	}
	if !readList(s, &v.PSKs, readStruct[PreSharedKeyID]) {
		return false
	}
	*g = v
	return true
}

// MarshalBinary encodes g.
func (g *GroupSecrets) MarshalBinary() ([]byte, error) { return marshalBinary(g) }

// UnmarshalBinary decodes exactly one GroupSecrets from data.
func (g *GroupSecrets) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, g, "group secrets")
}

// EncryptedGroupSecrets is RFC 9420 §12.4.3.1 EncryptedGroupSecrets:
//
//	struct {
//	  KeyPackageRef new_member;
//	  HPKECiphertext encrypted_group_secrets;
//	} EncryptedGroupSecrets;
//
// NewMember is a KeyPackageRef, a HashReference (opaque<V>, §5.2).
type EncryptedGroupSecrets struct {
	NewMember             []byte
	EncryptedGroupSecrets HPKECiphertext
}

// Marshal writes e.
func (e *EncryptedGroupSecrets) Marshal(b *cryptobyte.Builder) {
	codec.AddVarBytes(b, e.NewMember)
	e.EncryptedGroupSecrets.Marshal(b)
}

// Unmarshal reads an EncryptedGroupSecrets.
func (e *EncryptedGroupSecrets) Unmarshal(s *cryptobyte.String) bool {
	var v EncryptedGroupSecrets
	if !readOpaque(s, &v.NewMember) || !v.EncryptedGroupSecrets.Unmarshal(s) {
		return false
	}
	*e = v
	return true
}

// Welcome is RFC 9420 §12.4.3.1 Welcome:
//
//	struct {
//	  CipherSuite cipher_suite;
//	  EncryptedGroupSecrets secrets<V>;
//	  opaque encrypted_group_info<V>;
//	} Welcome;
type Welcome struct {
	CipherSuite        CipherSuite
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// Marshal writes w.
func (w *Welcome) Marshal(b *cryptobyte.Builder) {
	if w.CipherSuite == 0 {
		invalid(b, "welcome with reserved cipher suite")
		return
	}
	b.AddUint16(uint16(w.CipherSuite))
	addList(b, w.Secrets, addStruct[EncryptedGroupSecrets])
	codec.AddVarBytes(b, w.EncryptedGroupInfo)
}

// Unmarshal reads a Welcome.
func (w *Welcome) Unmarshal(s *cryptobyte.String) bool {
	var v Welcome
	if !readUint16(s, &v.CipherSuite) || v.CipherSuite == 0 ||
		!readList(s, &v.Secrets, readStruct[EncryptedGroupSecrets]) ||
		!readOpaque(s, &v.EncryptedGroupInfo) {
		return false
	}
	*w = v
	return true
}

// MarshalBinary encodes w.
func (w *Welcome) MarshalBinary() ([]byte, error) { return marshalBinary(w) }

// UnmarshalBinary decodes exactly one Welcome from data.
func (w *Welcome) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, w, "welcome")
}
