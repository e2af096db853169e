package agent

import (
	"context"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestInviteAcceptMessagesReceipts(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	r1, r2 := rs[0], rs[1]
	alice := openAgent(t, newProfile(t, "alice", r1, r2), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", r1, r2), "bob")
	defer bob.close()

	bobsAlice, alicesBob := connect(t, ctx, alice, bob)
	// Display names travel end to end.
	if c, _ := alice.Contact(bobsAlice); c.DisplayName != "bob" || c.Alias != "bob" {
		t.Errorf("alice's contact = %+v, want display name bob", c)
	}
	if c, _ := bob.Contact(alicesBob); c.DisplayName != "alice" {
		t.Errorf("bob's contact display name = %q, want alice", c.DisplayName)
	}

	m1, err := bob.Send(ctx, alicesBob, "hello alice")
	if err != nil {
		t.Fatal(err)
	}
	got := alice.waitMessage(ctx, "hello alice")
	if got.Contact != bobsAlice || got.Outgoing || got.ID != m1.ID {
		t.Errorf("alice got %+v", got)
	}
	bob.waitStatus(ctx, m1.ID, StatusDelivered)

	m2, err := alice.Send(ctx, bobsAlice, "hello bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.waitMessage(ctx, "hello bob")
	alice.waitStatus(ctx, m2.ID, StatusDelivered)

	// Read receipts are on by default.
	if err := alice.MarkRead(bobsAlice); err != nil {
		t.Fatal(err)
	}
	bob.waitStatus(ctx, m1.ID, StatusRead)

	// Ordered display per conversation.
	msgs, err := alice.Messages(bobsAlice)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Text != "hello alice" || msgs[1].Text != "hello bob" || msgs[0].Order >= msgs[1].Order {
		t.Errorf("alice's conversation = %+v", msgs)
	}
	// Two relays: each message reached both, and was shown once.
	// A new display name reaches contacts.
	if err := bob.UpdateSettings(func(s *Settings) { s.DisplayName = "Robert" }); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent(ctx, "new name", func(ev Event) bool {
		return ev.Type == EventContactUpdated && ev.Contact.DisplayName == "Robert"
	})
	if n := alice.countMessages("hello alice"); n != 1 {
		t.Errorf("message shown %d times", n)
	}
	if err := alice.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bob.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitOutboxEmpty(t, alice)
	waitOutboxEmpty(t, bob)
	if _, err := bob.Send(ctx, alicesBob, "last"); err != nil {
		t.Fatal(err)
	}
	alice.waitMessage(ctx, "last")
	waitOutboxEmpty(t, bob)
	alice.assertNoErrors()
	bob.assertNoErrors()
}

func TestReadReceiptsOffAndTyping(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	r1, r2 := rs[0], rs[1]
	alice := openAgent(t, newProfile(t, "alice", r1, r2), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", r1, r2), "bob")
	defer bob.close()
	bobsAlice, alicesBob := connect(t, ctx, alice, bob)

	if err := alice.UpdateSettings(func(s *Settings) { s.ReadReceipts = false; s.TypingIndicators = true }); err != nil {
		t.Fatal(err)
	}
	m, err := bob.Send(ctx, alicesBob, "one")
	if err != nil {
		t.Fatal(err)
	}
	alice.waitMessage(ctx, "one")
	bob.waitStatus(ctx, m.ID, StatusDelivered)
	if err := alice.MarkRead(bobsAlice); err != nil {
		t.Fatal(err)
	}
	// Typing is off by default: bob's SetTyping sends nothing.
	if err := bob.SetTyping(alicesBob, true); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetTyping(bobsAlice, true); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent(ctx, "typing", func(ev Event) bool { return ev.Type == EventTyping && ev.Typing })
	// Everything alice sent after MarkRead has arrived (typing came after
	// it), so a read receipt would have arrived too.
	bob.mu.Lock()
	for _, ev := range bob.events {
		if ev.Type == EventStatus && ev.Message.Status == StatusRead {
			t.Error("read receipt sent although read receipts are off")
		}
	}
	bob.mu.Unlock()
	// Flush bob's outbox, then check alice saw no typing from bob.
	if _, err := bob.Send(ctx, alicesBob, "after typing"); err != nil {
		t.Fatal(err)
	}
	alice.waitMessage(ctx, "after typing")
	alice.mu.Lock()
	for _, ev := range alice.events {
		if ev.Type == EventTyping {
			t.Error("typing indicator sent although it is off by default")
		}
	}
	alice.mu.Unlock()
}
