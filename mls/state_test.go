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

// TestStoredKeyPackageJoins stores a KeyPackage (with its signer) before it
// is used and joins with the reloaded copy.
func TestStoredKeyPackageJoins(t *testing.T) {
	for _, cs := range testSuites {
		t.Run(cs.String(), func(t *testing.T) {
			ms := newTestGroup(t, cs, 2, true)
			kp, err := newSigner(t, cs, "later").NewKeyPackage()
			if err != nil {
				t.Fatal(err)
			}
			stored, err := kp.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := UnmarshalKeyPackage(stored)
			if err != nil {
				t.Fatal(err)
			}
			if again, err := loaded.MarshalBinary(); err != nil || !bytes.Equal(again, stored) {
				t.Fatalf("stored key package does not re-encode identically (%v)", err)
			}
			sb, err := loaded.Signer().MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := UnmarshalSigner(sb); err != nil {
				t.Fatal(err)
			}
			res := commitAndDeliver(t, ms, 0, &CommitOptions{Add: [][]byte{kp.Bytes()}, RatchetTreeInWelcome: true})
			g, err := Join(loaded, res.Welcome, nil)
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, &member{name: "later", signer: loaded.Signer(), g: g})
			checkAgree(t, ms)
			checkMessaging(t, ms)
			// A stored KeyPackage whose private key was swapped is refused.
			other, err := newSigner(t, cs, "other").NewKeyPackage()
			if err != nil {
				t.Fatal(err)
			}
			swapped := *kp
			swapped.leafPriv = other.leafPriv
			sw, err := swapped.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := UnmarshalKeyPackage(sw); err == nil {
				t.Fatal("key package with a foreign leaf key accepted")
			}
			if _, err := UnmarshalKeyPackage(append(stored[:len(stored):len(stored)], 0)); err == nil {
				t.Fatal("trailing byte accepted")
			}
		})
	}
}
