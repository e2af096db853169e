package mls

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-messenger/parley/mls/internal/wire"
)

// TestLeafNodeValidation runs RFC 9420 §7.3 leaf node validation on a
// KeyPackage's leaf with one defect at a time (re-signed where the defect
// is in signed fields, so the signature check cannot stand in for the
// others): each is rejected with its own reason, and the genuine leaf passes.
func TestLeafNodeValidation(t *testing.T) {
	ms := newTestGroup(t, testSuites[0], 2, true)
	g := ms[0].g
	kp, err := newSigner(t, testSuites[0], "joiner").NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := RequiredCapabilitiesExtension([]uint16{0xff02}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, want string
		edit       func(ln *wire.LeafNode, c *leafCheck)
		resign     bool
	}{
		{"genuine", "", func(*wire.LeafNode, *leafCheck) {}, false},
		{"signature", "signature", func(ln *wire.LeafNode, _ *leafCheck) { ln.Signature[3] ^= 1 }, false},
		{"source", "source", func(ln *wire.LeafNode, _ *leafCheck) { ln.Source = wire.LeafNodeSourceUpdate }, false},
		{"own credential type not in capabilities", "own credential type", func(ln *wire.LeafNode, _ *leafCheck) { ln.Capabilities.Credentials = nil }, true},
		{"mls10 not in capabilities", "mls10", func(ln *wire.LeafNode, _ *leafCheck) { ln.Capabilities.Versions = nil }, true},
		{"group suite not in capabilities", "cipher suite", func(ln *wire.LeafNode, _ *leafCheck) { ln.Capabilities.CipherSuites = nil }, true},
		{"extension not in capabilities", "not listed in its capabilities", func(ln *wire.LeafNode, _ *leafCheck) {
			ln.Extensions = wire.Extensions{{Type: 0xff00}}
		}, true},
		{"duplicate extension", "duplicate extension", func(ln *wire.LeafNode, _ *leafCheck) {
			ln.Extensions = wire.Extensions{{Type: wire.ExtensionTypeApplicationID, Data: []byte{0}}, {Type: wire.ExtensionTypeApplicationID, Data: []byte{0}}}
		}, true},
		{"expired", "lifetime", func(ln *wire.LeafNode, _ *leafCheck) { ln.Lifetime.NotAfter = 1 }, true},
		{"group context extension unsupported", "group context extension", func(_ *wire.LeafNode, c *leafCheck) {
			c.extensions = wire.Extensions{{Type: 0xff01}}
		}, false},
		{"required capability missing", "lacks required extension", func(_ *wire.LeafNode, c *leafCheck) {
			c.extensions = toWireExtensions([]Extension{rc})
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln := kp.kp.LeafNode
			ln.Capabilities.Credentials = append([]wire.CredentialType(nil), ln.Capabilities.Credentials...)
			ln.Signature = append([]byte(nil), ln.Signature...)
			check := leafCheck{tree: g.tree, groupID: g.ctx.GroupID, extensions: g.ctx.Extensions, now: time.Now(), checkLifetime: true}
			c.edit(&ln, &check)
			if c.resign {
				if err := signLeafNode(kp.signer, &ln, nil, 0); err != nil {
					t.Fatal(err)
				}
			}
			err := check.checkLeaf(&ln, ^uint32(0), wire.LeafNodeSourceKeyPackage)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("genuine leaf rejected: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("checkLeaf = %v, want an error about %q", err, c.want)
			}
		})
	}
}
