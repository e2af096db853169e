package mls

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley-messenger/parley/mls/internal/tree"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// signLeafNode sets ln.Signature (RFC 9420 §7.2:
// SignWithLabel(., "LeafNodeTBS", LeafNodeTBS)); groupID and leaf are part
// of the signed content for the update and commit sources.
func signLeafNode(s *Signer, ln *wire.LeafNode, groupID []byte, leaf uint32) error {
	tbs, err := (&wire.LeafNodeTBS{LeafNode: ln, GroupID: groupID, LeafIndex: leaf}).MarshalBinary()
	if err != nil {
		return fmt.Errorf("mls: leaf node: %w", err)
	}
	ln.Signature, err = s.suite.SignWithLabel(s.key, wire.LeafNodeTBSLabel, tbs)
	return err
}

// isDefaultExtension reports whether an extension type is one RFC 9420
// defines, which every client supports and need not list (§7.2).
func isDefaultExtension(t wire.ExtensionType) bool {
	return t >= wire.ExtensionTypeApplicationID && t <= wire.ExtensionTypeExternalSenders
}

// isDefaultProposal reports whether a proposal type is one RFC 9420 defines.
func isDefaultProposal(t wire.ProposalType) bool {
	return t >= wire.ProposalTypeAdd && t <= wire.ProposalTypeGroupContextExtensions
}

// leafSupportsExtension reports whether ln can handle extension type t
// (RFC 9420 §7.2: default types are implied).
func leafSupportsExtension(ln *wire.LeafNode, t wire.ExtensionType) bool {
	return isDefaultExtension(t) || slices.Contains(ln.Capabilities.Extensions, t)
}

// leafCheck carries the group state the leaf-node checks of RFC 9420 §7.3
// need beyond the leaf itself.
type leafCheck struct {
	tree       *tree.Tree
	groupID    []byte
	extensions wire.Extensions // the group context's extensions
	now        time.Time
	// checkLifetime is set for key_package leaves added to the group, not
	// for the existing leaves of a tree a new member validates.
	checkLifetime bool
	// signatureVerified is set where the tree package verifies the leaf's
	// signature itself (tree validation on join, ApplyPath), so that it is
	// not verified twice.
	signatureVerified bool
}

// checkLeaf runs RFC 9420 §7.3 "Leaf Node Validation" for ln placed at leaf
// index at with the expected source. It does not check key uniqueness, which
// depends on what else the commit changes (see checkLeafKeys).
func (c *leafCheck) checkLeaf(ln *wire.LeafNode, at uint32, source wire.LeafNodeSource) error {
	if ln.Source != source {
		return fmt.Errorf("mls: leaf node: source %d, want %d", ln.Source, source)
	}
	// Credential: basic only, and its type must be one every member
	// supports; the leaf must support every member's credential type.
	if ln.Credential.Type != wire.CredentialTypeBasic {
		return fmt.Errorf("mls: leaf node: unsupported credential type %d", ln.Credential.Type)
	}
	if !slices.Contains(ln.Capabilities.Credentials, ln.Credential.Type) {
		return errors.New("mls: leaf node: capabilities do not list its own credential type")
	}
	if !slices.Contains(ln.Capabilities.Versions, wire.MLS10) {
		return errors.New("mls: leaf node: capabilities do not list mls10")
	}
	s := c.tree.Suite()
	if !slices.Contains(ln.Capabilities.CipherSuites, wire.CipherSuite(s.ID())) {
		return errors.New("mls: leaf node: capabilities do not list the group's cipher suite")
	}
	// Signature (§7.2).
	if !c.signatureVerified {
		if err := c.tree.VerifyLeafSignature(treeLeaf(at), ln, c.groupID); err != nil {
			return fmt.Errorf("mls: leaf node: %w", err)
		}
	}
	// required_capabilities and the group context extensions (§7.3, §11.1).
	if err := checkLeafCapabilities(ln, c.extensions); err != nil {
		return err
	}
	// Every member must support this credential type and this leaf every
	// member's (§7.3).
	var err error
	for l := uint32(0); l < c.tree.LeafCount() && err == nil; l++ {
		m := c.tree.Leaf(treeLeaf(l))
		if m == nil || l == at {
			continue
		}
		if !slices.Contains(m.Capabilities.Credentials, ln.Credential.Type) || !slices.Contains(ln.Capabilities.Credentials, m.Credential.Type) {
			err = fmt.Errorf("mls: leaf node: credential types not mutually supported with leaf %d", l)
		}
	}
	if err != nil {
		return err
	}
	if c.checkLifetime && source == wire.LeafNodeSourceKeyPackage {
		if err := checkLifetime(ln, c.now); err != nil {
			return err
		}
	}
	// Every extension in the leaf must be listed in its capabilities.
	if ln.Extensions.HasDuplicates() {
		return errors.New("mls: leaf node: duplicate extension")
	}
	for _, e := range ln.Extensions {
		if !leafSupportsExtension(ln, e.Type) {
			return fmt.Errorf("mls: leaf node: extension %d not listed in its capabilities", e.Type)
		}
	}
	return nil
}

// checkLeafCapabilities checks a leaf against the group context extensions
// (RFC 9420 §7.3, §11.1, §12.1.7): it must support every extension in use and
// every type the required_capabilities extension names.
func checkLeafCapabilities(ln *wire.LeafNode, exts wire.Extensions) error {
	for _, e := range exts {
		if !leafSupportsExtension(ln, e.Type) {
			return fmt.Errorf("mls: leaf node: does not support group context extension %d", e.Type)
		}
	}
	e, ok := exts.Find(wire.ExtensionTypeRequiredCapabilities)
	if !ok {
		return nil
	}
	var rc wire.RequiredCapabilities
	if err := rc.UnmarshalBinary(e.Data); err != nil {
		return fmt.Errorf("mls: required_capabilities: %w", err)
	}
	for _, t := range rc.ExtensionTypes {
		if !leafSupportsExtension(ln, t) {
			return fmt.Errorf("mls: leaf node: lacks required extension %d", t)
		}
	}
	for _, t := range rc.ProposalTypes {
		if !isDefaultProposal(t) && !slices.Contains(ln.Capabilities.Proposals, t) {
			return fmt.Errorf("mls: leaf node: lacks required proposal type %d", t)
		}
	}
	for _, t := range rc.CredentialTypes {
		if !slices.Contains(ln.Capabilities.Credentials, t) {
			return fmt.Errorf("mls: leaf node: lacks required credential type %d", t)
		}
	}
	return nil
}

// checkLifetime checks that now lies within a key_package leaf's lifetime
// (RFC 9420 §7.3: MUST for a LeafNode in a message the client sends,
// RECOMMENDED for one it receives; only key_package leaves carry one).
func checkLifetime(ln *wire.LeafNode, now time.Time) error {
	if ln.Source != wire.LeafNodeSourceKeyPackage {
		return nil
	}
	t := now.Unix()
	if t < 0 || uint64(t) < ln.Lifetime.NotBefore || uint64(t) > ln.Lifetime.NotAfter {
		return errors.New("mls: leaf node: outside its lifetime")
	}
	return nil
}
