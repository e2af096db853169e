package mls

import (
	"testing"
)

// FuzzProcessMessage feeds arbitrary bytes to a member's ProcessMessage,
// seeded with valid proposals, commits and application messages of its
// group: nothing may panic, and a rejected message must leave the state
// exactly as it was.
func FuzzProcessMessage(f *testing.F) {
	ms := newTestGroup(f, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 3, true)
	sender := ms[0].g
	p, err := sender.ProposeRemove(2, &ProposalOptions{PublicMessage: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p)
	if p, err = sender.ProposeUpdate(nil); err != nil {
		f.Fatal(err)
	}
	f.Add(p)
	app, err := ms[2].g.Encrypt([]byte("seed"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(app)
	res, err := sender.Commit(&CommitOptions{ForcePath: true, PublicMessage: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(res.Commit)
	res, err = sender.Commit(&CommitOptions{ForcePath: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(res.Commit)
	base := ms[1].g
	f.Fuzz(func(t *testing.T, msg []byte) {
		g := steal(t, base)
		before := fingerprint(t, g)
		if _, err := g.ProcessMessage(msg); err != nil && fingerprint(t, g) != before {
			t.Fatalf("rejected message (%v) changed the state", err)
		}
	})
}

// FuzzJoin feeds arbitrary bytes to Join as a Welcome, seeded with a valid
// one: nothing may panic, and whatever joins joins exactly the group state
// the genuine Welcome gives.
//
// "Only the genuine Welcome joins" would be the wrong property: a Welcome
// carries one EncryptedGroupSecrets per new member (RFC 9420 §12.4.3.1)
// and a joiner ignores the entries of others, so the same Welcome with
// entries added, removed or reordered for other members is still a valid
// Welcome for this joiner (TestJoinIgnoresOtherMembersEntries).
func FuzzJoin(f *testing.F) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	ms := newTestGroup(f, cs, 2, true)
	kp, err := newSigner(f, cs, "joiner").NewKeyPackage()
	if err != nil {
		f.Fatal(err)
	}
	res, err := ms[0].g.Commit(&CommitOptions{Add: [][]byte{kp.Bytes()}, RatchetTreeInWelcome: true})
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := Join(kp, res.Welcome, nil)
	if err != nil {
		f.Fatal(err)
	}
	want := fingerprint(f, genuine)
	f.Add(res.Welcome)
	f.Add(welcomeWithOtherEntries(f, res.Welcome))
	f.Fuzz(func(t *testing.T, w []byte) {
		g, err := Join(kp, w, nil)
		if err != nil {
			return
		}
		// Everything that reaches the joiner's state is authenticated:
		// GroupSecrets by the HPKE AEAD, GroupInfo by the AEAD under the
		// welcome key and the signer's signature.
		if fingerprint(t, g) != want {
			t.Fatal("an altered Welcome joined another group state")
		}
	})
}

// FuzzJoinExternal feeds arbitrary bytes to JoinExternal as a GroupInfo,
// seeded with a valid one: nothing may panic.
func FuzzJoinExternal(f *testing.F) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	ms := newTestGroup(f, cs, 2, true)
	gi, err := ms[1].g.GroupInfo(true)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gi)
	s := newSigner(f, cs, "joiner")
	f.Fuzz(func(t *testing.T, b []byte) {
		g, commit, err := JoinExternal(s, b, nil)
		if err == nil && (g == nil || commit == nil) {
			t.Fatal("success without a group or commit")
		}
	})
}

// FuzzUnmarshalGroup decodes arbitrary bytes as a stored group state,
// seeded with real states: nothing may panic, and whatever decodes must
// re-encode to exactly the same bytes.
func FuzzUnmarshalGroup(f *testing.F) {
	ms := newTestGroup(f, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 3, true)
	if _, err := ms[0].g.ProposeUpdate(nil); err != nil {
		f.Fatal(err)
	}
	for _, m := range ms {
		b, err := m.g.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := UnmarshalGroup(b, nil)
		if err != nil {
			return
		}
		again, err := g.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		if string(again) != string(b) {
			t.Fatal("decoded state re-encodes differently")
		}
	})
}

// FuzzUnmarshalKeyPackage decodes arbitrary bytes as a stored KeyPackage
// (and so a stored Signer), seeded with a real one: whatever decodes must
// re-encode to the same bytes.
func FuzzUnmarshalKeyPackage(f *testing.F) {
	kp, err := newSigner(f, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, "fuzz").NewKeyPackage()
	if err != nil {
		f.Fatal(err)
	}
	b, err := kp.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	sb, err := kp.Signer().MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sb)
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := UnmarshalKeyPackage(b); err == nil {
			again, err := k.MarshalBinary()
			if err != nil || string(again) != string(b) {
				t.Fatalf("stored key package re-encodes differently (%v)", err)
			}
		}
		if s, err := UnmarshalSigner(b); err == nil {
			again, err := s.MarshalBinary()
			if err != nil || string(again) != string(b) {
				t.Fatalf("stored signer re-encodes differently (%v)", err)
			}
		}
	})
}
