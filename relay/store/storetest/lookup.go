package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
)

// testLookupsSeeChanges: a lookup that begins after SecureQueue or
// DeleteQueue returned sees the change, while other lookups of the same
// queue keep running: a store that caches queue records must never serve
// (or keep) the record from before a change that has returned.
func testLookupsSeeChanges(t *testing.T, s store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 { // readers that keep the record cached and racing
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = s.QueueBySender(ctx, q.SenderID)
				_, _ = s.QueueByRecipient(ctx, q.RecipientID)
			}
		})
	}
	for i := range 50 {
		key := fmt.Appendf(nil, "sender key %d", i)
		if err := s.SecureQueue(ctx, q.RecipientID, key); err != nil {
			t.Fatal(err)
		}
		for _, bySender := range []bool{false, true} {
			got, err := s.QueueByRecipient(ctx, q.RecipientID)
			if bySender {
				got, err = s.QueueBySender(ctx, q.SenderID)
			}
			if err != nil || !bytes.Equal(got.SenderKey, key) {
				close(stop)
				wg.Wait()
				t.Fatalf("round %d (by sender %v): sender key %q, %v after SecureQueue(%q) returned", i, bySender, got.SenderKey, err, key)
			}
		}
	}
	if err := s.DeleteQueue(ctx, q.RecipientID); err != nil {
		t.Fatal(err)
	}
	_, errR := s.QueueByRecipient(ctx, q.RecipientID)
	_, errS := s.QueueBySender(ctx, q.SenderID)
	close(stop)
	wg.Wait()
	if !errors.Is(errR, store.ErrNotFound) || !errors.Is(errS, store.ErrNotFound) {
		t.Fatalf("after DeleteQueue: lookups gave %v, %v; want ErrNotFound", errR, errS)
	}
}
