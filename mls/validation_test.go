package mls

import (
	"strings"
	"testing"
	"time"
)

// TestKeyPackageLifetimeEnforcedWhenSending checks RFC 9420 §7.3: a client
// MUST verify the lifetime of a LeafNode in a message it sends. A KeyPackage
// made now is 90 days valid with one hour of backdating; a group whose clock
// is 100 days ahead (expired) or two hours behind (not yet valid) refuses to
// propose or commit its Add, and leaves its state unchanged.
func TestKeyPackageLifetimeEnforcedWhenSending(t *testing.T) {
	kp, err := newSigner(t, testSuites[0], "joiner").NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		shift time.Duration
	}{
		{"expired", 100 * 24 * time.Hour},
		{"not yet valid", -2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{Now: func() time.Time { return time.Now().Add(tc.shift) }}
			g, err := NewGroup(newSigner(t, testSuites[0], "creator"), []byte("lifetime"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := mustMarshal(t, g)
			if _, err := g.ProposeAdd(kp.Bytes(), nil); err == nil || !strings.Contains(err.Error(), "lifetime") {
				t.Errorf("ProposeAdd of a KeyPackage outside its lifetime: err = %v", err)
			}
			if _, err := g.Commit(&CommitOptions{Add: [][]byte{kp.Bytes()}}); err == nil || !strings.Contains(err.Error(), "lifetime") {
				t.Errorf("Commit adding a KeyPackage outside its lifetime: err = %v", err)
			}
			if string(mustMarshal(t, g)) != string(before) {
				t.Error("a refused Add changed the group state")
			}
		})
	}
	// The same KeyPackage is accepted by a group with the right clock.
	g, err := NewGroup(newSigner(t, testSuites[0], "creator"), []byte("lifetime"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.ProposeAdd(kp.Bytes(), nil); err != nil {
		t.Fatalf("ProposeAdd within the lifetime: %v", err)
	}
}

func mustMarshal(t testing.TB, g *Group) []byte {
	t.Helper()
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestApplicationIDOnOwnLeaf: CommitOptions.ApplicationID sets the
// application_id extension (RFC 9420 §5.3.3) of the committer's leaf through
// an UpdatePath, every member sees it in Members, and a later change
// replaces it (one extension of the type, §13.4).
func TestApplicationIDOnOwnLeaf(t *testing.T) {
	ms := newTestGroup(t, testSuites[0], 3, true)
	for _, id := range []string{"device-7", "device-8"} {
		commitAndDeliver(t, ms, 1, &CommitOptions{ApplicationID: []byte(id)})
		checkAgree(t, ms)
		for _, m := range ms {
			got := m.g.Members()[1].ApplicationID
			if string(got) != id {
				t.Fatalf("%s sees leaf 1 application_id %q, want %q", m.name, got, id)
			}
			if m.g.Members()[0].ApplicationID != nil || m.g.Members()[2].ApplicationID != nil {
				t.Fatalf("%s: application_id on a leaf that did not set one", m.name)
			}
		}
	}
}
