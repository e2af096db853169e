// Package agent is Parley's client core: one profile (a device identity
// and its encrypted local store), its relays, its contacts, the
// connections to them over redundant relays, and the messages. It is THE
// one Go API every front end (the parley CLI, the daemon's JSON-RPC, the
// terminal UI, the web UI) uses; front ends stay thin.
//
// # Lifecycle
//
//	warnings, err := agent.Init(home, passphrase, displayName, nil) // once
//	a, err := agent.Open(home, passphrase, nil)                      // every run
//	defer a.Close()
//	for ev := range a.Events() { … }                                 // in its own goroutine
//
// The passphrase is a parameter: a front end reads it from the terminal or
// from PARLEY_PASSPHRASE. An empty one needs Options.AllowEmptyPassphrase
// and yields a warning. Open starts the agent's goroutines (one per relay,
// the outbox, disappearing-message expiry, event delivery); Close cancels
// them all and waits for them. One agent per profile: a second would take
// over the first one's queue subscriptions, so Open takes an exclusive
// lock (agent.lock in the home directory; released by Close or when the
// process dies) and fails with ErrProfileInUse while another agent holds
// it. A command line should then talk to the running daemon.
//
// # Relays
//
//	a.AddRelay("parley://<fingerprint>@host:port"); a.RemoveRelay(addr); a.Relays()
//	a.Ready(ctx) // every relay tried once: connected and subscribed, or failed
//
// Each direction of a connection uses queues on at least Options.MinRelays
// (default 2) relays. Every envelope goes to every queue of the connection;
// the receiver drops copies by the SHA-256 of the envelope before it
// decrypts anything, so a connection keeps working while any one relay is
// down.
//
// # Contacts
//
//	link, err := a.Invite(ctx, alias)       // parley://invite#… to give out of band (about 4.6 KB)
//	link, err := a.InviteShort(ctx, alias)  // the same, a few hundred characters (fits a QR code)
//	c, err := a.Accept(ctx, link, alias)     // on the other device
//	a.Contacts(); a.Contact(id); a.FindContact("alias or id prefix"); a.SetAlias(id, alias)
//	sn, err := a.SafetyNumber(id); a.Verify(id, true)
//	a.RotateQueues(ctx, id, relays)          // move a connection to other relays
//
// An invitation is one-time and expires (Options.InvitationValidity). A
// contact whose identity key differs from the one a contact of the same
// alias had is flagged (Contact.IdentityChanged, an EventVerification) and
// cannot be sent to until the user verifies it again.
//
// # Messages
//
//	m, err := a.Send(ctx, id, text)   // in the persistent outbox when it returns
//	a.Flush(ctx)                      // wait until every envelope reached a relay
//	a.Messages(id)                    // the conversation, in order
//	a.MarkRead(id); a.SetTyping(id, true); a.SetDisappearing(id, d)
//	a.Settings(); a.UpdateSettings(func(s *agent.Settings) { s.ReadReceipts = false })
//
// Delivery receipts are always sent; read receipts are on by default;
// typing indicators are off by default. Display names travel only inside
// the end-to-end encryption.
//
// # Events
//
// Events returns one channel of Event values: EventMessage,
// EventStatus (an outgoing message was sent, delivered or read),
// EventTyping, EventContactAdded, EventContactUpdated, EventVerification,
// EventRelayStatus and EventError. The agent never blocks on it and never
// emits while holding a lock; events queue in memory until taken.
//
// # Protocol
//
// docs/PROTOCOL.md, section "Agent: contacts, connections and messages",
// gives the byte layouts and steps: the invitation, PQXDH (package pqxdh)
// sealed with HPKE (RFC 9180) to the invitation's key so that relays never
// see an identity key, the Double Ratchet (package ratchet) for everything
// after, and the relay queues (package relay/client). Everything the agent
// keeps is in the encrypted local store (package agent/localstore).
package agent
