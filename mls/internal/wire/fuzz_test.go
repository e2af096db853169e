package wire

import (
	"bytes"
	"sync"
	"testing"
)

// seedCorpus returns every TLS-encoded value of the official vectors,
// grouped by the structure it decodes as.
type seedCorpus struct {
	messages, trees, commits, proposals, groupSecrets, leafNodes,
	authenticatedContents, updatePaths, groupContexts [][]byte
}

// seedCache keeps the corpus for the whole test binary: decoding the
// vector files is the slowest part of running the fuzz targets' seeds.
var seedCache struct {
	sync.Mutex
	c *seedCorpus
}

func loadSeeds(t testing.TB) *seedCorpus {
	seedCache.Lock()
	defer seedCache.Unlock()
	if seedCache.c == nil {
		seedCache.c = buildSeeds(t)
	}
	return seedCache.c
}

func buildSeeds(t testing.TB) *seedCorpus {
	var c seedCorpus
	var vectors []map[string]hexBytes
	loadVectors(t, "messages.json", &vectors)
	for _, v := range vectors {
		c.messages = append(c.messages, v["mls_welcome"], v["mls_group_info"], v["mls_key_package"],
			v["public_message_application"], v["public_message_proposal"],
			v["public_message_commit"], v["private_message"])
		c.trees = append(c.trees, v["ratchet_tree"])
		c.commits = append(c.commits, v["commit"])
		c.groupSecrets = append(c.groupSecrets, v["group_secrets"])
		c.leafNodes = append(c.leafNodes, v["update_proposal"])
		for _, p := range []struct {
			t    ProposalType
			name string
		}{
			{ProposalTypeAdd, "add_proposal"}, {ProposalTypeUpdate, "update_proposal"},
			{ProposalTypeRemove, "remove_proposal"}, {ProposalTypePSK, "pre_shared_key_proposal"},
			{ProposalTypeReInit, "re_init_proposal"}, {ProposalTypeExternalInit, "external_init_proposal"},
			{ProposalTypeGroupContextExtensions, "group_context_extensions_proposal"},
		} {
			c.proposals = append(c.proposals, append([]byte{byte(p.t >> 8), byte(p.t)}, v[p.name]...))
		}
	}
	for _, entries := range vectorEncodings(t) {
		for _, fields := range entries {
			for _, f := range fields {
				var probe MLSMessage
				switch {
				case probe.UnmarshalBinary(f.data) == nil:
					c.messages = append(c.messages, f.data)
				case (&RatchetTree{}).UnmarshalBinary(f.data) == nil:
					c.trees = append(c.trees, f.data)
				case (&UpdatePath{}).UnmarshalBinary(f.data) == nil:
					c.updatePaths = append(c.updatePaths, f.data)
				case (&AuthenticatedContent{}).UnmarshalBinary(f.data) == nil:
					c.authenticatedContents = append(c.authenticatedContents, f.data)
				case (&GroupContext{}).UnmarshalBinary(f.data) == nil:
					c.groupContexts = append(c.groupContexts, f.data)
				case (&Commit{}).UnmarshalBinary(f.data) == nil:
					c.commits = append(c.commits, f.data)
				case (&Proposal{}).UnmarshalBinary(f.data) == nil:
					c.proposals = append(c.proposals, f.data)
				}
			}
		}
	}
	return &c
}

// bodies returns the bodies of the MLSMessages in msgs of wire format wf.
func bodies(msgs [][]byte, wf WireFormat) [][]byte {
	var out [][]byte
	for _, m := range msgs {
		if len(m) >= 4 && WireFormat(m[2])<<8|WireFormat(m[3]) == wf {
			out = append(out, m[4:])
		}
	}
	return out
}

// fuzzRoundTrip checks that whatever decodes as T re-encodes to exactly the
// input (no malleability: one value, one encoding).
func fuzzRoundTrip[T any, P interface {
	*T
	codecValue
}](f *testing.F, seeds [][]byte) {
	if len(seeds) == 0 {
		f.Fatal("no seeds")
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := P(new(T))
		if v.UnmarshalBinary(data) != nil {
			return
		}
		out, err := v.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded value does not re-encode: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, data)
		}
	})
}

func FuzzMLSMessage(f *testing.F) {
	fuzzRoundTrip[MLSMessage](f, loadSeeds(f).messages)
}

func FuzzKeyPackage(f *testing.F) {
	fuzzRoundTrip[KeyPackage](f, bodies(loadSeeds(f).messages, WireFormatKeyPackage))
}

func FuzzWelcome(f *testing.F) {
	fuzzRoundTrip[Welcome](f, bodies(loadSeeds(f).messages, WireFormatWelcome))
}

func FuzzGroupInfo(f *testing.F) {
	fuzzRoundTrip[GroupInfo](f, bodies(loadSeeds(f).messages, WireFormatGroupInfo))
}

func FuzzRatchetTree(f *testing.F) {
	fuzzRoundTrip[RatchetTree](f, loadSeeds(f).trees)
}

func FuzzCommit(f *testing.F) {
	fuzzRoundTrip[Commit](f, loadSeeds(f).commits)
}

func FuzzProposal(f *testing.F) {
	fuzzRoundTrip[Proposal](f, loadSeeds(f).proposals)
}

func FuzzGroupSecrets(f *testing.F) {
	fuzzRoundTrip[GroupSecrets](f, loadSeeds(f).groupSecrets)
}

func FuzzLeafNode(f *testing.F) {
	fuzzRoundTrip[LeafNode](f, loadSeeds(f).leafNodes)
}

func FuzzUpdatePath(f *testing.F) {
	fuzzRoundTrip[UpdatePath](f, loadSeeds(f).updatePaths)
}

func FuzzAuthenticatedContent(f *testing.F) {
	fuzzRoundTrip[AuthenticatedContent](f, loadSeeds(f).authenticatedContents)
}

func FuzzGroupContext(f *testing.F) {
	fuzzRoundTrip[GroupContext](f, loadSeeds(f).groupContexts)
}

// FuzzPrivateMessageContent checks the decrypted-content decoder for each
// content type: whatever decodes re-encodes to the same bytes, padding
// included.
func FuzzPrivateMessageContent(f *testing.F) {
	seeds := [][]byte{
		{0x03, 'h', 'i', '!', 0x00, 0x00, 0x00, 0x00},          // application, empty signature, padding 3
		{0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0x01, 0xaa},       // proposal Remove(7), signature aa
		{0x00, 0x00, 0x02, 0xab, 0xcd, 0x02, 0x01, 0x02, 0x00}, // commit, sig abcd, tag 0102, padding 1
		{0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00}, // a little of everything
	}
	for _, s := range seeds {
		for ct := ContentTypeApplication; ct <= ContentTypeCommit; ct++ {
			f.Add(uint8(ct), s)
		}
	}
	f.Fuzz(func(t *testing.T, ct uint8, data []byte) {
		var c PrivateMessageContent
		if c.UnmarshalContent(data, ContentType(ct)) != nil {
			return
		}
		out, err := c.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded content does not re-encode: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, data)
		}
	})
}
