package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parley-messenger/parley/agent"
)

const daemonSynopsis = "daemon [--socket PATH] [--no-stdio]"

// socketName is the daemon's Unix socket inside the profile directory.
const socketName = "daemon.sock"

// maxRequest bounds one JSON-RPC request line.
const maxRequest = 64 << 10

var daemonCommand = command{"run the agent and serve JSON-RPC 2.0 on stdio and a Unix socket", runDaemon}

// runDaemon runs the agent until interrupted and exposes it over JSON-RPC
// 2.0 (https://www.jsonrpc.org/specification), newline-delimited, on
// stdio and on a Unix socket in the profile directory (mode 0600, inside
// the profile's 0700 directory). The agent's events go to every client
// as "event" notifications.
func runDaemon(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sock := fs.String("socket", "", "listen on the Unix socket `PATH` (default: daemon.sock in the profile directory)")
	noStdio := fs.Bool("no-stdio", false, "serve only the socket, not stdin/stdout (without it the daemon stops at the end of its input)")
	if err := parseFlags(g, fs, args, daemonSynopsis); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return usage("daemon: "+err.Error(), daemonSynopsis)
	}
	if fs.NArg() != 0 {
		return usage("daemon takes no arguments", daemonSynopsis)
	}
	home, err := homeDir(g)
	if err != nil {
		return err
	}
	if *sock == "" {
		*sock = filepath.Join(home, socketName)
	}
	a, err := openProfile(g)
	if err != nil {
		return err
	}
	defer a.Close()

	// A socket file left by a daemon that was killed is removed; one that
	// still answers belongs to a running daemon.
	if c, err := net.Dial("unix", *sock); err == nil {
		c.Close()
		return hinted(fmt.Errorf("daemon: another daemon serves %s", *sock), "use that one (connect to the socket), or stop it first")
	}
	os.Remove(*sock)
	ln, err := net.Listen("unix", *sock)
	if err != nil {
		return hinted(fmt.Errorf("daemon: %w", err), "give a shorter socket path with --socket PATH (Unix sockets allow about 100 bytes)")
	}
	defer os.Remove(*sock)
	os.Chmod(*sock, 0o600)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := &daemon{a: a, g: g, conns: map[*rpcConn]bool{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { d.broadcast(ctx) })
	wg.Go(func() {
		<-ctx.Done()
		ln.Close()
	})
	wg.Go(func() { d.accept(ctx, ln) })
	if !*noStdio {
		// The stdio transport is a session: when its input ends, the
		// daemon stops (as signal-cli's jsonRpc does).
		wg.Go(func() {
			d.serve(ctx, newRPCConn(g.stdin, g.stdout, nil))
			cancel()
		})
	}
	fmt.Fprintf(g.stderr, "parley: daemon: serving JSON-RPC on stdio and %s\n", *sock)
	<-ctx.Done()
	return nil
}

// daemon holds the agent and the connected clients.
type daemon struct {
	a *agent.Agent
	g *globals

	mu    sync.Mutex // guards conns
	conns map[*rpcConn]bool
}

// rpcConn is one JSON-RPC client. Replies and notifications go through
// out, written by the connection's writer goroutine, so that a slow client
// never blocks the others.
type rpcConn struct {
	r      io.Reader
	w      io.Writer
	closer io.Closer // nil for stdio
	out    chan []byte
	done   chan struct{}
	once   sync.Once
}

func newRPCConn(r io.Reader, w io.Writer, c io.Closer) *rpcConn {
	return &rpcConn{r: r, w: w, closer: c, out: make(chan []byte, 256), done: make(chan struct{})}
}

// send queues one message; a client too slow to take 256 is dropped.
func (c *rpcConn) send(b []byte) {
	select {
	case c.out <- b:
	case <-c.done:
	default:
		c.close()
	}
}

func (c *rpcConn) close() {
	c.once.Do(func() {
		close(c.done)
		if c.closer != nil {
			c.closer.Close()
		}
	})
}

func (d *daemon) accept(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := newRPCConn(nc, nc, nc)
		wg.Go(func() { d.serve(ctx, c) })
	}
}

