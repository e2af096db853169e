package mls

import (
	"testing"
)

// xwingCiphertextSize is the X-Wing encapsulation size
// (draft-connolly-cfrg-xwing-kem-06 §5: ML-KEM-768 ciphertext, 1088 bytes,
// plus an X25519 share, 32 bytes).
const xwingCiphertextSize = 1120

// TestXWingCrossMember runs a group on the hybrid post-quantum suite 0x004D,
// for which no official vectors exist: members created independently add,
// update, message each other both ways and remove, and every path secret
// travels in an X-Wing encapsulation (checked by its size, so a silent
// fallback to a classical KEM fails the test).
func TestXWingCrossMember(t *testing.T) {
	cs := MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519
	ms := newTestGroup(t, cs, 5, false)
	checkMessaging(t, ms)
	for _, from := range []int{4, 1} {
		res := commitAndDeliver(t, ms, from, &CommitOptions{ForcePath: true, PublicMessage: true})
		up := publicCommit(t, res.Commit).Content.Commit.Path
		n := 0
		for _, node := range up.Nodes {
			for _, ct := range node.EncryptedPathSecret {
				if len(ct.KEMOutput) != xwingCiphertextSize {
					t.Fatalf("kem_output of %d bytes, want %d (X-Wing)", len(ct.KEMOutput), xwingCiphertextSize)
				}
				n++
			}
		}
		if n == 0 {
			t.Fatal("commit with a path encrypted nothing")
		}
		checkAgree(t, ms)
		checkMessaging(t, ms)
	}
	commitAndDeliver(t, ms, 0, &CommitOptions{Remove: []uint32{3}})
	if !ms[3].g.Removed() {
		t.Fatal("removal not applied")
	}
	checkAgree(t, ms)
	checkMessaging(t, ms)
	// Exporter secrets agree across members.
	a, err := ms[0].g.Export("sframe", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ms[2].g.Export("sframe", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatal("exporter outputs differ")
	}
}
