package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// Proposal is RFC 9420 §12.1 Proposal, a tagged union: the field named by
// Type must be set (and no other).
//
//	struct {
//	    ProposalType proposal_type;
//	    select (Proposal.proposal_type) {
//	        case add:                      Add;
//	        case update:                   Update;
//	        case remove:                   Remove;
//	        case psk:                      PreSharedKey;
//	        case reinit:                   ReInit;
//	        case external_init:            ExternalInit;
//	        case group_context_extensions: GroupContextExtensions;
//	    };
//	} Proposal;
//
// Proposal types without a body defined by RFC 9420 are rejected on decode.
type Proposal struct {
	Type                   ProposalType
	Add                    *Add
	Update                 *Update
	Remove                 *Remove
	PreSharedKey           *PreSharedKey
	ReInit                 *ReInit
	ExternalInit           *ExternalInit
	GroupContextExtensions *GroupContextExtensions
}

// body returns the marshaler selected by p.Type and whether exactly that arm
// is set.
func (p *Proposal) body() (marshaler, bool) {
	set := 0
	for _, isSet := range []bool{p.Add != nil, p.Update != nil, p.Remove != nil,
		p.PreSharedKey != nil, p.ReInit != nil, p.ExternalInit != nil,
		p.GroupContextExtensions != nil} {
		if isSet {
			set++
		}
	}
	if set != 1 {
		return nil, false
	}
	switch {
	case p.Type == ProposalTypeAdd && p.Add != nil:
		return p.Add, true
	case p.Type == ProposalTypeUpdate && p.Update != nil:
		return p.Update, true
	case p.Type == ProposalTypeRemove && p.Remove != nil:
		return p.Remove, true
	case p.Type == ProposalTypePSK && p.PreSharedKey != nil:
		return p.PreSharedKey, true
	case p.Type == ProposalTypeReInit && p.ReInit != nil:
		return p.ReInit, true
	case p.Type == ProposalTypeExternalInit && p.ExternalInit != nil:
		return p.ExternalInit, true
	case p.Type == ProposalTypeGroupContextExtensions && p.GroupContextExtensions != nil:
		return p.GroupContextExtensions, true
	}
	return nil, false
}

// Marshal writes p.
func (p *Proposal) Marshal(b *cryptobyte.Builder) {
	body, ok := p.body()
	if !ok {
		invalid(b, "proposal whose type does not match its content")
		return
	}
	b.AddUint16(uint16(p.Type))
	body.Marshal(b)
}

// Unmarshal reads a Proposal.
func (p *Proposal) Unmarshal(s *cryptobyte.String) bool {
	var v Proposal
	if !readUint16(s, &v.Type) {
		return false
	}
	var body unmarshaler
	switch v.Type {
	case ProposalTypeAdd:
		v.Add = new(Add)
		body = v.Add
	case ProposalTypeUpdate:
		v.Update = new(Update)
		body = v.Update
	case ProposalTypeRemove:
		v.Remove = new(Remove)
		body = v.Remove
	case ProposalTypePSK:
		v.PreSharedKey = new(PreSharedKey)
		body = v.PreSharedKey
	case ProposalTypeReInit:
		v.ReInit = new(ReInit)
		body = v.ReInit
	case ProposalTypeExternalInit:
		v.ExternalInit = new(ExternalInit)
		body = v.ExternalInit
	case ProposalTypeGroupContextExtensions:
		v.GroupContextExtensions = new(GroupContextExtensions)
		body = v.GroupContextExtensions
	default:
		return false
	}
	if !body.Unmarshal(s) {
		return false
	}
	*p = v
	return true
}

// MarshalBinary encodes p. (A ProposalRef, RFC 9420 §5.2, hashes the
// AuthenticatedContent that carried the proposal, not this encoding.)
func (p *Proposal) MarshalBinary() ([]byte, error) { return marshalBinary(p) }

// UnmarshalBinary decodes exactly one Proposal from data.
func (p *Proposal) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, p, "proposal")
}

// ProposalOrRef is RFC 9420 §12.4 ProposalOrRef:
//
//	struct {
//	  ProposalOrRefType type;
//	  select (ProposalOrRef.type) {
//	    case proposal:  Proposal proposal;
//	    case reference: ProposalRef reference;
//	  };
//	} ProposalOrRef;
//
// ProposalRef is a HashReference, opaque<V> (§5.2).
type ProposalOrRef struct {
	Type      ProposalOrRefType
	Proposal  *Proposal // ProposalOrRefTypeProposal
	Reference []byte    // ProposalOrRefTypeReference
}

// Marshal writes p.
func (p *ProposalOrRef) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Type))
	switch {
	case p.Type == ProposalOrRefTypeProposal && p.Proposal != nil && len(p.Reference) == 0:
		p.Proposal.Marshal(b)
	case p.Type == ProposalOrRefTypeReference && p.Proposal == nil:
		codec.AddVarBytes(b, p.Reference)
	default:
		invalid(b, "ProposalOrRef whose type does not match its content")
	}
}

// Unmarshal reads a ProposalOrRef.
func (p *ProposalOrRef) Unmarshal(s *cryptobyte.String) bool {
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	v := ProposalOrRef{Type: ProposalOrRefType(t)}
	switch v.Type {
	case ProposalOrRefTypeProposal:
		v.Proposal = new(Proposal)
		if !v.Proposal.Unmarshal(s) {
			return false
		}
	case ProposalOrRefTypeReference:
		if !readOpaque(s, &v.Reference) {
			return false
		}
	default:
		return false
	}
	*p = v
	return true
}

// Commit is RFC 9420 §12.4 Commit:
//
//	struct {
//	    ProposalOrRef proposals<V>;
//	    optional<UpdatePath> path;
//	} Commit;
//
// Path is nil when the commit carries no UpdatePath.
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

// Marshal writes c.
func (c *Commit) Marshal(b *cryptobyte.Builder) {
	addList(b, c.Proposals, addStruct[ProposalOrRef])
	addPresence(b, c.Path != nil)
	if c.Path != nil {
		c.Path.Marshal(b)
	}
}

// Unmarshal reads a Commit.
func (c *Commit) Unmarshal(s *cryptobyte.String) bool {
	var v Commit
	var present bool
	if !readList(s, &v.Proposals, readStruct[ProposalOrRef]) || !readPresence(s, &present) {
		return false
	}
	if present {
		v.Path = new(UpdatePath)
		if !v.Path.Unmarshal(s) {
			return false
		}
	}
	*c = v
	return true
}

// MarshalBinary encodes c.
func (c *Commit) MarshalBinary() ([]byte, error) { return marshalBinary(c) }

// UnmarshalBinary decodes exactly one Commit from data.
func (c *Commit) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, c, "commit")
}
