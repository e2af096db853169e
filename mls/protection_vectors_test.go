package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

type messageProtectionVector struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	TreeHash                hexBytes `json:"tree_hash"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	SignaturePriv           hexBytes `json:"signature_priv"`
	SignaturePub            hexBytes `json:"signature_pub"`
	EncryptionSecret        hexBytes `json:"encryption_secret"`
	SenderDataSecret        hexBytes `json:"sender_data_secret"`
	MembershipKey           hexBytes `json:"membership_key"`
	Proposal                hexBytes `json:"proposal"`
	ProposalPriv            hexBytes `json:"proposal_priv"`
	ProposalPub             hexBytes `json:"proposal_pub"`
	Commit                  hexBytes `json:"commit"`
	CommitPriv              hexBytes `json:"commit_priv"`
	CommitPub               hexBytes `json:"commit_pub"`
	Application             hexBytes `json:"application"`
	ApplicationPriv         hexBytes `json:"application_priv"`
}

// The message-protection vectors use a two-member group whose sender is leaf
// 1 (mls-implementations test-vectors.md, "Message Protection").
const (
	mpLeaves = 2
	mpSender = 1
)

func (v *messageProtectionVector) framer(t *testing.T, s *ciphersuite.Suite) *framer {
	t.Helper()
	st, err := keyschedule.NewSecretTree(s, v.EncryptionSecret, mpLeaves, keyschedule.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return &framer{
		suite: s,
		context: &wire.GroupContext{
			CipherSuite:             wire.CipherSuite(v.CipherSuite),
			GroupID:                 v.GroupID,
			Epoch:                   v.Epoch,
			TreeHash:                v.TreeHash,
			ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
		},
		membershipKey:    v.MembershipKey,
		senderDataSecret: v.SenderDataSecret,
		secretTree:       st,
	}
}

// unprotect verifies (or decrypts and verifies) an MLSMessage as a member
// receiver and returns its content.
func unprotect(f *framer, pub *ciphersuite.SignaturePublicKey, msg []byte) (*wire.FramedContent, error) {
	var m wire.MLSMessage
	if err := m.UnmarshalBinary(msg); err != nil {
		return nil, err
	}
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		pm := m.PublicMessage
		if err := f.checkMembershipTag(pm); err != nil {
			return nil, err
		}
		if err := verifyContent(f.suite, pub, wire.WireFormatPublicMessage, &pm.Content, f.context, pm.Auth.Signature); err != nil {
			return nil, err
		}
		return &pm.Content, nil
	case wire.WireFormatPrivateMessage:
		o, err := f.openPrivate(m.PrivateMessage, mpLeaves)
		if err != nil {
			return nil, err
		}
		if o.content.Content.Sender.LeafIndex != mpSender {
			return nil, fmt.Errorf("sender leaf %d, want %d", o.content.Content.Sender.LeafIndex, mpSender)
		}
		if err := verifyContent(f.suite, pub, wire.WireFormatPrivateMessage, &o.content.Content, f.context, o.content.Auth.Signature); err != nil {
			return nil, err
		}
		if err := f.consume(o); err != nil {
			return nil, err
		}
		return &o.content.Content, nil
	}
	return nil, fmt.Errorf("wire format %d is not a framed message", m.WireFormat)
}

func checkBody(t *testing.T, c *wire.FramedContent, want []byte) {
	t.Helper()
	var got []byte
	var err error
	switch c.ContentType {
	case wire.ContentTypeApplication:
		got = c.ApplicationData
	case wire.ContentTypeProposal:
		got, err = c.Proposal.MarshalBinary()
	case wire.ContentTypeCommit:
		got, err = c.Commit.MarshalBinary()
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("content = %x, want %x", got, want)
	}
}

// protect frames body as the vector's sender would and encodes it.
func protect(t *testing.T, f *framer, key *ciphersuite.SignaturePrivateKey, wf wire.WireFormat, c *wire.FramedContent) []byte {
	t.Helper()
	sig, err := signContent(f.suite, key, wf, c, f.context)
	if err != nil {
		t.Fatal(err)
	}
	auth := wire.FramedContentAuthData{Signature: sig}
	if c.ContentType == wire.ContentTypeCommit {
		// Any MAC-sized value: the vector gives no confirmation key.
		auth.ConfirmationTag = make([]byte, f.suite.Nh())
	}
	m := wire.MLSMessage{WireFormat: wf}
	if wf == wire.WireFormatPublicMessage {
		m.PublicMessage, err = f.protectPublic(c, auth)
	} else {
		m.PrivateMessage, err = f.protectPrivate(c, auth, 7)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMessageProtectionVectors(t *testing.T) {
	var vs []messageProtectionVector
	loadVectors(t, "message-protection.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("%d/suite=%d", i, v.CipherSuite), func(t *testing.T) {
			s := suiteOrSkip(t, v.CipherSuite)
			pub, err := s.NewSignaturePublicKey(v.SignaturePub)
			if err != nil {
				t.Fatal(err)
			}
			priv := signaturePriv(t, s, v.SignaturePriv)
			cases := []struct {
				name string
				ct   wire.ContentType
				body []byte
				msgs [][]byte
			}{
				{"proposal", wire.ContentTypeProposal, v.Proposal, [][]byte{v.ProposalPub, v.ProposalPriv}},
				{"commit", wire.ContentTypeCommit, v.Commit, [][]byte{v.CommitPub, v.CommitPriv}},
				{"application", wire.ContentTypeApplication, v.Application, [][]byte{v.ApplicationPriv}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					// The vector's own messages.
					f := v.framer(t, s)
					for _, msg := range c.msgs {
						got, err := unprotect(f, pub, msg)
						if err != nil {
							t.Fatalf("unprotect: %v", err)
						}
						checkBody(t, got, c.body)
					}
					// Our own protection, read back by a fresh receiver.
					content := &wire.FramedContent{
						GroupID:           v.GroupID,
						Epoch:             v.Epoch,
						Sender:            wire.Sender{Type: wire.SenderTypeMember, LeafIndex: mpSender},
						AuthenticatedData: []byte("authenticated data"),
						ContentType:       c.ct,
					}
					switch c.ct {
					case wire.ContentTypeApplication:
						content.ApplicationData = c.body
					case wire.ContentTypeProposal:
						content.Proposal = new(wire.Proposal)
						if err := content.Proposal.UnmarshalBinary(c.body); err != nil {
							t.Fatal(err)
						}
					case wire.ContentTypeCommit:
						content.Commit = new(wire.Commit)
						if err := content.Commit.UnmarshalBinary(c.body); err != nil {
							t.Fatal(err)
						}
					}
					sender, receiver := v.framer(t, s), v.framer(t, s)
					wfs := []wire.WireFormat{wire.WireFormatPrivateMessage}
					if c.ct != wire.ContentTypeApplication {
						wfs = append(wfs, wire.WireFormatPublicMessage)
					}
					for _, wf := range wfs {
						msg := protect(t, sender, priv, wf, content)
						got, err := unprotect(receiver, pub, msg)
						if err != nil {
							t.Fatalf("round trip (wire format %d): %v", wf, err)
						}
						checkBody(t, got, c.body)
						if !bytes.Equal(got.AuthenticatedData, content.AuthenticatedData) {
							t.Fatal("authenticated data changed")
						}
						// A flipped bit anywhere in the message is rejected.
						bad := bytes.Clone(msg)
						bad[len(bad)-1] ^= 1
						if _, err := unprotect(v.framer(t, s), pub, bad); err == nil {
							t.Fatalf("wire format %d: tampered message accepted", wf)
						}
					}
				})
			}
		})
	}
}
