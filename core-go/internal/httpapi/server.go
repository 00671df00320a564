package httpapi

import (
	"net/http"
	"time"
)

// Timeouts of the HTTP server. No write timeout: a POST /work may work up to 60 s (work.MaxMS).
type Timeouts struct {
	ReadHeader time.Duration // request line and headers
	Read       time.Duration // the whole request, body included
	Idle       time.Duration // a keep-alive connection between requests
}

// DefaultTimeouts: a client that trickles its headers or body is cut off; an idle keep-alive
// connection (the gateway's pool to the core) is kept 2 minutes.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Idle: 120 * time.Second}

// NewServer returns the http.Server for h with timeouts t.
func NewServer(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		IdleTimeout:       t.Idle,
	}
}
