package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/parley-messenger/parley/agent"
	"github.com/parley-messenger/parley/relay"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// TestMain lets the scripts run "parley" as a command: the test binary
// re-executes itself as the parley main.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"parley": main})
}

// TestScripts runs cmd/parley/testdata/*.txtar: every client command and
// every error message it prints.
func TestScripts(t *testing.T) {
	reg := &scriptRelays{}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			e.Setenv("HOME", filepath.Join(e.WorkDir, "home"))
			e.Setenv("XDG_CONFIG_HOME", filepath.Join(e.WorkDir, "home", ".config"))
			e.Setenv(envFastKDF, "1")
			// A race-enabled binary sleeps 1 s at exit by default, to let
			// reports from other goroutines print; the scripts run a
			// hundred commands, and the goroutines are stopped before exit.
			e.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"relay":         reg.cmd,
			"envfile":       cmdEnvFile,
			"expand":        cmdExpand,
			"jsonfield":     cmdJSONField,
			"expiredinvite": cmdExpiredInvite,
			"waitfile":      cmdWaitFile,
			"grepvar":       cmdGrepVar,
		},
	})
}

// scriptRelay is an in-process relay a script started.
type scriptRelay struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// cmdRelay: "relay start NAME" starts a relay on 127.0.0.1 and sets $NAME
// to its parley:// address; "relay stop NAME" stops it.
func (s *scriptRelays) cmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: relay start|stop NAME")
	}
	key := "relay:" + args[1]
	switch args[0] {
	case "start":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		ts.Check(err)
		st := memstore.New(memstore.Options{})
		srv, err := relay.NewServer(relay.Config{Key: priv, Store: st})
		ts.Check(err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		ctx, cancel := context.WithCancel(context.Background())
		r := &scriptRelay{cancel: cancel}
		r.wg.Go(func() { srv.Serve(ctx, ln) })
		ts.Setenv(args[1], srv.Address(ln.Addr().String()))
		s.Store(ts, key, r)
		ts.Defer(func() {
			r.cancel()
			r.wg.Wait()
			st.Close()
		})
	case "stop":
		v, ok := s.Load(ts, key)
		if !ok {
			ts.Fatalf("no relay %s", args[1])
		}
		v.cancel()
		v.wg.Wait()
	default:
		ts.Fatalf("usage: relay start|stop NAME")
	}
}

// scriptRelays maps (script, name) to the relays scripts started.
type scriptRelays struct {
	mu sync.Mutex
	m  map[*testscript.TestScript]map[string]*scriptRelay
}

func (s *scriptRelays) Store(ts *testscript.TestScript, key string, r *scriptRelay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[*testscript.TestScript]map[string]*scriptRelay{}
	}
	if s.m[ts] == nil {
		s.m[ts] = map[string]*scriptRelay{}
	}
	s.m[ts][key] = r
}

func (s *scriptRelays) Load(ts *testscript.TestScript, key string) (*scriptRelay, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[ts][key]
	return r, ok
}

// cmdEnvFile: "envfile VAR FILE" sets $VAR to the first line of FILE
// (for example an invitation link saved from stdout).
func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile VAR FILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	line, _, _ := strings.Cut(string(b), "\n")
	ts.Setenv(args[0], strings.TrimSpace(line))
}

// cmdExpand: "expand IN OUT" writes IN to OUT with $VARS expanded (stdin
// files are not expanded by testscript).
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: expand IN OUT")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(os.Expand(ts.ReadFile(args[0]), ts.Getenv)), 0o600))
}

// cmdJSONField: "jsonfield VAR FILE FIELD" sets $VAR to the string FIELD of
// the JSON object in FILE.
func cmdJSONField(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: jsonfield VAR FILE FIELD")
	}
	var m map[string]any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[1])), &m))
	v, ok := m[args[2]].(string)
	if !ok || v == "" {
		ts.Fatalf("no string field %q in %s", args[2], args[1])
	}
	ts.Setenv(args[0], v)
}

// cmdExpiredInvite: "expiredinvite VAR HOME" opens the profile in HOME
// (passphrase $PARLEY_PASSPHRASE) with invitations valid for 1 ns, and
// sets $VAR to a new invitation, expired by the time anyone accepts it.
// The command line has no switch for the validity (7 days).
func cmdExpiredInvite(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: expiredinvite VAR HOME")
	}
	a, err := agent.Open(ts.MkAbs(args[1]), []byte(ts.Getenv(envPassphrase)), &agent.Options{InvitationValidity: time.Nanosecond})
	ts.Check(err)
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	link, err := a.Invite(ctx, "late")
	ts.Check(err)
	ts.Setenv(args[0], link)
}

// cmdWaitFile: "waitfile PATH" waits up to 30 s for PATH to exist (a
// socket a background command creates).
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
	}
	ts.Fatalf("%s did not appear", args[0])
}

// cmdGrepVar: "grepvar VAR FILE REGEXP" sets $VAR to the first submatch of
// REGEXP in FILE ("stdout" is the last command's output).
func cmdGrepVar(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: grepvar VAR FILE REGEXP")
	}
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile(args[1]))
	if len(m) < 2 {
		ts.Fatalf("no match for %s in %s", args[2], args[1])
	}
	ts.Setenv(args[0], m[1])
}
