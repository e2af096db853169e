package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/parley-messenger/parley/relay"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// Example runs a relay on loopback; a recipient creates a queue and hands
// its sender side to a sender, who sends one block that arrives on the
// recipient's subscription.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A relay, as `parley relay` runs one.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	srv, err := relay.NewServer(relay.Config{Key: key, Store: memstore.New(memstore.Options{})})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	serveCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(serveCtx, ln) })
	defer wg.Wait()
	defer stop()
	addr := srv.Address(ln.Addr().String()) // parley://<fingerprint>@127.0.0.1:port

	// The recipient creates a queue and subscribes to it.
	alice, err := client.Dial(ctx, addr, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close()
	q, err := alice.Create(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := alice.Subscribe(ctx, q); err != nil {
		fmt.Println(err)
		return
	}

	// The sender gets q.SenderQueue() out of band, adds its own key, and
	// the recipient secures the queue with the public half.
	sq := q.SenderQueue()
	sq.AuthKey, _ = client.GenerateKey()
	if err := alice.Secure(ctx, q, sq.AuthKey.PublicKey()); err != nil {
		fmt.Println(err)
		return
	}
	bob, err := client.Dial(ctx, addr, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close()
	if err := bob.Send(ctx, &sq, []byte("hello, Alice")); err != nil {
		fmt.Println(err)
		return
	}

	d := <-alice.Deliveries()
	fmt.Printf("%s\n", d.Payload)
	if err := alice.Ack(ctx, q, d.Seq); err != nil {
		fmt.Println(err)
	}
	// Output: hello, Alice
}
