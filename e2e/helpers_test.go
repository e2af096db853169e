package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// parleyBin is the binary TestMain builds.
var parleyBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "parley-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	parleyBin = filepath.Join(dir, "parley")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", parleyBin, "../cmd/parley")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building parley: %v\n", err)
		return 1
	}
	return m.Run()
}

// env is the environment of every process the tests start.
func env(extra ...string) []string {
	e := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.TempDir(),
		"PARLEY_PASSPHRASE=e2e passphrase",
		"PARLEY_INSECURE_FAST_KDF=1",
	}
	return append(e, extra...)
}

// proc is a process a test started; Cleanup kills and waits for it.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(t *testing.T, ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args ...string) *proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, parleyBin, args...)
	cmd.Env = env()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting parley %v: %v", args, err)
	}
	p := &proc{t: t, cmd: cmd, done: make(chan struct{})}
	go func() { // owned by p: ends when the process does; kill waits for it
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// relayProc is a `parley relay` process with its data directory; it can
// be killed and started again on the same port with the same data.
type relayProc struct {
	t      *testing.T
	dir    string
	listen string
	public string // the tap's address, advertised instead of listen
	addr   string
	p      *proc
	logs   []string
}

// startRelay starts a relay behind a tap that captures its traffic into
// dir + ".capture".
func startRelay(t *testing.T, ctx context.Context, dir string) *relayProc {
	t.Helper()
	listen := "127.0.0.1:" + freePort(t)
	tp := startTap(t, listen, dir+".capture")
	r := &relayProc{t: t, dir: dir, listen: listen, public: tp.addr()}
	r.logs = append(r.logs, dir+".capture")
	r.start(ctx)
	return r
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func (r *relayProc) start(ctx context.Context) {
	t := r.t
	t.Helper()
	logPath := filepath.Join(filepath.Dir(r.dir), filepath.Base(r.dir)+fmt.Sprintf("-%d.log", len(r.logs)))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	r.logs = append(r.logs, logPath)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.p = start(t, ctx, nil, pw, logf, "relay", "--listen", r.listen, "--public", r.public, "--data", r.dir, "--verbose")
	pw.Close() // the child holds its end
	line := make(chan string, 1)
	go func() { // ends at the pipe's end
		sc := bufio.NewScanner(pr)
		first := true
		for sc.Scan() {
			if first {
				line <- sc.Text()
				first = false
			}
		}
		if first {
			close(line)
		}
		pr.Close()
	}()
	select {
	case l, ok := <-line:
		if !ok {
			t.Fatalf("relay exited before printing its address (log %s)", logPath)
		}
		r.addr = strings.TrimSpace(l)
	case <-ctx.Done():
		t.Fatal("relay did not start")
	}
	if !strings.HasPrefix(r.addr, "parley://") {
		t.Fatalf("relay printed %q", r.addr)
	}
	if want := "@" + r.public; !strings.HasSuffix(r.addr, want) {
		t.Fatalf("relay address %q does not go through the tap %s", r.addr, r.public)
	}
}

// result is one finished command.
type result struct {
	stdout, stderr string
	err            error
}

// parley runs one client command on the profile in home and waits for it.
func parley(t *testing.T, ctx context.Context, home string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	p := start(t, ctx, nil, &out, &errb, append([]string{"--home", home}, args...)...)
	<-p.done
	return result{out.String(), errb.String(), p.err}
}

// must runs a command that must succeed and returns its stdout.
func must(t *testing.T, ctx context.Context, home string, args ...string) string {
	t.Helper()
	r := parley(t, ctx, home, args...)
	if r.err != nil {
		t.Fatalf("parley --home %s %s: %v\nstdout: %s\nstderr: %s", filepath.Base(home), strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r.stdout
}

// event is one line of receive --json, or the params of a daemon
// notification.
type event struct {
	Type    string `json:"type"`
	Contact *struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
		Identity    string `json:"identity"`
		Connected   bool   `json:"connected"`
	} `json:"contact"`
	Message *message `json:"message"`
}

type message struct {
	ID       string `json:"id"`
	Contact  string `json:"contact"`
	Outgoing bool   `json:"outgoing"`
	Text     string `json:"text"`
	Status   string `json:"status"`
	Order    uint64 `json:"order"`
}

// receive runs receive --json and returns its events.
func receive(t *testing.T, ctx context.Context, home string, timeout string) []event {
	t.Helper()
	out := must(t, ctx, home, "--json", "receive", "--timeout", timeout)
	var evs []event
	for line := range strings.Lines(out) {
		var ev event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("receive --json printed %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// texts returns the texts of incoming messages among evs.
func texts(evs []event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == "message" && ev.Message != nil && !ev.Message.Outgoing {
			out = append(out, ev.Message.Text)
		}
	}
	return out
}

// statuses returns the statuses reported for the outgoing message text.
func statuses(evs []event, text string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == "status" && ev.Message != nil && ev.Message.Text == text {
			out = append(out, ev.Message.Status)
		}
	}
	return out
}

// daemonProc is a `parley daemon` with a JSON-RPC client on its stdio.
type daemonProc struct {
	t     *testing.T
	p     *proc
	in    io.WriteCloser
	next  int
	mu    sync.Mutex // guards resp and notes
	resp  map[int]json.RawMessage
	notes []event
	wake  chan struct{}
}

func startDaemon(t *testing.T, ctx context.Context, home, sock string) *daemonProc {
	t.Helper()
	// os.Pipe, not io.Pipe: exec then copies nothing, so Wait does not
	// wait for our side of the pipes.
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{t: t, in: inW, resp: map[int]json.RawMessage{}, wake: make(chan struct{}, 1)}
	d.p = start(t, ctx, inR, outW, os.Stderr, "--home", home, "daemon", "--socket", sock)
	inR.Close()
	outW.Close()
	t.Cleanup(func() { inW.Close() })
	go func() { // ends at the pipe's end, when the process exits
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m struct {
				ID     *int            `json:"id"`
				Method string          `json:"method"`
				Params event           `json:"params"`
				Result json.RawMessage `json:"result"`
				Error  json.RawMessage `json:"error"`
			}
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			d.mu.Lock()
			if m.ID != nil {
				if m.Error != nil {
					d.resp[*m.ID] = append(json.RawMessage(`{"error":`), append(m.Error, '}')...)
				} else {
					d.resp[*m.ID] = m.Result
				}
			} else if m.Method == "event" {
				d.notes = append(d.notes, m.Params)
			}
			d.mu.Unlock()
			select {
			case d.wake <- struct{}{}:
			default:
			}
		}
	}()
	return d
}

// call sends one request and waits for its answer.
func (d *daemonProc) call(ctx context.Context, method string, params any, result any) error {
	d.next++
	id := d.next
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	if _, err := d.in.Write(append(b, '\n')); err != nil {
		return err
	}
	for {
		d.mu.Lock()
		r, ok := d.resp[id]
		d.mu.Unlock()
		if ok {
			if bytes.HasPrefix(r, []byte(`{"error":`)) {
				return errors.New(string(r))
			}
			return json.Unmarshal(r, result)
		}
		select {
		case <-d.wake:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		case <-d.p.done:
			return errors.New("daemon exited")
		}
	}
}

// waitNote waits for a notification that ok accepts.
func (d *daemonProc) waitNote(ctx context.Context, ok func(event) bool) bool {
	for {
		d.mu.Lock()
		for _, n := range d.notes {
			if ok(n) {
				d.mu.Unlock()
				return true
			}
		}
		d.mu.Unlock()
		select {
		case <-d.wake:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return false
		}
	}
}

// notifications returns a copy of the notifications so far.
func (d *daemonProc) notifications() []event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]event(nil), d.notes...)
}

// stop closes the daemon's input, which stops it, and waits.
func (d *daemonProc) stop(ctx context.Context) {
	d.in.Close()
	select {
	case <-d.p.done:
	case <-ctx.Done():
		d.p.kill()
	}
}
