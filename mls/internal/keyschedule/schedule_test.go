package keyschedule

import (
	"bytes"
	"testing"
)

func epochSecrets(e *Epoch) map[string][]byte {
	return map[string][]byte{
		"joiner": e.JoinerSecret, "welcome": e.WelcomeSecret, "sender data": e.SenderDataSecret,
		"encryption": e.EncryptionSecret, "exporter": e.ExporterSecret, "external": e.ExternalSecret,
		"confirm": e.ConfirmationKey, "membership": e.MembershipKey, "resumption": e.ResumptionPSK,
		"authentication": e.EpochAuthenticator, "init": e.InitSecret,
	}
}

// TestEpochDependsOnEveryInput: changing init_secret, commit_secret,
// psk_secret or the GroupContext changes every secret of the epoch
// (joiner_secret excepted for psk_secret, which enters after it, RFC 9420
// §8), and no two secrets of one epoch are equal.
func TestEpochDependsOnEveryInput(t *testing.T) {
	s := testSuite(t)
	in := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	base, err := Derive(s, in(1), in(2), in(3), []byte("gc"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for name, v := range epochSecrets(base) {
		if len(v) != s.Nh() {
			t.Fatalf("%s is %d bytes", name, len(v))
		}
		if other, dup := seen[string(v)]; dup {
			t.Fatalf("%s equals %s", name, other)
		}
		seen[string(v)] = name
	}
	for _, c := range []struct {
		name                  string
		init, commit, psk, gc []byte
		joinerUnchanged       bool
	}{
		{"init_secret", in(9), in(2), in(3), []byte("gc"), false},
		{"commit_secret", in(1), in(9), in(3), []byte("gc"), false},
		{"psk_secret", in(1), in(2), in(9), []byte("gc"), true},
		{"group context", in(1), in(2), in(3), []byte("gC"), false},
	} {
		e, err := Derive(s, c.init, c.commit, c.psk, c.gc)
		if err != nil {
			t.Fatal(err)
		}
		b, o := epochSecrets(base), epochSecrets(e)
		for name := range b {
			same := bytes.Equal(b[name], o[name])
			if name == "joiner" && c.joinerUnchanged {
				if !same {
					t.Errorf("%s changed joiner_secret", c.name)
				}
				continue
			}
			if same {
				t.Errorf("changing %s left %s unchanged", c.name, name)
			}
		}
	}
}

// TestDefaultsAreZeroVectors: nil commit and PSK secrets stand for the
// all-zero KDF.Nh vectors of RFC 9420 §8 and §8.4.
func TestDefaultsAreZeroVectors(t *testing.T) {
	s := testSuite(t)
	initSecret := bytes.Repeat([]byte{1}, 32)
	a, err := Derive(s, initSecret, nil, nil, []byte("gc"))
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 32)
	b, err := Derive(s, initSecret, zero, zero, []byte("gc"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.EpochAuthenticator, b.EpochAuthenticator) {
		t.Fatal("nil inputs differ from zero vectors")
	}
	none, err := PSKSecret(s, nil)
	if err != nil || !bytes.Equal(none, zero) {
		t.Fatalf("psk_secret of no PSKs = %x, %v", none, err)
	}
}

func TestScheduleRejectsWrongLengths(t *testing.T) {
	s := testSuite(t)
	if _, err := Derive(s, make([]byte, 31), nil, nil, nil); err == nil {
		t.Error("31-byte init_secret accepted")
	}
	if _, err := FromJoinerSecret(s, make([]byte, 32), make([]byte, 33), nil); err == nil {
		t.Error("33-byte psk_secret accepted")
	}
	if _, err := PSKSecret(s, []PSK{{ID: []byte{1}, Nonce: make([]byte, 16), Secret: []byte("k")}}); err == nil {
		t.Error("16-byte psk_nonce accepted")
	}
	if _, err := NewSecretTree(s, make([]byte, 32), 0, Limits{}); err == nil {
		t.Error("secret tree with no leaves accepted")
	}
	if _, err := NewSecretTree(s, make([]byte, 32), 3, Limits{}); err == nil {
		t.Error("secret tree with 3 leaves accepted")
	}
}

func TestWelcomeKeyNonce(t *testing.T) {
	s := testSuite(t)
	k, n, err := WelcomeKeyNonce(s, bytes.Repeat([]byte{4}, 32))
	if err != nil || len(k) != s.Nk() || len(n) != s.Nn() {
		t.Fatalf("welcome key %d bytes, nonce %d bytes, %v", len(k), len(n), err)
	}
}

func BenchmarkDerive(b *testing.B) {
	s := testSuite(b)
	initSecret := bytes.Repeat([]byte{1}, 32)
	for b.Loop() {
		if _, err := Derive(s, initSecret, initSecret, nil, []byte("gc")); err != nil {
			b.Fatal(err)
		}
	}
}
