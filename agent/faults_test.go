package agent

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-messenger/parley/internal/leakcheck"
)

// TestOneRelayDownStillDelivered stops one of the two relays of a
// connection: messages keep arriving both ways through the other.
func TestOneRelayDownStillDelivered(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()
	bobsAlice, alicesBob := connect(t, ctx, alice, bob)

	rs[0].stop()
	m, err := alice.Send(ctx, bobsAlice, "through the survivor")
	if err != nil {
		t.Fatal(err)
	}
	bob.waitMessage(ctx, "through the survivor")
	alice.waitStatus(ctx, m.ID, StatusDelivered)
	_, down := alice.waitEventFrom(ctx, "relay down", 0, func(ev Event) bool {
		return ev.Type == EventRelayStatus && ev.Relay == rs[0].addr && !ev.Up
	})
	if infos, err := alice.Relays(); err != nil || len(infos) != 2 {
		t.Fatalf("Relays = %v, %v", infos, err)
	} else {
		for _, ri := range infos {
			if ri.Up != (ri.Address == rs[1].addr) {
				t.Errorf("relay %s up = %v", ri.Address, ri.Up)
			}
		}
	}
	if _, err := bob.Send(ctx, alicesBob, "and back"); err != nil {
		t.Fatal(err)
	}
	alice.waitMessage(ctx, "and back")

	// The stopped relay returns: the copies it receives late are dropped
	// before decryption, so nothing is shown twice.
	rs[0].start()
	if _, err := alice.Send(ctx, bobsAlice, "both again"); err != nil {
		t.Fatal(err)
	}
	bob.waitMessage(ctx, "both again")
	alice.waitEventFrom(ctx, "relay up again", down, func(ev Event) bool {
		return ev.Type == EventRelayStatus && ev.Relay == rs[0].addr && ev.Up
	})
	if err := alice.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitOutboxEmpty(t, alice)
	for _, text := range []string{"through the survivor", "both again"} {
		if n := bob.countMessages(text); n != 1 {
			t.Errorf("%q shown %d times, want 1", text, n)
		}
	}
}

// waitOutboxEmpty waits until every envelope reached every queue.
func waitOutboxEmpty(t *testing.T, a *testAgent) {
	t.Helper()
	ctx := testContext(t)
	for {
		n := 0
		a.store.View(func(tx *localstoreTx) error {
			return tx.List(tblOutbox, func(_, _ []byte) error { n++; return nil })
		})
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: outbox still holds %d entries", a.name, n)
		case <-a.notify:
		case <-afterShort():
		}
	}
}

