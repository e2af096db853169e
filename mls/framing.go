package mls

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// framer holds what one epoch needs to protect and unprotect framed
// messages (RFC 9420 §6): the group context that signatures cover, the
// membership key (§6.2), the sender-data secret (§6.3.2) and the secret tree
// (§9).
type framer struct {
	suite            *ciphersuite.Suite
	context          *wire.GroupContext
	membershipKey    []byte
	senderDataSecret []byte
	secretTree       *keyschedule.SecretTree
}

// signContent signs content as RFC 9420 §6.1 requires:
//
//	signature = SignWithLabel(., "FramedContentTBS", FramedContentTBS)
//
// FramedContentTBS carries the group context for member and
// new_member_commit senders only.
func signContent(s *ciphersuite.Suite, key *ciphersuite.SignaturePrivateKey, wf wire.WireFormat, content *wire.FramedContent, ctx *wire.GroupContext) ([]byte, error) {
	tbs, err := contentTBS(wf, content, ctx)
	if err != nil {
		return nil, err
	}
	return s.SignWithLabel(key, wire.FramedContentTBSLabel, tbs)
}

// verifyContent checks a framed content's signature (RFC 9420 §6.1).
func verifyContent(s *ciphersuite.Suite, pub *ciphersuite.SignaturePublicKey, wf wire.WireFormat, content *wire.FramedContent, ctx *wire.GroupContext, sig []byte) error {
	tbs, err := contentTBS(wf, content, ctx)
	if err != nil {
		return err
	}
	if err := s.VerifyWithLabel(pub, wire.FramedContentTBSLabel, tbs, sig); err != nil {
		return fmt.Errorf("mls: framed content: %w", err)
	}
	return nil
}

func contentTBS(wf wire.WireFormat, content *wire.FramedContent, ctx *wire.GroupContext) ([]byte, error) {
	t := wire.FramedContentTBS{WireFormat: wf, Content: content}
	if st := content.Sender.Type; st == wire.SenderTypeMember || st == wire.SenderTypeNewMemberCommit {
		t.Context = ctx
	}
	b, err := t.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: framed content: %w", err)
	}
	return b, nil
}

// membershipTag is RFC 9420 §6.2:
//
//	membership_tag = MAC(membership_key, AuthenticatedContentTBM)
func (f *framer) membershipTag(content *wire.FramedContent, auth *wire.FramedContentAuthData) ([]byte, error) {
	tbm := wire.AuthenticatedContentTBM{
		ContentTBS: wire.FramedContentTBS{WireFormat: wire.WireFormatPublicMessage, Content: content, Context: f.context},
		Auth:       auth,
	}
	b, err := tbm.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: membership tag: %w", err)
	}
	return f.suite.MAC(f.membershipKey, b), nil
}

// protectPublic frames signed content as a PublicMessage (RFC 9420 §6.2),
// adding the membership tag for a member sender.
func (f *framer) protectPublic(content *wire.FramedContent, auth wire.FramedContentAuthData) (*wire.PublicMessage, error) {
	m := &wire.PublicMessage{Content: *content, Auth: auth}
	if content.Sender.Type == wire.SenderTypeMember {
		tag, err := f.membershipTag(content, &auth)
		if err != nil {
			return nil, err
		}
		m.MembershipTag = tag
	}
	return m, nil
}

// checkMembershipTag verifies a member's PublicMessage membership tag (RFC
// 9420 §6.2: "the recipient MUST verify the membership_tag").
func (f *framer) checkMembershipTag(m *wire.PublicMessage) error {
	if m.Content.Sender.Type != wire.SenderTypeMember {
		return nil
	}
	tbm := wire.AuthenticatedContentTBM{
		ContentTBS: wire.FramedContentTBS{WireFormat: wire.WireFormatPublicMessage, Content: &m.Content, Context: f.context},
		Auth:       &m.Auth,
	}
	b, err := tbm.MarshalBinary()
	if err != nil {
		return fmt.Errorf("mls: membership tag: %w", err)
	}
	if !f.suite.VerifyMAC(f.membershipKey, b, m.MembershipTag) {
		return ErrMembershipTag
	}
	return nil
}

// ratchetFor returns the secret-tree ratchet a content type uses (RFC 9420
// §9: handshake for proposals and commits, application for application
// data).
func ratchetFor(ct wire.ContentType) keyschedule.RatchetType {
	if ct == wire.ContentTypeApplication {
		return keyschedule.Application
	}
	return keyschedule.Handshake
}

