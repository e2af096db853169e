package ratchet

import (
	"strings"
	"testing"
)

// TestDocumentedSizes pins the sizes docs/PROTOCOL.md ("Double Ratchet with
// a post-quantum step") states, so that the document and the code cannot
// drift apart: the encrypted header in each KEM mode, the wire size of a
// 256-byte message, and the session state size formula.
func TestDocumentedSizes(t *testing.T) {
	for _, c := range []struct {
		m                 mode
		encHeader, msg256 int
	}{
		{classical, 81, 376},
		{hybridNoBobKEM, 1265, 1 + 2 + 1265 + 4 + 272 + 16},
		{hybridBobKEM, 2353, 2648},
	} {
		t.Run(c.m.String(), func(t *testing.T) {
			alice, bob := newPair(t, c.m)
			m := encrypt(t, alice, strings.Repeat("x", 256))
			eh, _, err := parseMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			if len(eh) != c.encHeader || len(m) != c.msg256 {
				t.Fatalf("enc_header %d bytes, message %d bytes; docs say %d and %d", len(eh), len(m), c.encHeader, c.msg256)
			}
			mustDecrypt(t, bob, m, strings.Repeat("x", 256))
		})
	}

	// State of a session that has sent and received: 310 bytes plus the
	// AD, 38 per kept receiving chain, 36 per skipped key; a hybrid
	// session adds 2336.
	for _, m := range []mode{classical, hybridBobKEM} {
		t.Run("state/"+m.String(), func(t *testing.T) {
			alice, bob := newPair(t, m)
			encrypt(t, alice, "skipped")
			mustDecrypt(t, bob, encrypt(t, alice, "a"), "a") // 1 chain, 1 skipped key
			mustDecrypt(t, alice, encrypt(t, bob, "b"), "b")
			mustDecrypt(t, bob, encrypt(t, alice, "c"), "c") // 2 chains
			want := 310 + len(bob.ad) + 38*len(bob.recv) + 36*bob.nSkipped
			if m != classical {
				want += 2336
			}
			if len(bob.recv) != 2 || bob.nSkipped != 1 {
				t.Fatalf("fixture: %d chains, %d skipped keys", len(bob.recv), bob.nSkipped)
			}
			if got := len(marshal(t, bob)); got != want {
				t.Fatalf("state is %d bytes, docs formula gives %d", got, want)
			}
		})
	}
}
