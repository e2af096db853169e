package agent

import (
	"context"
	"sync"
)

// EventType says what an Event reports.
type EventType int

// Event types.
const (
	// EventMessage: a message arrived (Message is set).
	EventMessage EventType = iota + 1
	// EventStatus: an outgoing message's status advanced: sent, delivered
	// or read (Message is set, with the new Status).
	EventStatus
	// EventTyping: the contact started or stopped typing (Typing).
	EventTyping
	// EventContactAdded: a new contact (Contact), by Accept or because an
	// invitation was accepted.
	EventContactAdded
	// EventContactUpdated: a contact's display name, connection state or
	// timer changed (Contact).
	EventContactUpdated
	// EventVerification: a contact's verification changed, or its identity
	// key changed (Contact; check IdentityChanged).
	EventVerification
	// EventRelayStatus: a relay became reachable or unreachable (Relay, Up).
	EventRelayStatus
	// EventError: something went wrong in the background (Err), for
	// example a block that failed to decrypt and was dropped.
	EventError
)

func (t EventType) String() string {
	return [...]string{"", "message", "status", "typing", "contact-added", "contact-updated", "verification", "relay-status", "error"}[t]
}

// Event is one thing that happened. Only the fields its Type names are set.
type Event struct {
	Type    EventType
	Contact *Contact
	Message *Message
	Typing  bool
	Relay   string
	Up      bool
	Err     error
}

// signal is a broadcast without a value: wait returns a channel that the
// next notify closes.
type signal struct {
	mu sync.Mutex // guards ch
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// eventQueue is an unbounded queue between the agent (which must never
// block on a slow consumer, and never emits under a lock) and the
// consumer's channel.
type eventQueue struct {
	mu     sync.Mutex
	q      []Event
	notify chan struct{}
	out    chan Event
}

func newEventQueue() *eventQueue {
	return &eventQueue{notify: make(chan struct{}, 1), out: make(chan Event)}
}

func (e *eventQueue) push(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	e.mu.Lock()
	e.q = append(e.q, evs...)
	e.mu.Unlock()
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

// run hands queued events to out until ctx is done, then closes out.
func (e *eventQueue) run(ctx context.Context) {
	defer close(e.out)
	for {
		e.mu.Lock()
		var ev Event
		have := len(e.q) > 0
		if have {
			ev = e.q[0]
			e.q[0] = Event{}
			e.q = e.q[1:]
		}
		e.mu.Unlock()
		if !have {
			select {
			case <-e.notify:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case e.out <- ev:
		case <-ctx.Done():
			return
		}
	}
}
