package agent

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

func testQueue(auth bool) sendQueue {
	q := sendQueue{Relay: "parley://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8@127.0.0.1:1", RelayKey: bytes.Repeat([]byte{9}, 32)}
	q.SenderID[0] = 7
	if auth {
		q.AuthKey = bytes.Repeat([]byte{5}, 32)
	}
	return q
}

func validInvitation() *invitation {
	return &invitation{Expires: time.Unix(1_900_000_000, 0), Key: []byte{1, 2, 3}, Queues: []sendQueue{testQueue(false), testQueue(false)}, Bundle: []byte{4, 5}}
}

func TestInvitationLinkRoundTrip(t *testing.T) {
	inv := validInvitation()
	link := inv.link()
	if !strings.HasPrefix(link, InvitePrefix) {
		t.Fatalf("link %q", link)
	}
	got, err := parseLink(link)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.marshal(), inv.marshal()) {
		t.Fatal("round trip differs")
	}
}

func TestInvitationNotConfusedWithRelayAddress(t *testing.T) {
	for _, s := range []string{
		"parley://abc@127.0.0.1:443",
		"parley://invite@127.0.0.1:443",
		"https://example.org/#x",
		InvitePrefix + "!!!",
		InvitePrefix,
	} {
		if _, err := parseLink(s); err == nil {
			t.Errorf("parseLink(%q) succeeded", s)
		}
	}
	if err := checkRelayAddress(validInvitation().link()); err == nil {
		t.Error("an invitation link was accepted as a relay address")
	}
	// An invitation must not carry sender keys (they come from the accepter).
	inv := validInvitation()
	inv.Queues[0] = testQueue(true)
	if _, err := parseInvitation(inv.marshal()); err == nil {
		t.Error("invitation with a sender auth key accepted")
	}
}

func TestMessageRoundTrips(t *testing.T) {
	h := &hello{Name: "Alice", Queues: []sendQueue{testQueue(true), testQueue(true)}, SenderKeys: [][]byte{bytes.Repeat([]byte{9}, 32)}}
	h2, err := parseHello(h.marshal())
	if err != nil || !bytes.Equal(h2.marshal(), h.marshal()) {
		t.Fatalf("hello round trip: %v", err)
	}
	m := &message{Kind: kindText, Sent: 42, Body: []byte("hi")}
	m.ID[0] = 1
	m2, err := parseMessage(m.marshal())
	if err != nil || !bytes.Equal(m2.marshal(), m.marshal()) {
		t.Fatalf("message round trip: %v", err)
	}
	r := &receipt{Status: receiptRead, IDs: [][msgIDSize]byte{{1}, {2}}}
	r2, err := parseReceipt(r.marshal())
	if err != nil || !bytes.Equal(r2.marshal(), r.marshal()) {
		t.Fatalf("receipt round trip: %v", err)
	}
	e := &envelope{Type: envRatchet, Body: []byte{1}}
	e2, err := parseEnvelope(e.marshal())
	if err != nil || !bytes.Equal(e2.marshal(), e.marshal()) {
		t.Fatalf("envelope round trip: %v", err)
	}
	if d, err := parseTimer(marshalTimer(90 * time.Second)); err != nil || d != 90*time.Second {
		t.Fatalf("timer round trip: %v %v", d, err)
	}
	// Unknown versions and kinds are refused.
	bad := m.marshal()
	bad[0] = 2
	if _, err := parseMessage(bad); err == nil {
		t.Error("message version 2 accepted")
	}
	bad = e.marshal()
	bad[1] = 9
	if _, err := parseEnvelope(bad); err == nil {
		t.Error("envelope type 9 accepted")
	}
}

// Fuzz targets: whatever decodes re-encodes to the same bytes.

