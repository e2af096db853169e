package mls

import (
	"bytes"
	"testing"
)

// TestStateRoundTrip stores and reloads members mid-conversation (with a
// cached proposal, a pending Update key and skipped message keys) and checks
// that the reloaded state re-encodes identically and carries on.
func TestStateRoundTrip(t *testing.T) {
	for _, cs := range testSuites {
		t.Run(cs.String(), func(t *testing.T) {
			ms := newTestGroup(t, cs, 3, true)
			commitAndDeliver(t, ms, 1, &CommitOptions{ForcePath: true})
			// Skipped keys: member 2 sends twice, member 0 reads only
			// the second message before being stored.
			if _, err := ms[2].g.Encrypt([]byte("one"), nil); err != nil {
				t.Fatal(err)
			}
			two, err := ms[2].g.Encrypt([]byte("two"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ms[0].g.ProcessMessage(two); err != nil {
				t.Fatal(err)
			}
			if _, err := ms[1].g.ProcessMessage(two); err != nil {
				t.Fatal(err)
			}
			up, err := ms[0].g.ProposeUpdate(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms[1:] {
				if _, err := m.g.ProcessMessage(up); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range ms {
				b, err := m.g.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				g, err := UnmarshalGroup(b, nil)
				if err != nil {
					t.Fatalf("%s: %v", m.name, err)
				}
				again, err := g.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, b) {
					t.Fatalf("%s: state does not re-encode identically", m.name)
				}
				m.g = g
			}
			commitAndDeliver(t, ms, 2, nil) // commits member 0's Update
			checkAgree(t, ms)
			checkMessaging(t, ms)
		})
	}
}
