package listen

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

type recorder struct {
	mu    sync.Mutex
	n     int
	src   netip.Addr
	ticks int
	wait  time.Duration
}

func (r *recorder) Datagram(pkt []byte, src netip.Addr, now time.Time) {
	r.mu.Lock()
	r.n++
	r.src = src
	r.mu.Unlock()
}

func (r *recorder) Tick(now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ticks++
	return r.wait
}

func (r *recorder) count() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.ticks
}

func send(t *testing.T, to netip.AddrPort, n, size int) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := make([]byte, size)
	for i := 0; i < n; i++ {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReusePortAndIdleTicks(t *testing.T) {
	m := NewMetrics(nil)
	socks, err := Open(context.Background(), Config{Name: "t", Network: "udp", Addr: "127.0.0.1:0", Sockets: 3}, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 3 || socks[1].Addr() != socks[0].Addr() {
		t.Fatalf("want 3 sockets on one port, got %d", len(socks))
	}
	recs := make([]*recorder, len(socks))
	for i, s := range socks {
		recs[i] = &recorder{wait: 20 * time.Millisecond}
		go s.Serve(recs[i])
	}
	send(t, socks[0].Addr(), 10, 100)
	deadline := time.Now().Add(5 * time.Second)
	for {
		total, ticks := 0, 0
		for _, r := range recs {
			n, tk := r.count()
			total += n
			ticks += tk
		}
		// Idle ticks keep coming after the datagrams (read deadline).
		if total == 10 && ticks > 12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d datagrams, %d ticks", total, ticks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(m.datagrams.WithLabelValues("t")); got != 10 {
		t.Errorf("datagram counter %v", got)
	}
	for _, s := range socks {
		s.Conn.Close()
	}
}

// A full receive buffer makes the kernel drop datagrams; SO_RXQ_OVFL
// reports them and they are counted.
func TestSocketDropsCounted(t *testing.T) {
	m := NewMetrics(nil)
	socks, err := Open(context.Background(), Config{Name: "d", Network: "udp4", Addr: "127.0.0.1:0", ReadBuffer: 4096}, m)
	if err != nil {
		t.Fatal(err)
	}
	s := socks[0]
	send(t, s.Addr(), 200, 1200) // far more than 8 KiB of buffer, nobody reading
	r := &recorder{}
	go s.Serve(r)
	// The kernel stamps each queued datagram with the drop count at that
	// moment: the count shows with the first datagram after the drops.
	time.Sleep(100 * time.Millisecond)
	send(t, s.Addr(), 1, 10)
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.drops.WithLabelValues("d")) == 0 {
		if time.Now().After(deadline) {
			n, _ := r.count()
			t.Fatalf("no drops counted (read %d of 200)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n, _ := r.count()
	if drops := testutil.ToFloat64(m.drops.WithLabelValues("d")); int(drops)+n != 201 {
		t.Errorf("read %d + dropped %v != 201 sent", n, drops)
	}
	s.Conn.Close()
}
