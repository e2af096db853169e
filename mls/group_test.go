package mls

import (
	"bytes"
	"fmt"
	"testing"
)

// testSuites are the suites the state-machine tests run for: the two the
// architecture names plus the X-Wing suite.
var testSuites = []CipherSuite{
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
	MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519,
}

type member struct {
	name   string
	signer *Signer
	g      *Group
}

func newSigner(t testing.TB, cs CipherSuite, name string) *Signer {
	t.Helper()
	s, err := NewSigner(cs, []byte(name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestGroup creates a group of n members (the creator adds the others in
// one commit) and returns every member's state.
func newTestGroup(t testing.TB, cs CipherSuite, n int, withTree bool) []*member {
	t.Helper()
	creator := &member{name: "m0", signer: newSigner(t, cs, "m0")}
	g, err := NewGroup(creator.signer, []byte("test group"), nil)
	if err != nil {
		t.Fatal(err)
	}
	creator.g = g
	ms := []*member{creator}
	if n == 1 {
		return ms
	}
	var kps []*KeyPackage
	opts := &CommitOptions{RatchetTreeInWelcome: withTree}
	for i := 1; i < n; i++ {
		m := &member{name: fmt.Sprintf("m%d", i), signer: newSigner(t, cs, fmt.Sprintf("m%d", i))}
		kp, err := m.signer.NewKeyPackage()
		if err != nil {
			t.Fatal(err)
		}
		kps = append(kps, kp)
		opts.Add = append(opts.Add, kp.Bytes())
		ms = append(ms, m)
	}
	res, err := g.Commit(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Merge(res); err != nil {
		t.Fatal(err)
	}
	var jo *JoinOptions
	if !withTree {
		rt, err := g.RatchetTree()
		if err != nil {
			t.Fatal(err)
		}
		jo = &JoinOptions{RatchetTree: rt}
	}
	for i, kp := range kps {
		ng, err := Join(kp, res.Welcome, jo)
		if err != nil {
			t.Fatalf("join %d: %v", i+1, err)
		}
		ms[i+1].g = ng
	}
	checkAgree(t, ms)
	return ms
}

// checkAgree fails unless every live member is in the same epoch with the
// same epoch authenticator.
func checkAgree(t testing.TB, ms []*member) {
	t.Helper()
	var ref *member
	for _, m := range ms {
		if m == nil || m.g == nil || m.g.Removed() {
			continue
		}
		if ref == nil {
			ref = m
			continue
		}
		if m.g.Epoch() != ref.g.Epoch() || !bytes.Equal(m.g.EpochAuthenticator(), ref.g.EpochAuthenticator()) {
			t.Fatalf("%s (epoch %d) and %s (epoch %d) disagree", m.name, m.g.Epoch(), ref.name, ref.g.Epoch())
		}
	}
}

// commitAndDeliver makes m commit opts, merges it, and has every other live
// member process it.
func commitAndDeliver(t testing.TB, ms []*member, from int, opts *CommitOptions) *CommitResult {
	t.Helper()
	res, err := ms[from].g.Commit(opts)
	if err != nil {
		t.Fatalf("%s commit: %v", ms[from].name, err)
	}
	for i, m := range ms {
		if i == from || m.g == nil || m.g.Removed() {
			continue
		}
		if _, err := m.g.ProcessMessage(res.Commit); err != nil {
			t.Fatalf("%s processing %s's commit: %v", m.name, ms[from].name, err)
		}
	}
	if err := ms[from].g.Merge(res); err != nil {
		t.Fatal(err)
	}
	return res
}

// checkMessaging has every live member send to all others.
func checkMessaging(t testing.TB, ms []*member) {
	t.Helper()
	for i, s := range ms {
		if s.g == nil || s.g.Removed() {
			continue
		}
		text := []byte("hello from " + s.name)
		ct, err := s.g.Encrypt(text, []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range ms {
			if i == j || r.g == nil || r.g.Removed() {
				continue
			}
			got, err := r.g.ProcessMessage(ct)
			if err != nil {
				t.Fatalf("%s reading %s: %v", r.name, s.name, err)
			}
			if got.Kind != KindApplication || !bytes.Equal(got.Data, text) || got.Sender != int64(s.g.LeafIndex()) || !bytes.Equal(got.AuthenticatedData, []byte("aad")) {
				t.Fatalf("%s read %+v from %s", r.name, got, s.name)
			}
		}
	}
}

func TestGroupLifecycle(t *testing.T) {
	for _, cs := range testSuites {
		for _, withTree := range []bool{true, false} {
			t.Run(fmt.Sprintf("suite=0x%04x/tree-in-welcome=%v", uint16(cs), withTree), func(t *testing.T) {
				ms := newTestGroup(t, cs, 4, withTree)
				checkMessaging(t, ms)
				// A full-path self-update from a joiner.
				commitAndDeliver(t, ms, 2, &CommitOptions{ForcePath: true})
				checkAgree(t, ms)
				checkMessaging(t, ms)
				// An Update proposal committed by another member.
				up, err := ms[1].g.ProposeUpdate(&ProposalOptions{PublicMessage: true})
				if err != nil {
					t.Fatal(err)
				}
				for i, m := range ms {
					if i != 1 {
						if _, err := m.g.ProcessMessage(up); err != nil {
							t.Fatalf("%s: %v", m.name, err)
						}
					}
				}
				commitAndDeliver(t, ms, 3, nil)
				checkAgree(t, ms)
				checkMessaging(t, ms)
				// Remove a member by commit.
				commitAndDeliver(t, ms, 0, &CommitOptions{Remove: []uint32{1}, PublicMessage: true})
				if !ms[1].g.Removed() {
					t.Fatal("removed member does not know it")
				}
				checkAgree(t, ms)
				checkMessaging(t, ms)
				// Add a new member, who takes the freed leaf.
				nm := &member{name: "new", signer: newSigner(t, cs, "new")}
				kp, err := nm.signer.NewKeyPackage()
				if err != nil {
					t.Fatal(err)
				}
				res := commitAndDeliver(t, ms, 3, &CommitOptions{Add: [][]byte{kp.Bytes()}, RatchetTreeInWelcome: true})
				if nm.g, err = Join(kp, res.Welcome, nil); err != nil {
					t.Fatal(err)
				}
				if nm.g.LeafIndex() != 1 {
					t.Fatalf("new member at leaf %d, want 1", nm.g.LeafIndex())
				}
				ms = append(ms, nm)
				checkAgree(t, ms)
				checkMessaging(t, ms)
			})
		}
	}
}

func TestExternalJoin(t *testing.T) {
	for _, cs := range testSuites {
		t.Run(fmt.Sprintf("suite=0x%04x", uint16(cs)), func(t *testing.T) {
			ms := newTestGroup(t, cs, 3, true)
			gi, err := ms[1].g.GroupInfo(true)
			if err != nil {
				t.Fatal(err)
			}
			j := &member{name: "joiner", signer: newSigner(t, cs, "joiner")}
			g, commit, err := JoinExternal(j.signer, gi, nil)
			if err != nil {
				t.Fatal(err)
			}
			j.g = g
			for _, m := range ms {
				r, err := m.g.ProcessMessage(commit)
				if err != nil {
					t.Fatalf("%s: %v", m.name, err)
				}
				if r.Kind != KindCommit || r.Sender != -1 {
					t.Fatalf("%s: %+v", m.name, r)
				}
			}
			ms = append(ms, j)
			checkAgree(t, ms)
			checkMessaging(t, ms)
			commitAndDeliver(t, ms, 3, &CommitOptions{ForcePath: true})
			checkAgree(t, ms)
		})
	}
}

func TestPSKProposals(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	ms := newTestGroup(t, cs, 3, true)
	psk := map[string][]byte{"shared": []byte("a pre-shared key")}
	for _, m := range ms {
		m.g.cfg.ExternalPSKs = psk
	}
	commitAndDeliver(t, ms, 0, &CommitOptions{ExternalPSKs: [][]byte{[]byte("shared")}})
	checkAgree(t, ms)
	prev := ms[0].g.Epoch() - 1
	commitAndDeliver(t, ms, 1, &CommitOptions{ResumptionPSKEpochs: []uint64{prev}})
	checkAgree(t, ms)
	checkMessaging(t, ms)
	// A PSK one member lacks makes the commit unacceptable to it.
	ms[2].g.cfg.ExternalPSKs = nil
	res, err := ms[0].g.Commit(&CommitOptions{ExternalPSKs: [][]byte{[]byte("shared")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms[2].g.ProcessMessage(res.Commit); err == nil {
		t.Fatal("commit with an unknown PSK accepted")
	}
	// New members get the PSK through the Welcome.
	nm := newSigner(t, cs, "new")
	kp, err := nm.NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	res, err = ms[0].g.Commit(&CommitOptions{ExternalPSKs: [][]byte{[]byte("shared")}, Add: [][]byte{kp.Bytes()}, RatchetTreeInWelcome: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(kp, res.Welcome, nil); err == nil {
		t.Fatal("joined without the PSK")
	}
	g, err := Join(kp, res.Welcome, &JoinOptions{Config: &Config{ExternalPSKs: psk}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ms[0].g.Merge(res); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), ms[0].g.EpochAuthenticator()) {
		t.Fatal("joiner disagrees")
	}
}

func TestGroupContextExtensionsAndReInit(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	ms := newTestGroup(t, cs, 3, true)
	appID := Extension{Type: 0x0001, Data: []byte{3, 'a', 'p', 'p'}}
	p, err := ms[1].g.ProposeGroupContextExtensions([]Extension{appID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		if _, err := ms[i].g.ProcessMessage(p); err != nil {
			t.Fatal(err)
		}
	}
	commitAndDeliver(t, ms, 0, nil)
	checkAgree(t, ms)
	if len(ms[2].g.ctx.Extensions) != 1 {
		t.Fatal("extensions not applied")
	}
	ri, err := ms[2].g.ProposeReInit([]byte("next group"), MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1} {
		if _, err := ms[i].g.ProcessMessage(ri); err != nil {
			t.Fatal(err)
		}
	}
	commitAndDeliver(t, ms, 1, nil)
	for _, m := range ms {
		if !m.g.ReInitPending() {
			t.Fatalf("%s: reinit not pending", m.name)
		}
		if _, err := m.g.Encrypt([]byte("x"), nil); err == nil {
			t.Fatalf("%s: sent in a reinitialized group", m.name)
		}
	}
}

func TestEncryptRefusedWithPendingProposals(t *testing.T) {
	ms := newTestGroup(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 2, true)
	p, err := ms[0].g.ProposeRemove(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms[1].g.ProcessMessage(p); err != nil {
		t.Fatal(err)
	}
	if _, err := ms[1].g.Encrypt([]byte("x"), nil); err == nil {
		t.Fatal("application data sent with proposals pending")
	}
}

// TestCommitLeavesOutInvalidProposals: a received proposal that conflicts
// with another (two Removes of one leaf) does not block the epoch: the
// committer leaves it out and the others accept the commit.
func TestCommitLeavesOutInvalidProposals(t *testing.T) {
	ms := newTestGroup(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 4, true)
	for _, from := range []int{0, 1} {
		p, err := ms[from].g.ProposeRemove(3, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range ms {
			if i != from {
				if _, err := m.g.ProcessMessage(p); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	commitAndDeliver(t, ms, 2, nil)
	if !ms[3].g.Removed() {
		t.Fatal("remove not committed")
	}
	checkAgree(t, ms)
	// An invalid inline request is still an error for the caller.
	if _, err := ms[0].g.Commit(&CommitOptions{Remove: []uint32{0}}); err == nil {
		t.Fatal("commit removing the committer accepted")
	}
}
