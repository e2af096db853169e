package mls

import (
	"bytes"
	"strings"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/wire"
)

// reinitGroup makes a 3-member group whose last commit carries a ReInit to
// the X-Wing suite, and returns the members with a copy of member 1's
// state from before that commit.
func reinitGroup(t *testing.T) ([]*member, *Group) {
	t.Helper()
	ms := newTestGroup(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 3, true)
	ri, err := ms[2].g.ProposeReInit([]byte("successor"), MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1} {
		if _, err := ms[i].g.ProcessMessage(ri); err != nil {
			t.Fatal(err)
		}
	}
	before := ms[1].g.clone()
	commitAndDeliver(t, ms, 0, nil)
	return ms, before
}

// TestReInitSuccessorGroup: after a ReInit commit, ReInitGroup creates the
// successor with the ReInit's group id and cipher suite (RFC 9420 §11.2),
// and the other members join it from the Welcome, which names the old
// group's resumption PSK of usage reinit (§12.4.3.1); all agree on the new
// epoch and exchange messages.
func TestReInitSuccessorGroup(t *testing.T) {
	ms, _ := reinitGroup(t)
	cs := MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519
	var kps []*KeyPackage
	var raw [][]byte
	for _, m := range ms[1:] {
		kp, err := newSigner(t, cs, m.name).NewKeyPackage()
		if err != nil {
			t.Fatal(err)
		}
		kps, raw = append(kps, kp), append(raw, kp.Bytes())
	}
	if _, _, err := ms[0].g.ReInitGroup(newSigner(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, "m0"), raw, nil); err == nil {
		t.Error("ReInitGroup accepted a signer of the old cipher suite")
	}
	ng, welcome, err := ms[0].g.ReInitGroup(newSigner(t, cs, "m0"), raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ng.Epoch() != 1 || !bytes.Equal(ng.GroupID(), []byte("successor")) || ng.CipherSuite() != cs {
		t.Fatalf("successor: epoch %d, id %q, suite %v", ng.Epoch(), ng.GroupID(), ng.CipherSuite())
	}
	if _, err := Join(kps[0], welcome, nil); err == nil {
		t.Error("joined a reinit Welcome without the old group's resumption psk")
	}
	next := []*member{{name: "m0", g: ng}}
	for i, kp := range kps {
		g, err := Join(kp, welcome, &JoinOptions{Resumption: []*Group{ms[i+1].g}})
		if err != nil {
			t.Fatalf("%s: join successor: %v", ms[i+1].name, err)
		}
		next = append(next, &member{name: ms[i+1].name, g: g})
	}
	checkAgree(t, next)
	ct, err := next[2].g.Encrypt([]byte("after reinit"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := next[0].g.ProcessMessage(ct)
	if err != nil || string(r.Data) != "after reinit" {
		t.Fatalf("successor message: %v", err)
	}
}

// TestWelcomeReInitPSKChecks: a joiner refuses a reinit Welcome when the
// group it holds under the PSK's group id did not end with a ReInit commit
// (RFC 9420 §12.4.3.1), and ReInitGroup refuses on a group without one.
func TestWelcomeReInitPSKChecks(t *testing.T) {
	ms, before := reinitGroup(t)
	cs := MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519
	if _, _, err := before.ReInitGroup(newSigner(t, cs, "m1"), nil, nil); err == nil {
		t.Error("ReInitGroup on a group whose last commit carried no ReInit")
	}
	kp, err := newSigner(t, cs, "m1").NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	kp2, err := newSigner(t, cs, "m2").NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	_, welcome, err := ms[0].g.ReInitGroup(newSigner(t, cs, "m0"), [][]byte{kp.Bytes(), kp2.Bytes()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(kp, welcome, &JoinOptions{Resumption: []*Group{before}}); err == nil || !strings.Contains(err.Error(), "ReInit") {
		t.Errorf("joined with the old group's state from before its ReInit commit: %v", err)
	}
	if _, err := Join(kp, welcome, &JoinOptions{Resumption: []*Group{ms[1].g}}); err != nil {
		t.Errorf("join with the right old group: %v", err)
	}
}

// TestReInitSuccessorMustKeepMembers: a reinit Welcome whose new group
// lacks a member of the old group is refused (RFC 9420 §12.4.3.1: "all the
// members of the old group are also members of the new group").
func TestReInitSuccessorMustKeepMembers(t *testing.T) {
	ms, _ := reinitGroup(t)
	cs := MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519
	kp, err := newSigner(t, cs, "m1").NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	_, welcome, err := ms[0].g.ReInitGroup(newSigner(t, cs, "m0"), [][]byte{kp.Bytes()}, nil) // m2 left out
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(kp, welcome, &JoinOptions{Resumption: []*Group{ms[1].g}}); err == nil {
		t.Error("joined a successor that dropped a member of the old group")
	}
}

// TestReInitPSKOnlyInEpochOne: a Welcome naming a reinit PSK must lead to
// epoch 1 of the new group (RFC 9420 §12.4.3.1). The successor's creator
// injects the same PSK into a later commit; the joiner refuses it.
func TestReInitPSKOnlyInEpochOne(t *testing.T) {
	ms, _ := reinitGroup(t)
	cs := MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519
	first, err := newSigner(t, cs, "m1").NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	ng, _, err := ms[0].g.ReInitGroup(newSigner(t, cs, "m0"), [][]byte{first.Bytes()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	late, err := newSigner(t, cs, "m2").NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	id := wire.PreSharedKeyID{Type: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageReInit, PSKGroupID: ms[0].g.GroupID(), PSKEpoch: ms[0].g.Epoch(), PSKNonce: make([]byte, ng.suite.Nh())}
	res, err := ng.Commit(&CommitOptions{Add: [][]byte{late.Bytes()}, RatchetTreeInWelcome: true, injected: &injectedPSK{id: id, secret: ms[0].g.resumption[ms[0].g.Epoch()]}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Join(late, res.Welcome, &JoinOptions{Resumption: []*Group{ms[2].g}})
	if err == nil || !strings.Contains(err.Error(), "want 1") {
		t.Fatalf("join of epoch 2 with a reinit psk: %v", err)
	}
}
