package listen

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// pendingOnce asks for one idle tick after each datagram (a batch waiting
// for its linger time), then for none once that tick flushed it.
type pendingOnce struct {
	mu      sync.Mutex
	n       int
	pending bool
}

func (p *pendingOnce) Datagram([]byte, netip.Addr, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.pending = true
}

func (p *pendingOnce) Tick(time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending {
		p.pending = false
		return 20 * time.Millisecond
	}
	return 0
}

func (p *pendingOnce) count() int { p.mu.Lock(); defer p.mu.Unlock(); return p.n }

// Regression: the idle tick that flushed the last batch returned 0 and the
// expired read deadline stayed set, so every later read failed at once and
// the socket never delivered another datagram (found by
// TestFaultKafkaBrokerDown, tag faults).
func TestReadsAfterIdleFlush(t *testing.T) {
	socks, err := Open(context.Background(), Config{Name: "i", Network: "udp4", Addr: "127.0.0.1:0"}, NewMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := socks[0]
	defer s.Conn.Close()
	h := &pendingOnce{}
	go s.Serve(h)
	for round := 1; round <= 3; round++ {
		send(t, s.Addr(), 1, 100)
		deadline := time.Now().Add(3 * time.Second)
		for h.count() < round {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: datagram not read after an idle flush (%d read)", round, h.count())
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // the idle tick fires and asks for nothing more
	}
}
