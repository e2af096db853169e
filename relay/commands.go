package relay

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"time"

	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
)

// dispatch runs one parsed command (docs/PROTOCOL.md "Relay protocol:
// commands"); false ends the connection.
func (c *conn) dispatch(f *wire.Frame, cmd *wire.Command) bool {
	switch cmd.Type {
	case wire.TypePing:
		return c.respond(responseFrame(f.CorrID, nil, &wire.Command{Type: wire.TypePong}))
	case wire.TypeCreate:
		return c.create(f, cmd)
	case wire.TypeSend:
		return c.send(f, cmd)
	}

	// Every other command concerns a queue by its recipient ID and is
	// authenticated by the recipient key.
	id, ok := entityID(f)
	if !ok {
		return c.fail(f, wire.CodeUnknownQueue)
	}
	// Cheapest checks before the store is consulted.
	if len(f.Authenticator) != wire.MACSize || f.CorrID <= c.lastCorr {
		return c.fail(f, wire.CodeAuth)
	}
	q, err := c.s.store.QueueByRecipient(c.ctx, id)
	if err != nil {
		return c.fail(f, codeOf(err))
	}
	if !c.authenticate(f, roleRecipient, id, q.RecipientKey) {
		return c.fail(f, wire.CodeAuth)
	}
	switch cmd.Type {
	case wire.TypeSecure:
		return c.secure(f, cmd, &q)
	case wire.TypeSubscribe:
		return c.subscribe(f, &q)
	case wire.TypeAck:
		return c.ack(f, cmd, &q)
	case wire.TypeGet:
		return c.get(f, &q)
	case wire.TypeDelete:
		return c.delete(f, &q)
	}
	return c.fail(f, wire.CodeUnknownCommand)
}

func entityID(f *wire.Frame) (store.ID, bool) {
	var id store.ID
	if len(f.EntityID) != store.IDSize {
		return id, false
	}
	copy(id[:], f.EntityID)
	return id, true
}

// validKey reports whether k is an X25519 public key the relay can use:
// a DH with it must not give the all-zero output (RFC 7748 §6.1).
func validKey(k []byte) bool {
	pub, err := ecdh.X25519().NewPublicKey(k)
	if err != nil {
		return false
	}
	probe, err := ecdh.X25519().NewPrivateKey(make([]byte, 32))
	if err != nil {
		return false
	}
	_, err = probe.ECDH(pub)
	return err == nil
}

// create makes a queue with two fresh random IDs (crypto/rand). It carries
// no authenticator: there is no queue key yet to authenticate with, and a
// queue created with a key nobody holds is of use to nobody.
func (c *conn) create(f *wire.Frame, cmd *wire.Command) bool {
	if len(f.EntityID) != 0 || len(f.Authenticator) != 0 {
		return c.fail(f, wire.CodeMalformed)
	}
	if !validKey(cmd.RecipientKey[:]) || !validKey(cmd.DeliveryKey[:]) {
		return c.fail(f, wire.CodeMalformed)
	}
	q := store.Queue{
		RecipientKey: cmd.RecipientKey[:],
		DeliveryKey:  cmd.DeliveryKey[:],
		Created:      time.Now().Truncate(time.Hour), // coarse: no timing trail
	}
	var err error
	for range 3 {
		rand.Read(q.RecipientID[:])
		rand.Read(q.SenderID[:])
		if err = c.s.store.CreateQueue(c.ctx, q); !errors.Is(err, store.ErrExists) {
			break
		}
	}
	if err != nil {
		c.s.log.Error("relay create failed", "err", err)
		return c.fail(f, wire.CodeInternal)
	}
	rk, err1 := c.s.qkeys.private(roleRecipient, q.RecipientID)
	sk, err2 := c.s.qkeys.private(roleSender, q.SenderID)
	if err1 != nil || err2 != nil {
		return c.fail(f, wire.CodeInternal)
	}
	resp := &wire.Command{Type: wire.TypeIDs, RecipientID: q.RecipientID, SenderID: q.SenderID}
	copy(resp.RelayRecipientKey[:], rk.PublicKey().Bytes())
	copy(resp.RelaySenderKey[:], sk.PublicKey().Bytes())
	c.s.metrics.created.Add(1)
	return c.respond(responseFrame(f.CorrID, nil, resp))
}

