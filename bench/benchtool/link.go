package benchtool

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/time/rate"
)

// Link is a TCP proxy whose answers (server to client) share one rate
// limit over all its connections, like the network line of one host: a
// client opening more connections gets no more bandwidth. (toxiproxy's
// bandwidth toxic limits each connection on its own, so it cannot stand
// for a host's line.)
type Link struct {
	ln   net.Listener
	lim  *rate.Limiter
	sent atomic.Int64 // bytes delivered to clients
}

// StartLink starts a link to upstream (HOST:PORT) on a free local port,
// passing bytesPerSec bytes per second towards the clients (requests go
// up unlimited: they are small); it closes in tb.Cleanup.
func StartLink(tb testing.TB, upstream string, bytesPerSec float64) *Link {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	l := &Link{ln: ln, lim: rate.NewLimiter(rate.Limit(bytesPerSec), 64<<10)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go l.serve(c, upstream)
		}
	}()
	tb.Cleanup(func() { ln.Close() })
	return l
}

// Addr is the link's HOST:PORT.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Sent is how many bytes the link delivered to its clients so far.
func (l *Link) Sent() int64 { return l.sent.Load() }

// MongoURI is uri (a server at host, HOST:PORT) reached through the
// link, connected directly (the server's own host list would bypass it).
func (l *Link) MongoURI(uri, host string) string {
	uri = strings.Replace(uri, host, l.Addr(), 1)
	switch {
	case strings.Contains(uri, "directConnection="):
		return uri
	case strings.Contains(uri, "?"):
		return uri + "&directConnection=true"
	case strings.Count(uri, "/") < 3:
		uri += "/"
	}
	return uri + "?directConnection=true"
}

func (l *Link) serve(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go func() {
		_, _ = io.Copy(u, c)
		_ = u.(*net.TCPConn).CloseWrite()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := u.Read(buf)
		if n > 0 {
			if l.lim.WaitN(context.Background(), n) != nil {
				return
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
			l.sent.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}