func FuzzInvitation(f *testing.F) {
	f.Add(validInvitation().marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := parseInvitation(data)
		if err != nil {
			return
		}
		if !bytes.Equal(inv.marshal(), data) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzEnvelope(f *testing.F) {
	f.Add((&envelope{Type: envHandshake, Body: []byte("x")}).marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseEnvelope(data)
		if err != nil {
			return
		}
		if !bytes.Equal(e.marshal(), data) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzMessage(f *testing.F) {
	f.Add((&message{Kind: kindHello, Body: (&hello{Name: "n", Queues: []sendQueue{testQueue(true)}}).marshal()}).marshal())
	f.Add((&message{Kind: kindReceipt, Body: (&receipt{Status: 1, IDs: [][msgIDSize]byte{{1}}}).marshal()}).marshal())
	f.Add((&message{Kind: kindTimer, Body: marshalTimer(time.Minute)}).marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMessage(data)
		if err != nil {
			return
		}
		if !bytes.Equal(m.marshal(), data) {
			t.Fatalf("message re-encoding differs")
		}
		// The bodies' decoders, fed the same bytes.
		if h, err := parseHello(m.Body); err == nil && !bytes.Equal(h.marshal(), m.Body) {
			t.Fatalf("hello re-encoding differs")
		}
		if r, err := parseReceipt(m.Body); err == nil && !bytes.Equal(r.marshal(), m.Body) {
			t.Fatalf("receipt re-encoding differs")
		}
		if d, err := parseTimer(m.Body); err == nil && !bytes.Equal(marshalTimer(d), m.Body) {
			t.Fatalf("timer re-encoding differs")
		}
	})
}

func FuzzHello(f *testing.F) {
	f.Add((&hello{Name: "n", Queues: []sendQueue{testQueue(true)}, SenderKeys: [][]byte{bytes.Repeat([]byte{9}, 32)}}).marshal())
	var b cryptobyte.Builder
	b.AddUint8(0)
	f.Add(b.BytesOrPanic())
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHello(data)
		if err != nil {
			return
		}
		if !bytes.Equal(h.marshal(), data) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func TestQueueCountBounded(t *testing.T) {
	inv := validInvitation()
	for len(inv.Queues) < MaxQueues {
		inv.Queues = append(inv.Queues, testQueue(false))
	}
	if _, err := parseInvitation(inv.marshal()); err != nil {
		t.Fatalf("%d queues refused: %v", MaxQueues, err)
	}
	inv.Queues = append(inv.Queues, testQueue(false))
	if _, err := parseInvitation(inv.marshal()); err == nil {
		t.Fatalf("%d queues accepted", MaxQueues+1)
	}
	h := &hello{Queues: inv.Queues}
	if _, err := parseHello(h.marshal()); err == nil {
		t.Fatalf("hello with %d queues accepted", MaxQueues+1)
	}
	bad := validInvitation()
	bad.Queues[0].Relay = "parley://no-fingerprint"
	if _, err := parseInvitation(bad.marshal()); err == nil {
		t.Fatal("queue on a malformed relay address accepted")
	}
}

// TestCheckRelayAddress: only a well-formed relay address is accepted into
// the relay list (a 32-byte base64url fingerprint and a host:port).
func TestCheckRelayAddress(t *testing.T) {
	fp := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" // 32 bytes
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"parley://" + fp + "@127.0.0.1:5223", true},
		{"parley://" + fp + "@[::1]:5223", true},
		{"parley://abc@127.0.0.1:1", false},             // fingerprint too short
		{"parley://" + fp + "A@127.0.0.1:5223", false},  // not 32 bytes
		{"parley://" + fp + "@127.0.0.1", false},        // no port
		{"parley://" + fp + "=@127.0.0.1:5223", false},  // padded
		{"https://" + fp + "@127.0.0.1:5223", false},    // wrong scheme
		{"parley://" + fp + "@127.0.0.1:5223/x", false}, // a path
		{"parley://invite#" + fp, false},                // an invitation
	} {
		err := checkRelayAddress(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("checkRelayAddress(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}
