package agent

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// validShortInvitation is a short invitation whose fields all pass
// parseShortInvitation's checks.
func validShortInvitation() *shortInvitation {
	s := &shortInvitation{Expires: time.Unix(1_900_000_000, 0), Relay: testQueue(false).Relay,
		RelayRecipientKey: bytes.Repeat([]byte{9}, 32), AuthKey: bytes.Repeat([]byte{5}, 32),
		DeliveryKey: bytes.Repeat([]byte{6}, 32), DataKey: make([]byte, 32)}
	s.RecipientID[0] = 3
	return s
}

// FuzzInviteLink fuzzes the text a user pastes: parseAnyLink, the parser
// of full and short parley://invite#… links.
//
// A pasted link legitimately has several spellings (surrounding
// whitespace; encoding/base64 skips CR and LF inside the payload, which a
// line-wrapping mail client inserts), so the property is not "re-encodes
// to the same text" but, for the typed text x:
//
//	parse(format(parse(x))) == parse(x)
//
// and the canonical spelling format(parse(x)) is a fixed point. The
// binary payloads behind the link are canonical and are held to the
// byte-exact property by FuzzInvitation and FuzzShortInvitation.
func FuzzInviteLink(f *testing.F) {
	full := validInvitation().link()
	short := validShortInvitation().link()
	for _, s := range []string{
		full, short,
		"  " + short + "\n",
		short[:len(InvitePrefix)+10] + "\r\n" + short[len(InvitePrefix)+10:],
		InvitePrefix, InvitePrefix + "AA", "parley://AAAA@127.0.0.1:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, x string) {
		inv, sh, err := parseAnyLink(x)
		if err != nil {
			return
		}
		if (inv == nil) == (sh == nil) {
			t.Fatalf("parseAnyLink(%q): want exactly one of full and short", x)
		}
		var canon string
		var payload []byte
		if inv != nil {
			canon, payload = inv.link(), inv.marshal()
		} else {
			canon, payload = sh.link(), sh.marshal()
		}
		inv2, sh2, err := parseAnyLink(canon)
		if errors.Is(err, ErrInvitationExpired) {
			return // the clock passed the expiry between the two parses
		}
		if err != nil {
			t.Fatalf("canonical link %q of %q does not parse: %v", canon, x, err)
		}
		var payload2 []byte
		switch {
		case inv != nil && inv2 != nil:
			payload2 = inv2.marshal()
			if inv2.link() != canon {
				t.Fatalf("canonical link is not a fixed point: %q vs %q", inv2.link(), canon)
			}
		case sh != nil && sh2 != nil:
			payload2 = sh2.marshal()
			if sh2.link() != canon {
				t.Fatalf("canonical link is not a fixed point: %q vs %q", sh2.link(), canon)
			}
		default:
			t.Fatalf("%q parsed as another kind of invitation once re-formatted", x)
		}
		if !bytes.Equal(payload, payload2) {
			t.Fatalf("parse(format(parse(%q))) differs from parse(%q)", x, x)
		}
		if !strings.HasPrefix(canon, InvitePrefix) {
			t.Fatalf("canonical link %q lacks %s", canon, InvitePrefix)
		}
	})
}

// TestInviteLinkSeedsParse: FuzzInviteLink's seeds reach the code they are
// meant to cover (a seed that fails to parse exercises only the error path).
func TestInviteLinkSeedsParse(t *testing.T) {
	short := validShortInvitation().link()
	for _, s := range []string{
		validInvitation().link(), short, "  " + short + "\n",
		short[:len(InvitePrefix)+10] + "\r\n" + short[len(InvitePrefix)+10:],
	} {
		if _, _, err := parseAnyLink(s); err != nil {
			t.Errorf("parseAnyLink(%.40q…): %v", s, err)
		}
	}
}
