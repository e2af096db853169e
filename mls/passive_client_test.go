package mls

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
)

type passiveClientVector struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID hexBytes `json:"psk_id"`
		PSK   hexBytes `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                hexBytes `json:"key_package"`
	SignaturePriv             hexBytes `json:"signature_priv"`
	EncryptionPriv            hexBytes `json:"encryption_priv"`
	InitPriv                  hexBytes `json:"init_priv"`
	Welcome                   hexBytes `json:"welcome"`
	RatchetTree               hexBytes `json:"ratchet_tree"`
	InitialEpochAuthenticator hexBytes `json:"initial_epoch_authenticator"`
	Epochs                    []struct {
		Proposals          []hexBytes `json:"proposals"`
		Commit             hexBytes   `json:"commit"`
		EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

// TestPassiveClient runs every passive-client-*.json file in the vector
// directory (PARLEY_MLS_VECTORS), one subtest per entry: join from the
// Welcome, check the initial epoch authenticator, then process each epoch's
// proposals and commit and check the epoch authenticator after every epoch
// (mls-implementations test-vectors.md, "Passive Client Scenarios").
func TestPassiveClient(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(vectorDir(), "passive-client-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no passive-client-*.json in %s", vectorDir())
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var vs []passiveClientVector
			loadVectors(t, filepath.Base(f), &vs)
			for i, v := range vs {
				t.Run(fmt.Sprintf("%d/suite=%d", i, v.CipherSuite), func(t *testing.T) {
					t.Parallel() // entries are independent; P-521 ones are slow under -race
					runPassiveClient(t, &v)
				})
			}
		})
	}
}

func runPassiveClient(t *testing.T, v *passiveClientVector) {
	s := suiteOrSkip(t, v.CipherSuite)
	kpw, err := parseKeyPackage(v.KeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := kpw.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := s.MakeKeyPackageRef(raw)
	if err != nil {
		t.Fatal(err)
	}
	initPriv := hpkePriv(t, s, v.InitPriv)
	leafPriv := hpkePriv(t, s, v.EncryptionPriv)
	sigPriv := signaturePriv(t, s, v.SignaturePriv)
	// The private keys must match the KeyPackage's public keys.
	if !bytes.Equal(initPriv.PublicKey().Bytes(), kpw.InitKey) ||
		!bytes.Equal(leafPriv.PublicKey().Bytes(), kpw.LeafNode.EncryptionKey) ||
		!bytes.Equal(sigPriv.Public().Bytes(), kpw.LeafNode.SignatureKey) {
		t.Fatal("private keys do not match the key package")
	}
	kp := &KeyPackage{
		signer:   &Signer{suite: s, key: sigPriv, cred: kpw.LeafNode.Credential},
		kp:       *kpw,
		message:  v.KeyPackage,
		ref:      ref,
		initPriv: initPriv,
		leafPriv: leafPriv,
	}
	cfg := &Config{ExternalPSKs: map[string][]byte{}}
	for _, p := range v.ExternalPSKs {
		cfg.ExternalPSKs[string(p.PSKID)] = p.PSK
	}
	g, err := Join(kp, v.Welcome, &JoinOptions{RatchetTree: v.RatchetTree, Config: cfg})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), v.InitialEpochAuthenticator) {
		t.Fatal("initial epoch authenticator differs")
	}
	for i, e := range v.Epochs {
		for j, p := range e.Proposals {
			r, err := g.ProcessMessage(p)
			if err != nil {
				t.Fatalf("epoch %d: proposal %d: %v", i, j, err)
			}
			if r.Kind != KindProposal {
				t.Fatalf("epoch %d: proposal %d is a %d", i, j, r.Kind)
			}
		}
		r, err := g.ProcessMessage(e.Commit)
		if err != nil {
			t.Fatalf("epoch %d: commit: %v", i, err)
		}
		if r.Kind != KindCommit {
			t.Fatalf("epoch %d: commit is a %d", i, r.Kind)
		}
		if !bytes.Equal(g.EpochAuthenticator(), e.EpochAuthenticator) {
			t.Fatalf("epoch %d: epoch authenticator differs", i)
		}
	}
}