// serve runs one connection until it ends or ctx is done.
func (d *daemon) serve(ctx context.Context, c *rpcConn) {
	d.mu.Lock()
	d.conns[c] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.close()
	wg.Go(func() {
		for {
			select {
			case b := <-c.out:
				if _, err := c.w.Write(b); err != nil {
					c.close()
					return
				}
			case <-c.done:
				// Write what was already answered, then stop.
				for {
					select {
					case b := <-c.out:
						if _, err := c.w.Write(b); err != nil {
							return
						}
					default:
						return
					}
				}
			case <-ctx.Done():
				c.close()
				return
			}
		}
	})
	lines := make(chan []byte)
	read := func() {
		defer close(lines)
		sc := bufio.NewScanner(c.r)
		sc.Buffer(make([]byte, 4096), maxRequest)
		for sc.Scan() {
			select {
			case lines <- append([]byte(nil), sc.Bytes()...):
			case <-c.done:
				return
			}
		}
	}
	if c.closer != nil {
		wg.Go(read) // closing the connection ends it
	} else {
		// A read of the process's stdin cannot be interrupted; this
		// goroutine ends with the process (or at end of input), which
		// follows right after the daemon stops.
		go read()
	}
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return
			}
			if resp := d.handle(ctx, line); resp != nil {
				c.send(resp)
			}
		case <-c.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// broadcast sends every agent event to every client as a notification.
func (d *daemon) broadcast(ctx context.Context) {
	name := contactNamer(d.a)
	for {
		select {
		case ev, ok := <-d.a.Events():
			if !ok {
				return
			}
			b, err := json.Marshal(rpcNotification{JSONRPC: "2.0", Method: "event", Params: toEventJSON(ev, name)})
			if err != nil {
				continue
			}
			b = append(b, '\n')
			d.mu.Lock()
			conns := make([]*rpcConn, 0, len(d.conns))
			for c := range d.conns {
				conns = append(conns, c)
			}
			d.mu.Unlock()
			for _, c := range conns {
				c.send(b)
			}
		case <-ctx.Done():
			return
		}
	}
}

// JSON-RPC 2.0 messages (JSON-RPC 2.0 specification §4, §5).
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcNotification struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Error codes (JSON-RPC 2.0 §5.1); -32000 is an application error whose
// message ends with what to do next.
const (
	rpcParseError     = -32700
	rpcInvalidRequest = -32600
	rpcMethodNotFound = -32601
	rpcInvalidParams  = -32602
	rpcAppError       = -32000
)

// handle answers one request line; nil for a notification.
func (d *daemon) handle(ctx context.Context, line []byte) []byte {
	var req rpcRequest
	resp := rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null")}
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = &rpcError{rpcParseError, "parse error: send one JSON object per line"}
		return marshalLine(resp)
	}
	if len(req.ID) > 0 {
		resp.ID = req.ID
	}
	if req.JSONRPC != "2.0" || req.Method == "" {
		resp.Error = &rpcError{rpcInvalidRequest, `invalid request: give "jsonrpc":"2.0" and a method`}
		return marshalLine(resp)
	}
	result, err := d.call(ctx, req.Method, req.Params)
	if len(req.ID) == 0 {
		return nil // a notification gets no answer (§4.1)
	}
	if err != nil {
		var re *rpcError
		if errors.As(err, &re) {
			resp.Error = re
		} else {
			msg := err.Error()
			var h interface{ Hint() string }
			if errors.As(err, &h) && h.Hint() != "" {
				msg += "; " + h.Hint()
			}
			resp.Error = &rpcError{rpcAppError, msg}
		}
	} else {
		if result == nil {
			result = struct{}{}
		}
		resp.Result = result
	}
	return marshalLine(resp)
}

func marshalLine(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	return append(b, '\n')
}

func (e *rpcError) Error() string { return e.Message }

// rpcParams are the parameters any method takes; each uses some.
type rpcParams struct {
	Contact string `json:"contact"`
	Text    string `json:"text"`
	Link    string `json:"link"`
	Name    string `json:"name"`
	Address string `json:"address"`
	Confirm *bool  `json:"confirm"`
	Typing  bool   `json:"typing"`
	// settings.update: only the fields given change.
	DisplayName      *string `json:"displayName"`
	ReadReceipts     *bool   `json:"readReceipts"`
	TypingIndicators *bool   `json:"typingIndicators"`
	// disappear: the timer in seconds (0 turns it off).
	Seconds *int64 `json:"seconds"`
}

