// Package listen owns the UDP sockets: N sockets per port with
// SO_REUSEPORT (the kernel spreads exporters over them, one read loop per
// socket), a configurable receive buffer, and the kernel's count of
// datagrams dropped because that buffer was full (SO_RXQ_OVFL).
package listen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// MaxDatagram is the largest UDP payload.
const MaxDatagram = 65535

// Config is one listening port.
type Config struct {
	Name       string // metric label, e.g. "netflow"
	Network    string // udp (dual-stack), udp4 or udp6
	Addr       string // host:port
	Sockets    int    // sockets sharing the port (SO_REUSEPORT)
	ReadBuffer int    // SO_RCVBUF bytes (0: system default)
}

// Metrics of the sockets, labelled by listener name.
type Metrics struct {
	datagrams, bytes, drops, readErrs *prometheus.CounterVec
	rcvbuf                            *prometheus.GaugeVec
}

// NewMetrics registers the socket metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		datagrams: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_socket_datagrams_total",
			Help: "Datagrams read from the socket."}, []string{"listener"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_socket_bytes_total",
			Help: "Payload bytes read from the socket."}, []string{"listener"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_socket_drops_total",
			Help: "Datagrams the kernel dropped because the receive buffer was full (SO_RXQ_OVFL)."}, []string{"listener"}),
		readErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_socket_read_errors_total",
			Help: "Socket read errors."}, []string{"listener"}),
		rcvbuf: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "collector_socket_receive_buffer_bytes",
			Help: "Receive buffer size the kernel granted."}, []string{"listener"}),
	}
	if reg != nil {
		reg.MustRegister(m.datagrams, m.bytes, m.drops, m.readErrs, m.rcvbuf)
	}
	return m
}

// Socket is one UDP socket of a listener.
type Socket struct {
	Conn *net.UDPConn
	name string
	m    *Metrics
	last uint32 // last SO_RXQ_OVFL value (cumulative per socket)

	datagrams, bytes, drops, readErrs prometheus.Counter
}

// Open opens cfg.Sockets sockets on the same address.
func Open(ctx context.Context, cfg Config, m *Metrics) ([]*Socket, error) {
	if cfg.Sockets <= 0 {
		cfg.Sockets = 1
	}
	if cfg.Network == "" {
		cfg.Network = "udp"
	}
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
				return
			}
			// Counting kernel drops costs one cmsg per datagram; worth it.
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
			if cfg.ReadBuffer > 0 {
				// RCVBUFFORCE passes net.core.rmem_max when we are root.
				if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.ReadBuffer) != nil {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.ReadBuffer)
				}
			}
		})
		return errors.Join(err, serr)
	}}
	var socks []*Socket
	addr := cfg.Addr
	for i := 0; i < cfg.Sockets; i++ {
		pc, err := lc.ListenPacket(ctx, cfg.Network, addr)
		if err != nil {
			for _, s := range socks {
				s.Conn.Close()
			}
			return nil, fmt.Errorf("listen %s %s: %w", cfg.Network, cfg.Addr, err)
		}
		// With port 0, later sockets must share the port the first got.
		addr = pc.LocalAddr().String()
		s := &Socket{Conn: pc.(*net.UDPConn), name: cfg.Name, m: m,
			datagrams: m.datagrams.WithLabelValues(cfg.Name), bytes: m.bytes.WithLabelValues(cfg.Name),
			drops: m.drops.WithLabelValues(cfg.Name), readErrs: m.readErrs.WithLabelValues(cfg.Name)}
		if rc, err := s.Conn.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) {
				if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
					m.rcvbuf.WithLabelValues(cfg.Name).Set(float64(v))
				}
			})
		}
		socks = append(socks, s)
	}
	return socks, nil
}

// Addr is the socket's local address.
func (s *Socket) Addr() netip.AddrPort { return s.Conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Handler processes datagrams of one socket (one goroutine).
type Handler interface {
	// Datagram handles one datagram; pkt is reused after it returns.
	Datagram(pkt []byte, src netip.Addr, now time.Time)
	// Tick is called after each datagram and when the socket was idle for
	// the wait Tick returned last (flush lingering batches). It returns
	// how long the loop may wait for the next call (0: no need).
	Tick(now time.Time) time.Duration
}

// Serve reads datagrams until the socket is closed (Close it to stop).
func (s *Socket) Serve(h Handler) error {
	buf := make([]byte, MaxDatagram)
	oob := make([]byte, unix.CmsgSpace(4))
	var deadline time.Time
	for {
		n, oobn, _, src, err := s.Conn.ReadMsgUDPAddrPort(buf, oob)
		now := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Pass the expired deadline: tick must re-arm or clear it,
				// or every later read fails at once and the loop spins
				// without ever reading again.
				deadline = s.tick(h, now, deadline)
				continue
			}
			s.readErrs.Inc()
			continue
		}
		s.datagrams.Inc()
		s.bytes.Add(float64(n))
		s.overflow(oob[:oobn])
		h.Datagram(buf[:n], src.Addr(), now)
		deadline = s.tick(h, now, deadline)
	}
}

// tick calls h.Tick and arms the read deadline it asks for; re-arming is
// skipped while the current deadline is still in the future.
func (s *Socket) tick(h Handler, now, deadline time.Time) time.Time {
	wait := h.Tick(now)
	if wait <= 0 {
		if !deadline.IsZero() {
			_ = s.Conn.SetReadDeadline(time.Time{})
		}
		return time.Time{}
	}
	if deadline.IsZero() || deadline.Before(now) {
		deadline = now.Add(wait)
		_ = s.Conn.SetReadDeadline(deadline)
	}
	return deadline
}

// overflow reads the SO_RXQ_OVFL control message: the socket's cumulative
// drop count, of which we add the increase.
func (s *Socket) overflow(oob []byte) {
	// struct cmsghdr: len (8 bytes on 64-bit), level (4), type (4), data.
	const hdr = 16
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob))
		level := int32(binary.NativeEndian.Uint32(oob[8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:]))
		if l < hdr || l > len(oob) {
			return
		}
		if level == unix.SOL_SOCKET && typ == unix.SO_RXQ_OVFL && l >= hdr+4 {
			v := binary.NativeEndian.Uint32(oob[hdr:])
			if d := v - s.last; d > 0 && d < 1<<31 {
				s.drops.Add(float64(d))
			}
			s.last = v
		}
		adv := unix.CmsgSpace(l - hdr)
		if adv > len(oob) {
			return
		}
		oob = oob[adv:]
	}
}