// protectPrivate encrypts signed content from a member as a PrivateMessage
// (RFC 9420 §6.3). padding is the number of zero bytes appended to the
// plaintext (§6.3.1).
func (f *framer) protectPrivate(content *wire.FramedContent, auth wire.FramedContentAuthData, padding int) (*wire.PrivateMessage, error) {
	if content.Sender.Type != wire.SenderTypeMember {
		return nil, errors.New("mls: private message: only members send private messages")
	}
	// RFC 9420 §6.3.1: PrivateMessageContent, then the padding.
	pmc := wire.PrivateMessageContent{
		ContentType:     content.ContentType,
		ApplicationData: content.ApplicationData,
		Proposal:        content.Proposal,
		Commit:          content.Commit,
		Auth:            auth,
		PaddingLength:   padding,
	}
	plaintext, err := pmc.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: private message: %w", err)
	}
	aad, err := (&wire.PrivateContentAAD{
		GroupID:           content.GroupID,
		Epoch:             content.Epoch,
		ContentType:       content.ContentType,
		AuthenticatedData: content.AuthenticatedData,
	}).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: private message: %w", err)
	}
	mk, err := f.secretTree.Next(treemath.LeafIndex(content.Sender.LeafIndex), ratchetFor(content.ContentType))
	if err != nil {
		return nil, fmt.Errorf("mls: private message: %w", err)
	}
	// RFC 9420 §6.3.1: a fresh random reuse_guard XORed into the nonce, so
	// that a nonce reused after a state rollback still differs.
	var guard [keyschedule.ReuseGuardSize]byte
	if _, err := rand.Read(guard[:]); err != nil {
		return nil, err
	}
	ciphertext, err := f.suite.Seal(mk.Key, keyschedule.ApplyReuseGuard(mk.Nonce, guard), aad, plaintext)
	clear(mk.Key)
	if err != nil {
		return nil, fmt.Errorf("mls: private message: %w", err)
	}
	// RFC 9420 §6.3.2: sender data keyed from a sample of the ciphertext.
	sd := wire.SenderData{LeafIndex: content.Sender.LeafIndex, Generation: mk.Generation, ReuseGuard: guard}
	sdPlain, err := sd.MarshalBinary()
	if err != nil {
		return nil, err
	}
	sdAAD, err := (&wire.SenderDataAAD{GroupID: content.GroupID, Epoch: content.Epoch, ContentType: content.ContentType}).MarshalBinary()
	if err != nil {
		return nil, err
	}
	sdKey, sdNonce, err := keyschedule.SenderDataKeyNonce(f.suite, f.senderDataSecret, ciphertext)
	if err != nil {
		return nil, err
	}
	encSD, err := f.suite.Seal(sdKey, sdNonce, sdAAD, sdPlain)
	clear(sdKey)
	if err != nil {
		return nil, err
	}
	return &wire.PrivateMessage{
		GroupID:             content.GroupID,
		Epoch:               content.Epoch,
		ContentType:         content.ContentType,
		AuthenticatedData:   content.AuthenticatedData,
		EncryptedSenderData: encSD,
		Ciphertext:          ciphertext,
	}, nil
}

// openedPrivate is a decrypted PrivateMessage whose key has not yet been
// consumed: call consume once the content has been authenticated (its
// signature verified), so that a forged message changes nothing (RFC 9420
// §9.2 deletes a key only after use).
type openedPrivate struct {
	content    wire.AuthenticatedContent
	leaf       treemath.LeafIndex
	generation uint32
}

// openPrivate decrypts a PrivateMessage (RFC 9420 §6.3.2 then §6.3.1)
// without changing the secret tree. nLeaves bounds the sender's leaf index.
func (f *framer) openPrivate(m *wire.PrivateMessage, nLeaves uint32) (*openedPrivate, error) {
	// RFC 9420 §6.3.2: decrypt the sender data first.
	sdKey, sdNonce, err := keyschedule.SenderDataKeyNonce(f.suite, f.senderDataSecret, m.Ciphertext)
	if err != nil {
		return nil, err
	}
	sdAAD, err := (&wire.SenderDataAAD{GroupID: m.GroupID, Epoch: m.Epoch, ContentType: m.ContentType}).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: private message: %w", err)
	}
	sdPlain, err := f.suite.Open(sdKey, sdNonce, sdAAD, m.EncryptedSenderData)
	clear(sdKey)
	if err != nil {
		return nil, fmt.Errorf("mls: private message: sender data: %w", err)
	}
	var sd wire.SenderData
	if err := sd.UnmarshalBinary(sdPlain); err != nil {
		return nil, fmt.Errorf("mls: private message: sender data: %w", err)
	}
	if sd.LeafIndex >= nLeaves {
		return nil, fmt.Errorf("mls: private message: sender leaf %d outside the tree", sd.LeafIndex)
	}
	leaf := treemath.LeafIndex(sd.LeafIndex)
	mk, err := f.secretTree.Key(leaf, ratchetFor(m.ContentType), sd.Generation)
	if err != nil {
		return nil, fmt.Errorf("mls: private message: %w", err)
	}
	aad, err := (&wire.PrivateContentAAD{
		GroupID:           m.GroupID,
		Epoch:             m.Epoch,
		ContentType:       m.ContentType,
		AuthenticatedData: m.AuthenticatedData,
	}).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: private message: %w", err)
	}
	plaintext, err := f.suite.Open(mk.Key, keyschedule.ApplyReuseGuard(mk.Nonce, sd.ReuseGuard), aad, m.Ciphertext)
	clear(mk.Key)
	if err != nil {
		return nil, fmt.Errorf("mls: private message: content: %w", err)
	}
	var pmc wire.PrivateMessageContent
	if err := pmc.UnmarshalContent(plaintext, m.ContentType); err != nil {
		return nil, fmt.Errorf("mls: private message: content: %w", err)
	}
	return &openedPrivate{
		content: wire.AuthenticatedContent{
			WireFormat: wire.WireFormatPrivateMessage,
			Content: wire.FramedContent{
				GroupID:           m.GroupID,
				Epoch:             m.Epoch,
				Sender:            wire.Sender{Type: wire.SenderTypeMember, LeafIndex: sd.LeafIndex},
				AuthenticatedData: m.AuthenticatedData,
				ContentType:       m.ContentType,
				ApplicationData:   pmc.ApplicationData,
				Proposal:          pmc.Proposal,
				Commit:            pmc.Commit,
			},
			Auth: pmc.Auth,
		},
		leaf:       leaf,
		generation: sd.Generation,
	}, nil
}

// consume deletes the key of an opened message (RFC 9420 §9.2); call it only
// after the message has been authenticated.
func (f *framer) consume(o *openedPrivate) error {
	return f.secretTree.Consume(o.leaf, ratchetFor(o.content.Content.ContentType), o.generation)
}
