package mls

import (
	"errors"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
)

// TestExternalSenderAndJoinProposals: a signer listed in external_senders
// proposes a Remove, a non-member proposes its own Add, a member commits
// both; a signer not listed, or one using another's index, is rejected.
func TestExternalSenderAndJoinProposals(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	ms := newTestGroup(t, cs, 3, true)
	admin := newSigner(t, cs, "admin")
	stranger := newSigner(t, cs, "stranger")
	ext, err := ExternalSendersExtension(admin)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := RequiredCapabilitiesExtension(nil, nil, []uint16{1})
	if err != nil {
		t.Fatal(err)
	}
	commitAndDeliver(t, ms, 0, &CommitOptions{GroupContextExtensions: []Extension{ext, rc}})
	checkAgree(t, ms)
	g := ms[1].g
	p, err := admin.ExternalRemoveProposal(0, g.GroupID(), g.Epoch(), 2)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := stranger.ExternalRemoveProposal(0, g.GroupID(), g.Epoch(), 2)
	if err != nil {
		t.Fatal(err)
	}
	expectRejected(t, g, forged, ciphersuite.ErrSignature, "external proposal by an unlisted signer")
	badIndex, err := admin.ExternalRemoveProposal(1, g.GroupID(), g.Epoch(), 2)
	if err != nil {
		t.Fatal(err)
	}
	expectRejected(t, g, badIndex, nil, "external proposal with an unknown sender index")
	joiner := newSigner(t, cs, "joiner")
	kp, err := joiner.NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	jp, err := kp.JoinProposal(g.GroupID(), g.Epoch())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		for _, msg := range [][]byte{p, jp} {
			r, err := m.g.ProcessMessage(msg)
			if err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
			if r.Kind != KindProposal || r.Sender != -1 {
				t.Fatalf("%s: %+v", m.name, r)
			}
		}
	}
	res := commitAndDeliver(t, ms, 1, &CommitOptions{RatchetTreeInWelcome: true})
	if !ms[2].g.Removed() {
		t.Fatal("external Remove not applied")
	}
	jg, err := Join(kp, res.Welcome, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms = append(ms, &member{name: "joiner", signer: joiner, g: jg})
	checkAgree(t, ms)
	checkMessaging(t, ms)
	// An external sender may not commit, and after the epoch moved its
	// old proposal is stale.
	if _, err := ms[0].g.ProcessMessage(p); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("stale external proposal: %v", err)
	}
}
