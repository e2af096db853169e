package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-messenger/parley/agent"
	"github.com/parley-messenger/parley/agent/localstore"
)

// FuzzDaemonRequest feeds arbitrary request lines to the daemon: it never
// panics, answers every request that has an id with exactly one JSON-RPC
// 2.0 response line carrying that id, and answers nothing else.
func FuzzDaemonRequest(f *testing.F) {
	home := filepath.Join(f.TempDir(), "p")
	opts := &agent.Options{KDF: localstore.TestKDF}
	if _, err := agent.Init(home, []byte("pw"), "Fuzz", opts); err != nil {
		f.Fatal(err)
	}
	a, err := agent.Open(home, []byte("pw"), opts)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })
	d := &daemon{a: a, conns: map[*rpcConn]bool{}}
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"identity"}`,
		`{"jsonrpc":"2.0","id":"x","method":"contacts"}`,
		`{"jsonrpc":"2.0","id":2,"method":"send","params":{"contact":"bob","text":"hi"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"accept","params":{"link":"parley://invite#AAAA"}}`,
		`{"jsonrpc":"2.0","id":4,"method":"verify","params":{"contact":"bob","confirm":true}}`,
		`{"jsonrpc":"2.0","id":5,"method":"relays.add","params":{"address":"parley://x@127.0.0.1:1"}}`,
		`{"jsonrpc":"2.0","id":8,"method":"invite","params":{"name":"x"}}`,
		`{"jsonrpc":"2.0","id":6,"method":"messages","params":[1]}`,
		`{"jsonrpc":"2.0","method":"contacts"}`,
		`{"id":7}`,
		`not json`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var req struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  string          `json:"method"`
		}
		parsed := json.Unmarshal(line, &req) == nil
		// Methods that reach relays (invite, accept) give up quickly: the
		// relays a fuzzed relays.add names do not exist.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		out := d.handle(ctx, line)
		if parsed && len(req.ID) == 0 && req.JSONRPC == "2.0" && req.Method != "" {
			if out != nil {
				t.Fatalf("a notification was answered: %s", out)
			}
			return
		}
		if out == nil {
			// Anything but a valid notification gets an answer, if only
			// an error with a null id.
			t.Fatalf("no answer to %q", line)
		}
		if bytes.Count(out, []byte("\n")) != 1 || out[len(out)-1] != '\n' {
			t.Fatalf("answer is not one line: %q", out)
		}
		var resp struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Result  json.RawMessage `json:"result"`
			Error   *rpcError       `json:"error"`
		}
		if err := json.Unmarshal(out, &resp); err != nil || resp.JSONRPC != "2.0" {
			t.Fatalf("answer %q: %v", out, err)
		}
		if (resp.Result == nil) == (resp.Error == nil) {
			t.Fatalf("answer has both or neither of result and error: %s", out)
		}
		if parsed && len(req.ID) > 0 {
			var a, b any
			json.Unmarshal(req.ID, &a)
			json.Unmarshal(resp.ID, &b)
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if !bytes.Equal(ja, jb) {
				t.Fatalf("answer id %s, request id %s", resp.ID, req.ID)
			}
		}
	})
}
