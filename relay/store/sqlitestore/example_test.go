package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/sqlitestore"
)

func Example() {
	dir, err := os.MkdirTemp("", "relay")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	s, err := sqlitestore.Open(filepath.Join(dir, "relay.db"), sqlitestore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	ctx := context.Background()

	// The relay makes both IDs random; fixed here for the example.
	q := store.Queue{RecipientID: store.ID{1}, SenderID: store.ID{2}, RecipientKey: []byte("recipient public key")}
	if err := s.CreateQueue(ctx, q); err != nil {
		fmt.Println(err)
		return
	}
	// A sender's block: durable when Append returns.
	seq, err := s.Append(ctx, q.RecipientID, []byte("padded, encrypted block"), time.Now(), 128)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The recipient reads the oldest block and acknowledges it.
	b, err := s.First(ctx, q.RecipientID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("seq %d: %s\n", b.Seq, b.Data)
	if err := s.Ack(ctx, q.RecipientID, seq); err != nil {
		fmt.Println(err)
		return
	}
	_, err = s.First(ctx, q.RecipientID)
	fmt.Println(err)
	// Output:
	// seq 1: padded, encrypted block
	// store: no block waiting
}
