package wire_test

import (
	"fmt"

	"github.com/parley-messenger/parley/mls/internal/wire"
)

// Example frames a Commit that removes leaf 3 as a PublicMessage, encodes
// it as an MLSMessage and decodes it again.
func Example() {
	msg := &wire.MLSMessage{
		WireFormat: wire.WireFormatPublicMessage,
		PublicMessage: &wire.PublicMessage{
			Content: wire.FramedContent{
				GroupID:     []byte("group"),
				Epoch:       7,
				Sender:      wire.Sender{Type: wire.SenderTypeMember, LeafIndex: 0},
				ContentType: wire.ContentTypeCommit,
				Commit: &wire.Commit{Proposals: []wire.ProposalOrRef{{
					Type: wire.ProposalOrRefTypeProposal,
					Proposal: &wire.Proposal{
						Type:   wire.ProposalTypeRemove,
						Remove: &wire.Remove{Removed: 3},
					},
				}}},
			},
			// Signature, confirmation tag and membership tag come from the
			// key schedule; placeholders here.
			Auth:          wire.FramedContentAuthData{Signature: []byte{0xaa}, ConfirmationTag: []byte{0xbb}},
			MembershipTag: []byte{0xcc},
		},
	}
	data, err := msg.MarshalBinary()
	if err != nil {
		fmt.Println("encode:", err)
		return
	}
	fmt.Printf("%x\n", data)

	var got wire.MLSMessage
	if err := got.UnmarshalBinary(data); err != nil {
		fmt.Println("decode:", err)
		return
	}
	p := got.PublicMessage.Content.Commit.Proposals[0].Proposal
	fmt.Println("epoch", got.PublicMessage.Content.Epoch, "removes leaf", p.Remove.Removed)
	// Output:
	// 000100010567726f757000000000000000070100000000000307010003000000030001aa01bb01cc
	// epoch 7 removes leaf 3
}
