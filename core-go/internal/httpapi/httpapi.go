// Package httpapi is the core's HTTP interface (Gin): POST /work, GET /healthz, GET /stats,
// POST /stats/reset.
package httpapi

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/offload-lab/core/internal/stats"
	"github.com/offload-lab/core/internal/work"
)

// MaxBodyBytes bounds a POST /work body.
const MaxBodyBytes = 1 << 20

// ConsumerHealth is what /healthz says about the AMQP consumer.
type ConsumerHealth struct {
	Enabled   bool   `json:"enabled"`
	Connected bool   `json:"connected"`
	Queue     string `json:"queue,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Options configure the API.
type Options struct {
	WorkMS int                   // default work time of POST /work
	Stats  *stats.Stats          // shared with the consumer
	Health func() ConsumerHealth // nil: consumer disabled
}

func init() { gin.SetMode(gin.ReleaseMode) }

// New returns the HTTP handler.
func New(o Options) http.Handler {
	if o.Health == nil {
		o.Health = func() ConsumerHealth { return ConsumerHealth{} }
	}
	r := gin.New()
	r.Use(gin.Recovery())
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, gin.H{"error": "not found"}) })
	r.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, gin.H{"error": "method not allowed"})
	})

	r.POST("/work", func(c *gin.Context) {
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				c.JSON(http.StatusRequestEntityTooLarge, gin.H{"error": "body larger than 1 MiB"})
				return
			}
			c.JSON(http.StatusBadRequest, gin.H{"error": "cannot read body: " + err.Error()})
			return
		}
		ms, err := work.FromObject(body, o.WorkMS)
		if err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		start := time.Now()
		if err := work.Do(c.Request.Context(), time.Duration(ms)*time.Millisecond); err != nil {
			// the client went away (or the server is shutting down hard): nobody reads this
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "work interrupted: " + err.Error()})
			return
		}
		o.Stats.WorkRequest()
		c.JSON(http.StatusOK, gin.H{
			"worked_ms":  ms,
			"elapsed_ms": float64(time.Since(start).Microseconds()) / 1000,
		})
	})

	r.GET("/healthz", func(c *gin.Context) {
		h := o.Health()
		status := "ok"
		if h.Enabled && !h.Connected {
			status = "degraded"
		}
		c.JSON(http.StatusOK, gin.H{"status": status, "consumer": h})
	})

	r.GET("/stats", func(c *gin.Context) { c.JSON(http.StatusOK, o.Stats.Snapshot()) })
	r.POST("/stats/reset", func(c *gin.Context) { c.JSON(http.StatusOK, o.Stats.Reset()) })
	return r
}