// secure sets the sender key. Securing again with the same key succeeds
// (a retried command); with another key it is refused.
func (c *conn) secure(f *wire.Frame, cmd *wire.Command, q *store.Queue) bool {
	if !validKey(cmd.SenderKey[:]) {
		return c.fail(f, wire.CodeMalformed)
	}
	if len(q.SenderKey) != 0 {
		if string(q.SenderKey) == string(cmd.SenderKey[:]) {
			return c.ok(f)
		}
		return c.fail(f, wire.CodeAuth)
	}
	if err := c.s.store.SecureQueue(c.ctx, q.RecipientID, cmd.SenderKey[:]); err != nil {
		return c.fail(f, codeOf(err))
	}
	return c.ok(f)
}

// send stores a block and acknowledges it only once the store has it
// (durably, on a durable store), then pushes it to a live subscriber.
// Up to maxConcurrentSends sends of a connection are stored at once, so
// they share one group commit; their order in the queue is the order in
// which the store takes them.
// Before the queue is secured a send carries no authenticator (the
// sender's first message brings its key to the recipient, as in SimpleX
// SMP); afterwards it must carry the sender's.
func (c *conn) send(f *wire.Frame, cmd *wire.Command) bool {
	if len(cmd.Block) > c.s.limits.BlockSize {
		return c.fail(f, wire.CodeTooLarge)
	}
	if len(cmd.Block) != c.s.limits.BlockSize {
		return c.fail(f, wire.CodeMalformed)
	}
	// The block must be a PaddedBlock (length in range, padding all
	// zero): the relay stores only its payload and pads it again at
	// delivery, so a block with anything in its padding could not be
	// delivered as sent.
	payload, err := wire.Unpad(cmd.Block)
	if err != nil {
		return c.fail(f, wire.CodeMalformed)
	}
	id, ok := entityID(f)
	if !ok {
		return c.fail(f, wire.CodeUnknownQueue)
	}
	q, err := c.s.store.QueueBySender(c.ctx, id)
	if err != nil {
		return c.fail(f, codeOf(err))
	}
	if len(q.SenderKey) == 0 {
		if len(f.Authenticator) != 0 {
			return c.fail(f, wire.CodeAuth)
		}
	} else if !c.authenticate(f, roleSender, id, q.SenderKey) {
		return c.fail(f, wire.CodeAuth)
	}
	select {
	case c.appendSem <- struct{}{}:
	case <-c.ctx.Done():
		return false
	}
	// The frame's buffer is reused once this returns: copy out what the
	// append needs, the payload into a slice of its own size (a store may
	// keep it, as memstore does).
	corr, payload := f.CorrID, bytes.Clone(payload)
	c.appends.Go(func() {
		defer func() { <-c.appendSem }()
		c.store(corr, id[:], q.RecipientID, payload)
	})
	return true
}

