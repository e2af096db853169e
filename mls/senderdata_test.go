package mls

import (
	"strings"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// resealSenderData re-encrypts the sender data of a PrivateMessage made by
// member g with leaf index leaf (an insider knows sender_data_secret).
func resealSenderData(t *testing.T, g *Group, msg []byte, leaf uint32) []byte {
	t.Helper()
	var m wire.MLSMessage
	if err := m.UnmarshalBinary(msg); err != nil {
		t.Fatal(err)
	}
	pm := m.PrivateMessage
	f := g.framer
	sdAAD, err := (&wire.SenderDataAAD{GroupID: pm.GroupID, Epoch: pm.Epoch, ContentType: pm.ContentType}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	key, nonce, err := keyschedule.SenderDataKeyNonce(f.suite, f.senderDataSecret, pm.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := f.suite.Open(key, nonce, sdAAD, pm.EncryptedSenderData)
	if err != nil {
		t.Fatal(err)
	}
	var sd wire.SenderData
	if err := sd.UnmarshalBinary(plain); err != nil {
		t.Fatal(err)
	}
	sd.LeafIndex = leaf
	if plain, err = sd.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	if pm.EncryptedSenderData, err = f.suite.Seal(key, nonce, sdAAD, plain); err != nil {
		t.Fatal(err)
	}
	out, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSenderDataLeafChecked: RFC 9420 §6.3.2 — a PrivateMessage whose
// (authentically encrypted) sender data names a leaf outside the tree, or a
// blank leaf, is rejected for that reason before its content is trusted,
// and the receiver's state is unchanged.
func TestSenderDataLeafChecked(t *testing.T) {
	ms := newTestGroup(t, testSuites[0], 4, true)
	commitAndDeliver(t, ms, 0, &CommitOptions{Remove: []uint32{1}})
	sender, receiver := ms[2].g, ms[3].g
	ct, err := sender.Encrypt([]byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	outside := resealSenderData(t, sender, ct, sender.tree.LeafCount())
	err = expectRejected(t, receiver, outside, nil, "sender leaf outside the tree")
	if !strings.Contains(err.Error(), "outside the tree") {
		t.Fatalf("rejected for another reason: %v", err)
	}
	// A blank leaf: the content is encrypted with that leaf's ratchet, which
	// every member can derive, and signed by a member.
	content := &wire.FramedContent{
		GroupID: sender.ctx.GroupID, Epoch: sender.ctx.Epoch,
		Sender:      wire.Sender{Type: wire.SenderTypeMember, LeafIndex: 1},
		ContentType: wire.ContentTypeApplication, ApplicationData: []byte("forged"),
	}
	sig, err := signContent(sender.suite, sender.signer.key, wire.WireFormatPrivateMessage, content, &sender.ctx)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := sender.framer.protectPrivate(content, wire.FramedContentAuthData{Signature: sig}, 0)
	if err != nil {
		t.Fatal(err)
	}
	blank, err := (&wire.MLSMessage{WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: pm}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	err = expectRejected(t, receiver, blank, nil, "sender leaf blank")
	if !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("rejected for another reason: %v", err)
	}
	// The genuine message still decrypts.
	if r, err := receiver.ProcessMessage(ct); err != nil || string(r.Data) != "hello" {
		t.Fatalf("genuine message after the forged ones: %v", err)
	}
}
