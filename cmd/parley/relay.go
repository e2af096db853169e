package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/parley-messenger/parley/relay"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/boltstore"
	"github.com/parley-messenger/parley/relay/store/sqlitestore"
)

// defaultRelayPort is the relay's default TCP port: 5223, the port
// SimpleX's SMP servers use by default, so that firewalls that already
// allow that messaging port allow a Parley relay.
const defaultRelayPort = "5223"

// relayCommand registers `parley relay`.
var relayCommand = command{"run a relay (prints its parley:// address)", runRelay}

// runRelay runs a relay until ctx is done (SIGINT or SIGTERM).
//
// The key (relay.key) and the store (relay.sqlite) live in the data
// directory; the address printed stays the same for as long as the key
// file does.
func runRelay(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", envOr("PARLEY_RELAY_LISTEN", ":"+defaultRelayPort), "listen on `ADDR` (host:port)")
	data := fs.String("data", os.Getenv("PARLEY_RELAY_DATA"), "data `DIR` (default: parley/relay under the user's config directory)")
	public := fs.String("public", os.Getenv("PARLEY_RELAY_PUBLIC"), "advertise `HOST:PORT` in the printed address (default: the listen address)")
	metrics := fs.String("metrics", os.Getenv("PARLEY_RELAY_METRICS"), "serve Prometheus metrics (counts only) on `ADDR`")
	durable := fs.Bool("durable", true, "fsync every acknowledged block (false: faster, a machine crash may lose recent blocks)")
	verbose := fs.Bool("verbose", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return &usageError{msg: "relay: " + err.Error(), hint: "usage: parley relay [--listen ADDR] [--data DIR] [--public HOST:PORT] [--metrics ADDR] [--durable=false]"}
	}
	if fs.NArg() != 0 {
		return &usageError{msg: "relay takes no arguments", hint: "usage: parley relay [--listen ADDR] [--data DIR] [--public HOST:PORT] [--metrics ADDR] [--durable=false]"}
	}
	dir := *data
	if dir == "" {
		cfg, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("relay: finding the config directory: %w (use --data DIR)", err)
		}
		dir = filepath.Join(cfg, "parley", "relay")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("relay: creating data directory: %w", err)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))

	key, err := relay.LoadOrCreateKey(filepath.Join(dir, "relay.key"))
	if err != nil {
		return err
	}
	st, err := openRelayStore(dir, *durable)
	if err != nil {
		return fmt.Errorf("relay: opening store: %w", err)
	}
	defer st.Close()
	srv, err := relay.NewServer(relay.Config{Key: key, Store: st, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	hostport := *public
	if hostport == "" {
		hostport = advertised(ln.Addr())
	}
	addr, err := relay.Address(key.Public().(ed25519.PublicKey), hostport)
	if err != nil {
		return fmt.Errorf("relay: the address to print: %w", err)
	}
	if g.json {
		fmt.Fprintf(g.stdout, "{\"address\":%q}\n", addr)
	} else {
		fmt.Fprintln(g.stdout, addr)
	}
	logger.Info("relay starting", "durable", *durable)

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *metrics != "" {
		mln, err := net.Listen("tcp", *metrics)
		if err != nil {
			ln.Close()
			return fmt.Errorf("relay: metrics: %w", err)
		}
		wg.Go(func() { serveMetrics(ctx, mln, srv, logger) })
	}
	return srv.Serve(ctx, ln)
}

// openRelayStore opens the relay's store: SQLite (relay.sqlite), the
// engine chosen by the storage benchmark (docs/BENCHMARKS.md "Storage
// engine choice"). A data directory made by an earlier version holds a
// bbolt store (relay.db) instead; it is kept, so its queues survive.
func openRelayStore(dir string, durable bool) (store.Store, error) {
	if legacy := filepath.Join(dir, "relay.db"); fileExists(legacy) {
		st, err := boltstore.Open(legacy, boltstore.Options{NoSync: !durable})
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	st, err := sqlitestore.Open(filepath.Join(dir, "relay.sqlite"), sqlitestore.Options{NoSync: !durable})
	if err != nil {
		return nil, err
	}
	return st, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// advertised turns a listen address into one to print: an unspecified
// host (":5223", "0.0.0.0:5223") becomes this machine's host name.
func advertised(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

func serveMetrics(ctx context.Context, ln net.Listener, srv *relay.Server, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		srv.WriteMetrics(w)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		<-ctx.Done()
		hs.Close()
	})
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("relay metrics endpoint failed", "err", err)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