// TestBothRelaysDownOutboxDrains writes messages while every relay is
// down: they wait in the outbox and are sent when the relays return.
func TestBothRelaysDownOutboxDrains(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()
	bobsAlice, _ := connect(t, ctx, alice, bob)

	rs[0].stop()
	rs[1].stop()
	var sent []Message
	for i := range 3 {
		m, err := alice.Send(ctx, bobsAlice, fmt.Sprintf("offline %d", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	// Nothing can have left: both relays are down.
	msgs, _ := alice.Messages(bobsAlice)
	for _, m := range msgs {
		if m.Status != StatusPending {
			t.Errorf("%q has status %v while every relay is down", m.Text, m.Status)
		}
	}
	// The outbox survives a restart of the sender too.
	alice.close()
	alice = openAgent(t, alice.home, "alice")
	defer alice.close()

	rs[0].start()
	rs[1].start()
	for i, m := range sent {
		bob.waitMessage(ctx, fmt.Sprintf("offline %d", i))
		alice.waitStatus(ctx, m.ID, StatusDelivered)
	}
	got, _ := bob.Messages(func() ContactID { c, _ := bob.Contacts(); return c[0].ID }())
	for i, m := range got {
		if want := fmt.Sprintf("offline %d", i); m.Text != want {
			t.Errorf("bob's message %d = %q, want %q (in order)", i, m.Text, want)
		}
	}
}

// TestRestartMidConversation closes the receiver while messages are in
// flight and reopens it: every message arrives exactly once.
func TestRestartMidConversation(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	bobsAlice, alicesBob := connect(t, ctx, alice, bob)

	const n = 10
	for i := range n {
		if _, err := alice.Send(ctx, bobsAlice, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			bob.close() // mid-stream
		}
	}
	if err := alice.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	bob = openAgent(t, bob.home, "bob")
	defer bob.close()
	if err := bob.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		text := fmt.Sprintf("m%d", i)
		waitStored(t, bob, alicesBob, text)
	}
	msgs, err := bob.Messages(alicesBob)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, m := range msgs {
		count[m.Text]++
	}
	for i := range n {
		if c := count[fmt.Sprintf("m%d", i)]; c != 1 {
			t.Errorf("m%d stored %d times, want 1", i, c)
		}
	}
	if len(msgs) != n {
		t.Errorf("bob has %d messages, want %d", len(msgs), n)
	}
	// And the conversation goes on.
	if _, err := bob.Send(ctx, alicesBob, "still here"); err != nil {
		t.Fatal(err)
	}
	alice.waitMessage(ctx, "still here")
}

func waitStored(t *testing.T, a *testAgent, c ContactID, text string) {
	t.Helper()
	ctx := testContext(t)
	for {
		msgs, err := a.Messages(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Text == text {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %q never stored", a.name, text)
		case <-a.notify:
		case <-afterShort():
		}
	}
}

// TestWhatRelaySees captures everything both relays were given to store
// (blocks, queue keys) during a conversation and checks that no message
// text, display name, identity key or invitation secret is in it; then
// checks the profiles' files the same way.
func TestWhatRelaySees(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "Alice Liddell", rs...), "Alice Liddell")
	bob := openAgent(t, newProfile(t, "Bob Dylan", rs...), "Bob Dylan")

	link, err := bob.Invite(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bobInv := readInvite(t, bob)
	if bobInv == nil {
		t.Fatal("no stored invitation")
	}
	c, err := alice.Accept(ctx, link, "bob")
	if err != nil {
		t.Fatal(err)
	}
	added := bob.waitEvent(ctx, "contact", func(ev Event) bool { return ev.Type == EventContactAdded })
	alice.waitEvent(ctx, "connected", func(ev Event) bool { return ev.Type == EventContactUpdated && ev.Contact.Connected })
	texts := []string{"the eagle lands at midnight", "bring the blue folder"}
	m, err := alice.Send(ctx, c.ID, texts[0])
	if err != nil {
		t.Fatal(err)
	}
	bob.waitMessage(ctx, texts[0])
	if _, err := bob.Send(ctx, added.Contact.ID, texts[1]); err != nil {
		t.Fatal(err)
	}
	alice.waitMessage(ctx, texts[1])
	alice.waitStatus(ctx, m.ID, StatusDelivered)

	inv, err := parseLink(link)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"alice's signing key":   alice.Identity().SigningKey().Bytes(),
		"alice's agreement key": alice.Identity().AgreementKey().Bytes(),
		"bob's signing key":     bob.Identity().SigningKey().Bytes(),
		"bob's agreement key":   bob.Identity().AgreementKey().Bytes(),
		"invitation bundle":     inv.Bundle[:64],
		"invitation key":        inv.Key[:32],
		"invitation payload":    inv.marshal()[:48],
		"invitation link":       []byte(link[len(InvitePrefix):][:40]),
		"alice's display name":  []byte("Alice Liddell"),
		"bob's display name":    []byte("Bob Dylan"),
		"message 1":             []byte(texts[0]),
		"message 2":             []byte(texts[1]),
	}
	secrets["invitation private key"] = bobInv[:32]
	aliceSecret, err := alice.id.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	secrets["alice's private identity key"] = aliceSecret[1:33]
	secrets["alice's private agreement key"] = aliceSecret[33:]
	for i, r := range rs {
		seen := r.store.all()
		if len(seen) < 1000 {
			t.Fatalf("relay %d recorded only %d bytes: the capture is broken", i, len(seen))
		}
		for what, s := range secrets {
			if bytes.Contains(seen, s) {
				t.Errorf("relay %d saw %s", i, what)
			}
			if bytes.Contains(seen, []byte(base64.RawURLEncoding.EncodeToString(s))) {
				t.Errorf("relay %d saw %s (base64url)", i, what)
			}
		}
	}
	// Positive control: the capture does contain what senders gave it —
	// the sender IDs from the invitation are the queue IDs it stores.
	if !bytes.Contains(rs[0].store.all(), inv.Queues[0].SenderID[:]) && !bytes.Contains(rs[1].store.all(), inv.Queues[0].SenderID[:]) {
		t.Fatal("capture does not hold the invitation's queue IDs: it records nothing useful")
	}

	alice.close()
	bob.close()
	// At rest, in the profiles (database, WAL, journal): no text, no name.
	for _, home := range []string{alice.home, bob.home} {
		files, _ := filepath.Glob(filepath.Join(home, "*"))
		if len(files) == 0 {
			t.Fatal("no profile files")
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, what := range []string{"message 1", "message 2", "alice's display name", "bob's display name",
				"alice's signing key", "bob's signing key", "alice's private identity key", "alice's private agreement key"} {
				if bytes.Contains(data, secrets[what]) {
					t.Errorf("%s found in %s", what, strings.TrimPrefix(f, home))
				}
			}
		}
	}
}

// readInvite returns the HPKE private key of bob's last invitation, if
// it is still stored (it is deleted once used).
func readInvite(t *testing.T, a *testAgent) []byte {
	var key []byte
	a.store.View(func(tx *localstoreTx) error {
		return tx.List(tblInvites, func(_, v []byte) error {
			var r inviteRecord
			if err := unmarshalJSON(v, &r); err == nil {
				key = r.HPKEKey
			}
			return nil
		})
	})
	return key
}

// TestFlushWakesWhenRelayReturns: Flush (what a command-line send waits
// for) waits while every relay is down and returns once a relay has taken
// the envelope. It does not poll: it is woken by the outbox pass that
// sent it, so a missed wake-up leaves it waiting until ctx ends. The
// receiver is closed, so no incoming block can wake it instead.
func TestFlushWakesWhenRelayReturns(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	bobsAlice, _ := connect(t, ctx, alice, bob)
	bob.close()
	if err := alice.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	rs[0].stop()
	rs[1].stop()
	if _, err := alice.Send(ctx, bobsAlice, "while every relay is down"); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- alice.Flush(ctx) }()
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned %v while every relay was down", err)
	case <-afterShort():
	}
	rs[0].start()
	rs[1].start()
	select {
	case err := <-flushed:
		if err != nil {
			t.Fatalf("Flush: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Flush did not return after the relays came back")
	}
}
