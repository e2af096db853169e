package agent

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/pqxdh"
	"github.com/parley-messenger/parley/ratchet"
	"github.com/parley-messenger/parley/relay/client"
)

const benchText = "a message of an ordinary length, about sixty bytes or so..."

func reportLatencies(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkConversation is one message from alice's Send to bob's
// EventMessage, through two in-process relays on loopback, one at a time
// (the receipt travels back meanwhile).
func BenchmarkConversation(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rs, stop := startRelays(b, 2)
	defer stop()
	alice := openAgent(b, newProfile(b, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(b, newProfile(b, "bob", rs...), "bob")
	defer bob.close()
	bobsAlice, _ := connect(b, ctx, alice, bob)
	got := make(chan struct{}, 1)
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	// Watch bob's recorder for new messages without rescanning it.
	seen := 0
	go func() {
		for {
			select {
			case <-bob.notify:
			case <-stopWatch:
				return
			}
			bob.mu.Lock()
			for _, ev := range bob.events[seen:] {
				if ev.Type == EventMessage {
					got <- struct{}{}
				}
			}
			seen = len(bob.events)
			bob.mu.Unlock()
		}
	}()
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := alice.Send(ctx, bobsAlice, benchText); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-ctx.Done():
			b.Fatal("timed out")
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

// BenchmarkRelayOnly is the baseline of the same run: one block from
// Send to the subscriber's delivery and ack, through one relay, with the
// relay client alone.
func BenchmarkRelayOnly(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rs, stop := startRelays(b, 1)
	defer stop()
	recv, err := client.Dial(ctx, rs[0].addr, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer recv.Close()
	send, err := client.Dial(ctx, rs[0].addr, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer send.Close()
	q, err := recv.Create(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := recv.Subscribe(ctx, q); err != nil {
		b.Fatal(err)
	}
	sq := q.SenderQueue()
	payload := make([]byte, 3000) // about a ratchet envelope's size
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := send.Send(ctx, &sq, payload); err != nil {
			b.Fatal(err)
		}
		d := <-recv.Deliveries()
		if err := recv.Ack(ctx, q, d.Seq); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

// BenchmarkCryptoOnly is the other baseline: one ratchet Encrypt and
// Decrypt of the agent message (with a reply every message, so every
// message takes a DH and KEM ratchet step, as a conversation does).
func BenchmarkCryptoOnly(b *testing.B) {
	aliceID, _ := identity.Generate()
	bobID, _ := identity.Generate()
	pk, _ := identity.NewPrekeyStore(bobID)
	bundle, _ := pk.NewBundle(true)
	in, err := pqxdh.Initiate(aliceID, bundle)
	if err != nil {
		b.Fatal(err)
	}
	as, err := ratchet.NewInitiator(in.SharedKey, in.AD, in.PeerRatchetKey, nil)
	if err != nil {
		b.Fatal(err)
	}
	first, _ := as.Encrypt([]byte("hello"))
	msg, _ := in.Message(first)
	res, err := pqxdh.Respond(bobID, pk, msg)
	if err != nil {
		b.Fatal(err)
	}
	bs, err := ratchet.NewResponder(res.SharedKey, res.AD, res.RatchetKey, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bs.Decrypt(res.FirstPayload); err != nil {
		b.Fatal(err)
	}
	m := message{Kind: kindText, Body: []byte(benchText)}
	rand.Read(m.ID[:])
	pt := m.marshal()
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		ct, err := as.Encrypt(pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bs.Decrypt(ct); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		as, bs = bs, as // the other side answers: a ratchet step each time
	}
	reportLatencies(b, lat)
}
