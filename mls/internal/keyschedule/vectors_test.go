package keyschedule

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/codec"
	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

const vectors = "../../../../shared/vectors/mls/"

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

func load(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(vectors + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// suiteFor returns a vector's suite, or skips the subtest with the reason
// for the two suites Go's standard library cannot do.
func suiteFor(t *testing.T, id uint16) *ciphersuite.Suite {
	t.Helper()
	s, err := ciphersuite.New(ciphersuite.ID(id))
	if errors.Is(err, ciphersuite.ErrUnsupportedSuite) && (id == 4 || id == 6) {
		t.Skipf("suite %d needs X448/Ed448, which Go's standard library lacks", id)
	}
	if err != nil {
		t.Fatalf("suite %d: %v", id, err)
	}
	return s
}

func eq(t *testing.T, name string, got []byte, want hexBytes) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", name, got, []byte(want))
	}
}

type keyScheduleVector struct {
	CipherSuite       uint16   `json:"cipher_suite"`
	GroupID           hexBytes `json:"group_id"`
	InitialInitSecret hexBytes `json:"initial_init_secret"`
	Epochs            []struct {
		TreeHash                hexBytes `json:"tree_hash"`
		CommitSecret            hexBytes `json:"commit_secret"`
		PSKSecret               hexBytes `json:"psk_secret"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
		GroupContext            hexBytes `json:"group_context"`
		JoinerSecret            hexBytes `json:"joiner_secret"`
		WelcomeSecret           hexBytes `json:"welcome_secret"`
		InitSecret              hexBytes `json:"init_secret"`
		SenderDataSecret        hexBytes `json:"sender_data_secret"`
		EncryptionSecret        hexBytes `json:"encryption_secret"`
		ExporterSecret          hexBytes `json:"exporter_secret"`
		EpochAuthenticator      hexBytes `json:"epoch_authenticator"`
		ExternalSecret          hexBytes `json:"external_secret"`
		ConfirmationKey         hexBytes `json:"confirmation_key"`
		MembershipKey           hexBytes `json:"membership_key"`
		ResumptionPSK           hexBytes `json:"resumption_psk"`
		ExternalPub             hexBytes `json:"external_pub"`
		Exporter                struct {
			// The label is a string used as is (the generator made
			// it look like hex); only the context is hex.
			Label   string   `json:"label"`
			Context hexBytes `json:"context"`
			Length  int      `json:"length"`
			Secret  hexBytes `json:"secret"`
		} `json:"exporter"`
	} `json:"epochs"`
}

// groupContext encodes RFC 9420 §8.1 GroupContext with no extensions, by
// hand, so that this test checks the schedule independently of the wire
// package.
func groupContext(suite uint16, groupID []byte, epoch uint64, treeHash, cth []byte) []byte {
	var b cryptobyte.Builder
	b.AddUint16(1) // mls10
	b.AddUint16(suite)
	codec.AddVarBytes(&b, groupID)
	b.AddUint64(epoch)
	codec.AddVarBytes(&b, treeHash)
	codec.AddVarBytes(&b, cth)
	codec.AddVarBytes(&b, nil)
	return b.BytesOrPanic()
}

func TestKeyScheduleVectors(t *testing.T) {
	var vs []keyScheduleVector
	load(t, "key-schedule.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("%d/suite=%d", i, v.CipherSuite), func(t *testing.T) {
			s := suiteFor(t, v.CipherSuite)
			initSecret := []byte(v.InitialInitSecret)
			for n, ev := range v.Epochs {
				t.Run(fmt.Sprintf("epoch=%d", n), func(t *testing.T) {
					gc := groupContext(v.CipherSuite, v.GroupID, uint64(n), ev.TreeHash, ev.ConfirmedTranscriptHash)
					eq(t, "group_context", gc, ev.GroupContext)
					e, err := Derive(s, initSecret, ev.CommitSecret, ev.PSKSecret, gc)
					if err != nil {
						t.Fatal(err)
					}
					eq(t, "joiner_secret", e.JoinerSecret, ev.JoinerSecret)
					eq(t, "welcome_secret", e.WelcomeSecret, ev.WelcomeSecret)
					eq(t, "init_secret", e.InitSecret, ev.InitSecret)
					eq(t, "sender_data_secret", e.SenderDataSecret, ev.SenderDataSecret)
					eq(t, "encryption_secret", e.EncryptionSecret, ev.EncryptionSecret)
					eq(t, "exporter_secret", e.ExporterSecret, ev.ExporterSecret)
					eq(t, "epoch_authenticator", e.EpochAuthenticator, ev.EpochAuthenticator)
					eq(t, "external_secret", e.ExternalSecret, ev.ExternalSecret)
					eq(t, "confirmation_key", e.ConfirmationKey, ev.ConfirmationKey)
					eq(t, "membership_key", e.MembershipKey, ev.MembershipKey)
					eq(t, "resumption_psk", e.ResumptionPSK, ev.ResumptionPSK)

					ext, err := e.ExternalKey(s)
					if err != nil {
						t.Fatal(err)
					}
					eq(t, "external_pub", ext.PublicKey().Bytes(), ev.ExternalPub)

					x := ev.Exporter
					out, err := e.Export(s, x.Label, x.Context, x.Length)
					if err != nil {
						t.Fatal(err)
					}
					eq(t, "exporter.secret", out, x.Secret)

					// A joiner who learns joiner_secret from a Welcome
					// reaches the same epoch.
					j, err := FromJoinerSecret(s, e.JoinerSecret, ev.PSKSecret, gc)
					if err != nil {
						t.Fatal(err)
					}
					eq(t, "joiner's epoch_authenticator", j.EpochAuthenticator, ev.EpochAuthenticator)
					eq(t, "joiner's init_secret", j.InitSecret, ev.InitSecret)
				})
				initSecret = ev.InitSecret
			}
		})
	}
}

type pskVector struct {
	CipherSuite uint16 `json:"cipher_suite"`
	PSKs        []struct {
		PSKID    hexBytes `json:"psk_id"`
		PSK      hexBytes `json:"psk"`
		PSKNonce hexBytes `json:"psk_nonce"`
	} `json:"psks"`
	PSKSecret hexBytes `json:"psk_secret"`
}

func TestPSKSecretVectors(t *testing.T) {
	var vs []pskVector
	load(t, "psk_secret.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("%d/suite=%d/psks=%d", i, v.CipherSuite, len(v.PSKs)), func(t *testing.T) {
			s := suiteFor(t, v.CipherSuite)
			var psks []PSK
			for _, p := range v.PSKs {
				id := wire.PreSharedKeyID{Type: wire.PSKTypeExternal, PSKID: p.PSKID, PSKNonce: p.PSKNonce}
				var b cryptobyte.Builder
				id.Marshal(&b)
				enc, err := b.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				psks = append(psks, PSK{ID: enc, Nonce: p.PSKNonce, Secret: p.PSK})
			}
			got, err := PSKSecret(s, psks)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "psk_secret", got, v.PSKSecret)
			if len(psks) > 1 {
				// Order matters (PSKLabel carries the index).
				psks[0], psks[1] = psks[1], psks[0]
				swapped, err := PSKSecret(s, psks)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Equal(swapped, v.PSKSecret) {
					t.Error("psk_secret does not depend on PSK order")
				}
			}
		})
	}
}

type secretTreeVector struct {
	CipherSuite      uint16   `json:"cipher_suite"`
	EncryptionSecret hexBytes `json:"encryption_secret"`
	SenderData       struct {
		SenderDataSecret hexBytes `json:"sender_data_secret"`
		Ciphertext       hexBytes `json:"ciphertext"`
		Key              hexBytes `json:"key"`
		Nonce            hexBytes `json:"nonce"`
	} `json:"sender_data"`
	Leaves [][]struct {
		Generation       uint32   `json:"generation"`
		ApplicationKey   hexBytes `json:"application_key"`
		ApplicationNonce hexBytes `json:"application_nonce"`
		HandshakeKey     hexBytes `json:"handshake_key"`
		HandshakeNonce   hexBytes `json:"handshake_nonce"`
	} `json:"leaves"`
}

func TestSecretTreeVectors(t *testing.T) {
	var vs []secretTreeVector
	load(t, "secret-tree.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("%d/suite=%d/leaves=%d", i, v.CipherSuite, len(v.Leaves)), func(t *testing.T) {
			s := suiteFor(t, v.CipherSuite)
			sd := v.SenderData
			key, nonce, err := SenderDataKeyNonce(s, sd.SenderDataSecret, sd.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "sender_data.key", key, sd.Key)
			eq(t, "sender_data.nonce", nonce, sd.Nonce)

			n := uint32(len(v.Leaves))
			// lookup: pure Key calls on a fresh tree; consume: the
			// generations consumed in order on a second tree.
			lookup, err := NewSecretTree(s, v.EncryptionSecret, n, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			consume, err := NewSecretTree(s, v.EncryptionSecret, n, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			for leaf, gens := range v.Leaves {
				l := treemath.LeafIndex(leaf)
				for _, g := range gens {
					for _, c := range []struct {
						typ        RatchetType
						key, nonce hexBytes
					}{
						{Handshake, g.HandshakeKey, g.HandshakeNonce},
						{Application, g.ApplicationKey, g.ApplicationNonce},
					} {
						name := fmt.Sprintf("leaf %d type %d generation %d", leaf, c.typ, g.Generation)
						k, err := lookup.Key(l, c.typ, g.Generation)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						eq(t, name+" key", k.Key, c.key)
						eq(t, name+" nonce", k.Nonce, c.nonce)
						k, err = consume.Key(l, c.typ, g.Generation)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						eq(t, name+" key (consuming tree)", k.Key, c.key)
						if err := consume.Consume(l, c.typ, g.Generation); err != nil {
							t.Fatalf("%s: consume: %v", name, err)
						}
						if _, err := consume.Key(l, c.typ, g.Generation); !errors.Is(err, ErrKeyUnavailable) {
							t.Fatalf("%s: key still available after use: %v", name, err)
						}
					}
				}
			}
		})
	}
}

type transcriptVector struct {
	CipherSuite                  uint16   `json:"cipher_suite"`
	ConfirmationKey              hexBytes `json:"confirmation_key"`
	AuthenticatedContent         hexBytes `json:"authenticated_content"`
	InterimTranscriptHashBefore  hexBytes `json:"interim_transcript_hash_before"`
	ConfirmedTranscriptHashAfter hexBytes `json:"confirmed_transcript_hash_after"`
	InterimTranscriptHashAfter   hexBytes `json:"interim_transcript_hash_after"`
}

func TestTranscriptHashVectors(t *testing.T) {
	var vs []transcriptVector
	load(t, "transcript-hashes.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("%d/suite=%d", i, v.CipherSuite), func(t *testing.T) {
			s := suiteFor(t, v.CipherSuite)
			var ac wire.AuthenticatedContent
			if err := ac.UnmarshalBinary(v.AuthenticatedContent); err != nil {
				t.Fatal(err)
			}
			in, err := ac.ConfirmedTranscriptHashInput().MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			confirmed := ConfirmedTranscriptHash(s, v.InterimTranscriptHashBefore, in)
			eq(t, "confirmed_transcript_hash_after", confirmed, v.ConfirmedTranscriptHashAfter)
			tag := ac.Auth.ConfirmationTag
			if !VerifyConfirmationTag(s, v.ConfirmationKey, confirmed, tag) {
				t.Error("confirmation tag does not verify")
			}
			eq(t, "confirmation_tag", ConfirmationTag(s, v.ConfirmationKey, confirmed), tag)
			interim, err := InterimTranscriptHash(s, confirmed, tag)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "interim_transcript_hash_after", interim, v.InterimTranscriptHashAfter)
		})
	}
}
