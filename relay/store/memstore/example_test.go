package memstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

func Example() {
	s := memstore.New(memstore.Options{MaxBytes: 64 << 20})
	defer s.Close()
	ctx := context.Background()
	q := store.Queue{RecipientID: store.ID{1}, SenderID: store.ID{2}}
	if err := s.CreateQueue(ctx, q); err != nil {
		fmt.Println(err)
		return
	}
	for _, msg := range []string{"first", "second"} {
		if _, err := s.Append(ctx, q.RecipientID, []byte(msg), time.Now(), 1); err != nil {
			fmt.Println(msg+":", err)
		}
	}
	b, err := s.First(ctx, q.RecipientID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("seq %d: %s\n", b.Seq, b.Data)
	// Output:
	// second: store: queue is full
	// seq 1: first
}