// call runs one method. The methods mirror the commands.
func (d *daemon) call(ctx context.Context, method string, raw json.RawMessage) (any, error) {
	var p rpcParams
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, &rpcError{rpcInvalidParams, "invalid params: give an object such as {\"contact\":\"bob\",\"text\":\"hi\"}"}
		}
	}
	a := d.a
	need := func(field, v string) error {
		if v == "" {
			return &rpcError{rpcInvalidParams, fmt.Sprintf("invalid params: %s needs %q", method, field)}
		}
		return nil
	}
	contact := func() (agent.Contact, error) {
		if err := need("contact", p.Contact); err != nil {
			return agent.Contact{}, err
		}
		return findContact(a, p.Contact)
	}
	switch method {
	case "identity":
		return map[string]string{"identity": a.Identity().String()}, nil
	case "invite":
		link, err := a.Invite(ctx, p.Name)
		if err != nil {
			return nil, relayErr(err)
		}
		return map[string]string{"link": link}, nil
	case "accept":
		if err := need("link", p.Link); err != nil {
			return nil, err
		}
		c, err := a.Accept(ctx, strings.Join(strings.Fields(p.Link), ""), p.Name)
		if err != nil {
			return nil, acceptErr(err)
		}
		return toContactJSON(c), nil
	case "contacts":
		cs, err := a.Contacts()
		if err != nil {
			return nil, err
		}
		out := make([]contactJSON, len(cs))
		for i, c := range cs {
			out[i] = toContactJSON(c)
		}
		return out, nil
	case "messages":
		c, err := contact()
		if err != nil {
			return nil, err
		}
		ms, err := a.Messages(c.ID)
		if err != nil {
			return nil, err
		}
		out := make([]messageJSON, len(ms))
		for i, m := range ms {
			out[i] = toMessageJSON(m, c.Name())
		}
		return out, nil
	case "send":
		c, err := contact()
		if err != nil {
			return nil, err
		}
		if err := need("text", p.Text); err != nil {
			return nil, err
		}
		if !c.Connected {
			return nil, errors.New("the connection is not complete yet; nothing was sent (wait for the contact to answer)")
		}
		m, err := a.Send(ctx, c.ID, p.Text)
		if err != nil {
			return nil, err
		}
		return toMessageJSON(m, c.Name()), nil
	case "markRead":
		c, err := contact()
		if err != nil {
			return nil, err
		}
		return nil, a.MarkRead(c.ID)
	case "typing":
		c, err := contact()
		if err != nil {
			return nil, err
		}
		return nil, a.SetTyping(c.ID, p.Typing)
	case "verify":
		c, err := contact()
		if err != nil {
			return nil, err
		}
		if p.Confirm != nil {
			if err := a.Verify(c.ID, *p.Confirm); err != nil {
				return nil, err
			}
			if c, err = a.Contact(c.ID); err != nil {
				return nil, err
			}
		}
		sn, err := a.SafetyNumber(c.ID)
		if err != nil {
			return nil, err
		}
		return map[string]any{"contact": toContactJSON(c), "safetyNumber": sn.Digits()}, nil
	case "settings", "settings.update":
		if method == "settings.update" {
			err := a.UpdateSettings(func(s *agent.Settings) {
				if p.DisplayName != nil {
					s.DisplayName = *p.DisplayName
				}
				if p.ReadReceipts != nil {
					s.ReadReceipts = *p.ReadReceipts
				}
				if p.TypingIndicators != nil {
					s.TypingIndicators = *p.TypingIndicators
				}
			})
			if err != nil {
				return nil, err
			}
		}
		st, err := a.Settings()
		if err != nil {
			return nil, err
		}
		return settingsJSON{st.DisplayName, st.ReadReceipts, st.TypingIndicators}, nil
	case "disappear":
		c, err := contact()
		if err != nil {
			return nil, err
		}
		if p.Seconds == nil || *p.Seconds < 0 || *p.Seconds > int64(maxDisappear/time.Second) {
			return nil, &rpcError{rpcInvalidParams, "invalid params: disappear needs \"seconds\" from 0 (off) to 31536000 (one year)"}
		}
		if err := a.SetDisappearing(c.ID, time.Duration(*p.Seconds)*time.Second); err != nil {
			return nil, err
		}
		if c, err = a.Contact(c.ID); err != nil {
			return nil, err
		}
		return toContactJSON(c), nil
	case "relays.list":
		rs, err := a.Relays()
		if err != nil {
			return nil, err
		}
		out := make([]map[string]any, len(rs))
		for i, r := range rs {
			out[i] = map[string]any{"address": r.Address, "up": r.Up}
		}
		return out, nil
	case "relays.add":
		if err := need("address", p.Address); err != nil {
			return nil, err
		}
		if err := checkRelayAddress(strings.TrimSpace(p.Address)); err != nil {
			return nil, hinted(fmt.Errorf("relays.add: %w", err), "a relay address looks like parley://FINGERPRINT@host:port, as 'parley relay' prints it")
		}
		return nil, a.AddRelay(p.Address)
	case "relays.remove":
		if err := need("address", p.Address); err != nil {
			return nil, err
		}
		if err := a.RemoveRelay(p.Address); err != nil {
			return nil, err
		}
		moved, failed := moveConnections(ctx, a)
		return map[string]int{"moved": moved, "notMoved": failed}, nil
	}
	return nil, &rpcError{rpcMethodNotFound, fmt.Sprintf("method %q not found: use identity, invite, accept, contacts, messages, send, markRead, typing, verify, settings, settings.update, disappear, relays.list, relays.add or relays.remove", method)}
}
