package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a service, so that a test can drop
// every client connection at once, as a broker that closes them would:
// for a broker with no command to do it (NATS).
type Proxy struct {
	// Addr is where clients connect instead of the service.
	Addr string

	target string
	ln     net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

// NewProxy listens on a free port of 127.0.0.1 and forwards to target
// until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Drop()
	})
	return p
}

func (p *Proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.track(client, server)
		go p.pipe(client, server)
		go p.pipe(server, client)
	}
}

func (p *Proxy) track(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		p.conns[c] = true
	}
}

// pipe copies from one side to the other; when either side ends, both do.
func (p *Proxy) pipe(from, to net.Conn) {
	_, _ = io.Copy(to, from) // ends on EOF, a reset or Drop alike
	_ = from.Close()
	_ = to.Close()
	p.mu.Lock()
	delete(p.conns, from)
	delete(p.conns, to)
	p.mu.Unlock()
}

// Drop closes every connection through the proxy; clients may connect
// again at once.
func (p *Proxy) Drop() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	n := len(p.conns)
	clear(p.conns)
	return n / 2
}
