package relay

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/client"
)

// rssBytes reads a process's resident set size from /proc.
func rssBytes(b *testing.B, pid int) uint64 {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkIdleConnectionMemory runs `parley relay` as a process, creates
// 10,000 queues, then opens 10,000 connections each subscribed to one of
// them and idle, and reports the relay process's resident memory growth
// per connection. The relay is measured alone: the clients live in the
// benchmark process.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	const conns = 10_000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	for range b.N {
		p := startProcB(b, ctx)
		setup, err := client.Dial(ctx, p.addr, nil)
		if err != nil {
			b.Fatal(err)
		}
		queues := make([]*client.RecipientQueue, conns)
		for i := range queues {
			if queues[i], err = setup.Create(ctx); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		before := rssBytes(b, p.cmd.Process.Pid)
		clients := make([]*client.Client, conns)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= conns {
						return
					}
					c, err := client.Dial(ctx, p.addr, &client.Options{PingInterval: time.Hour})
					if err != nil {
						b.Error(err)
						return
					}
					clients[i] = c
					if err := c.Subscribe(ctx, queues[i]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		time.Sleep(2 * time.Second)
		after := rssBytes(b, p.cmd.Process.Pid)
		b.ReportMetric(float64(after-before)/conns, "bytes/conn")
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
		setup.Close()
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
	b.ReportMetric(0, "ns/op")
}
