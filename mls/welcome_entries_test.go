package mls

import (
	"bytes"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/wire"
)

// TestJoinIgnoresOtherMembersEntries: RFC 9420 §12.4.3.1 — a Welcome
// carries one EncryptedGroupSecrets per new member, and a joiner uses the
// entry whose new_member is its own KeyPackageRef. A Welcome that differs
// from the one a committer produced only by entries for other members is
// therefore a valid Welcome for this joiner, and must join exactly the
// same group state. (FuzzJoin once required that no Welcome other than its
// seed join at all: a property the RFC does not give.)
func TestJoinIgnoresOtherMembersEntries(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	ms := newTestGroup(t, cs, 2, true)
	kp, err := newSigner(t, cs, "joiner").NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ms[0].g.Commit(&CommitOptions{Add: [][]byte{kp.Bytes()}, RatchetTreeInWelcome: true})
	if err != nil {
		t.Fatal(err)
	}
	genuine, err := Join(kp, res.Welcome, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := fingerprint(t, genuine)

	altered := welcomeWithOtherEntries(t, res.Welcome)
	g, err := Join(kp, altered, nil)
	if err != nil {
		t.Fatalf("a Welcome with entries for other members did not join: %v", err)
	}
	if fingerprint(t, g) != want {
		t.Fatal("a Welcome with entries for other members joined another group state")
	}

	// Without this joiner's entry, it does not join.
	var m wire.MLSMessage
	if err := m.UnmarshalBinary(res.Welcome); err != nil {
		t.Fatal(err)
	}
	m.Welcome.Secrets[0].NewMember = bytes.Repeat([]byte{0xee}, len(m.Welcome.Secrets[0].NewMember))
	if altered, err = m.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	if _, err := Join(kp, altered, nil); err == nil {
		t.Fatal("a Welcome without this joiner's entry joined")
	}
}

// welcomeWithOtherEntries returns welcome (an MLSMessage holding a Welcome
// with one entry) with entries for another member before and after it.
func welcomeWithOtherEntries(tb testing.TB, welcome []byte) []byte {
	tb.Helper()
	var m wire.MLSMessage
	if err := m.UnmarshalBinary(welcome); err != nil {
		tb.Fatal(err)
	}
	ours := m.Welcome.Secrets[0]
	other := ours
	other.NewMember = bytes.Repeat([]byte{0xee}, len(ours.NewMember))
	m.Welcome.Secrets = []wire.EncryptedGroupSecrets{other, ours, other}
	altered, err := m.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	if bytes.Equal(altered, welcome) {
		tb.Fatal("the altered Welcome is the genuine one")
	}
	return altered
}