// store appends a block's payload, pushes it to a live subscriber and
// answers the sender once the store has it (durably, on a durable store).
// It runs concurrently with the reader.
//
// With a store that stages appends (store.Stager), the push happens as
// soon as the block's seq is fixed, while the store's commit and its fsync
// run (docs/PROTOCOL.md, "Delivery before durability"); the sender's ok
// still waits for AppendStaged to return, that is, for the block to be
// durable. If the commit then fails, the sender gets the error it would
// have got anyway and the recipient may already hold the block: the
// sender, never acknowledged, sends it again, and the recipient's agent
// drops the second copy (agent/inbox.go processBlock de-duplicates by the
// SHA-256 of the envelope, and agent/outbox.go resends the same envelope
// bytes). The store never gives that seq to another block
// (relay/store/internal/seqs), so the recipient's ack of it removes
// nothing else.
func (c *conn) store(corr uint64, entity []byte, recipient store.ID, block []byte) {
	f := &wire.Frame{CorrID: corr, EntityID: entity}
	var (
		seq     uint64
		err     error
		handled bool // the push (or its place in the pending list) is settled
	)
	if st, ok := c.s.store.(store.Stager); ok {
		// staged runs on this goroutine, under no store lock. Once it
		// has run, AppendStaged reports the commit's own result even if
		// the sender has gone (store.Stager), so a committed block
		// reaches the push below (TestSenderGoneDuringCommit).
		seq, err = st.AppendStaged(c.ctx, recipient, block, time.Now(), c.s.limits.MaxQueueBlocks, func(seq uint64) {
			handled = c.s.appended(recipient, seq, block)
		})
	} else {
		seq, err = c.s.store.Append(c.ctx, recipient, block, time.Now(), c.s.limits.MaxQueueBlocks)
	}
	if err != nil {
		if codeOf(err) == wire.CodeInternal && c.ctx.Err() == nil {
			c.s.log.Error("relay append failed", "err", err)
		}
		c.fail(f, codeOf(err))
		return
	}
	c.s.metrics.sent.Add(1)
	if handled {
		c.ok(f)
		return
	}
	// Not pushed while staged (no live subscriber then, or a store that
	// does not stage): the block is committed now, so a subscription that
	// turned live since, its catch-up having missed the block, gets it
	// here. The sender is answered first: its latency is the one waited
	// on.
	c.ok(f)
	c.s.appended(recipient, seq, block)
}

func (c *conn) subscribe(f *wire.Frame, q *store.Queue) bool {
	aead, err := c.s.deliveryAEAD(q)
	if err != nil {
		return c.fail(f, wire.CodeInternal)
	}
	if !c.ok(f) {
		return false
	}
	c.s.subscribe(c, q.RecipientID, aead)
	return true
}

// ack deletes a delivered block. Like sends, acks are stored
// concurrently so that they share the store's group commit.
func (c *conn) ack(f *wire.Frame, cmd *wire.Command, q *store.Queue) bool {
	select {
	case c.appendSem <- struct{}{}:
	case <-c.ctx.Done():
		return false
	}
	// The frame's buffer is reused once this returns: the entity is
	// the recipient ID, copied.
	corr, recipient, seq := f.CorrID, q.RecipientID, cmd.Seq
	c.appends.Go(func() {
		defer func() { <-c.appendSem }()
		f := &wire.Frame{CorrID: corr, EntityID: recipient[:]}
		err := c.s.store.Ack(c.ctx, recipient, seq)
		// The block is no longer in flight either way.
		c.s.acked(recipient, seq)
		if err != nil {
			c.fail(f, codeOf(err))
			return
		}
		c.s.metrics.acked.Add(1)
		c.ok(f)
	})
	return true
}

func (c *conn) get(f *wire.Frame, q *store.Queue) bool {
	blk, err := c.s.store.First(c.ctx, q.RecipientID)
	if err != nil {
		return c.fail(f, codeOf(err))
	}
	aead, err := c.s.deliveryAEAD(q)
	if err != nil {
		return c.fail(f, wire.CodeInternal)
	}
	frame, err := c.s.deliveryFrame(nil, aead, q.RecipientID, f.CorrID, blk.Seq, blk.Data)
	if err != nil {
		return c.fail(f, wire.CodeInternal)
	}
	c.s.metrics.delivered.Add(1)
	return c.respond(frame)
}

func (c *conn) delete(f *wire.Frame, q *store.Queue) bool {
	if err := c.s.store.DeleteQueue(c.ctx, q.RecipientID); err != nil {
		return c.fail(f, codeOf(err))
	}
	c.s.metrics.deleted.Add(1)
	if !c.ok(f) {
		return false
	}
	c.s.endSubscription(q.RecipientID)
	return true
}
