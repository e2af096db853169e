package relay

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
)

// TestKeyFileStable: the key is created once, with mode 0600, and read
// back identical, so the relay's address survives restarts.
func TestKeyFileStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "relay.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("key changed between loads")
	}
	pub := k1.Public().(ed25519.PublicKey)
	a, _ := Address(pub, "relay.example:5223")
	fp, _ := Fingerprint(pub)
	if a != wire.Scheme+fp+"@relay.example:5223" {
		t.Fatalf("address %q does not carry fingerprint %q", a, fp)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("a corrupt key file was accepted")
	}
}

// TestQueueKeysIndependent: the relay's per-queue keys differ by role and
// by queue, and are the same across restarts (derived from the relay key).
func TestQueueKeysIndependent(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	qk, err := newQueueKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	qk2, _ := newQueueKeys(key)
	var a, b store.ID
	b[0] = 1
	seen := make(map[string]bool)
	for _, role := range []byte{roleRecipient, roleSender} {
		for _, id := range []store.ID{a, b} {
			k, err := qk.private(role, id)
			if err != nil {
				t.Fatal(err)
			}
			k2, _ := qk2.private(role, id)
			if !k.Equal(k2) {
				t.Fatal("queue key not stable across restarts")
			}
			s := string(k.Bytes())
			if seen[s] {
				t.Fatal("two roles or queues share a relay key")
			}
			seen[s] = true
		}
	}
}
