package relay

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/client"
)

func TestSendReceive(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := startRelay(t, Limits{})
	defer r.stop()
	alice := dial(t, ctx, r.addr)
	defer alice.Close()
	bob := dial(t, ctx, r.addr)
	defer bob.Close()

	q, err := alice.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sq := q.SenderQueue()
	if err := bob.Send(ctx, &sq, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	bk, _ := client.GenerateKey()
	if err := alice.Secure(ctx, q, bk.PublicKey()); err != nil {
		t.Fatal(err)
	}
	sq.AuthKey = bk
	if err := bob.Send(ctx, &sq, []byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := alice.Subscribe(ctx, q); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hello", "second", "third"} {
		if want == "third" {
			if err := bob.Send(ctx, &sq, []byte("third")); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case d := <-alice.Deliveries():
			if !bytes.Equal(d.Payload, []byte(want)) {
				t.Fatalf("got %q want %q", d.Payload, want)
			}
			if err := alice.Ack(ctx, q, d.Seq); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("timeout waiting for", want)
		}
	}
}
