package mls

import (
	"errors"

	"github.com/parley-messenger/parley/mls/internal/wire"
)

// ExternalSendersExtension returns an external_senders group context
// extension (RFC 9420 §12.1.8.1) listing the signers allowed to send
// proposals to the group from outside it; a signer's position in the list
// is its sender index.
func ExternalSendersExtension(signers ...*Signer) (Extension, error) {
	es := make(wire.ExternalSenders, len(signers))
	for i, s := range signers {
		es[i] = wire.ExternalSender{SignatureKey: s.key.Public().Bytes(), Credential: s.cred}
	}
	b, err := es.MarshalBinary()
	if err != nil {
		return Extension{}, err
	}
	return Extension{Type: uint16(wire.ExtensionTypeExternalSenders), Data: b}, nil
}

// RequiredCapabilitiesExtension returns a required_capabilities group
// context extension (RFC 9420 §11.1): every member must support the listed
// extension, proposal and credential types.
func RequiredCapabilitiesExtension(extensions, proposals, credentials []uint16) (Extension, error) {
	var rc wire.RequiredCapabilities
	for _, t := range extensions {
		rc.ExtensionTypes = append(rc.ExtensionTypes, wire.ExtensionType(t))
	}
	for _, t := range proposals {
		rc.ProposalTypes = append(rc.ProposalTypes, wire.ProposalType(t))
	}
	for _, t := range credentials {
		rc.CredentialTypes = append(rc.CredentialTypes, wire.CredentialType(t))
	}
	b, err := rc.MarshalBinary()
	if err != nil {
		return Extension{}, err
	}
	return Extension{Type: uint16(wire.ExtensionTypeRequiredCapabilities), Data: b}, nil
}

// ExternalRemoveProposal is a Remove proposal from an external sender (RFC
// 9420 §12.1.8): s must be listed at senderIndex in the group's
// external_senders extension. It is a PublicMessage for the given group and
// epoch, without membership tag; a member must commit it.
func (s *Signer) ExternalRemoveProposal(senderIndex uint32, groupID []byte, epoch uint64, leaf uint32) ([]byte, error) {
	if len(groupID) == 0 {
		return nil, errors.New("mls: external proposal: empty group id")
	}
	content := &wire.FramedContent{
		GroupID:     append([]byte(nil), groupID...),
		Epoch:       epoch,
		Sender:      wire.Sender{Type: wire.SenderTypeExternal, SenderIndex: senderIndex},
		ContentType: wire.ContentTypeProposal,
		Proposal:    &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: leaf}},
	}
	// RFC 9420 §6.1: FramedContentTBS has no group context for an
	// external sender.
	sig, err := signContent(s.suite, s.key, wire.WireFormatPublicMessage, content, nil)
	if err != nil {
		return nil, err
	}
	pm := &wire.PublicMessage{Content: *content, Auth: wire.FramedContentAuthData{Signature: sig}}
	return (&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm}).MarshalBinary()
}

// JoinProposal is an Add proposal a non-member sends for its own KeyPackage
// (RFC 9420 §12.1.8, sender new_member_proposal): a PublicMessage for the
// given group and epoch that a member may commit.
func (k *KeyPackage) JoinProposal(groupID []byte, epoch uint64) ([]byte, error) {
	content := &wire.FramedContent{
		GroupID:     append([]byte(nil), groupID...),
		Epoch:       epoch,
		Sender:      wire.Sender{Type: wire.SenderTypeNewMemberProposal},
		ContentType: wire.ContentTypeProposal,
		Proposal:    &wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: k.kp}},
	}
	sig, err := signContent(k.signer.suite, k.signer.key, wire.WireFormatPublicMessage, content, nil)
	if err != nil {
		return nil, err
	}
	pm := &wire.PublicMessage{Content: *content, Auth: wire.FramedContentAuthData{Signature: sig}}
	return (&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm}).MarshalBinary()
}
