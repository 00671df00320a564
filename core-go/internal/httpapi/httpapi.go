// Package httpapi is the core's HTTP interface (Gin): POST /work, GET /healthz, GET /stats,
// POST /stats/reset (with a bearer token). POST /work draws the same simulated failures as the
// consumer (package failure), from the body's task_id and attempt.
package httpapi

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/offload-lab/core/internal/failure"
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
	Broker    string `json:"broker,omitempty"` // the node consumed from (password redacted)
	LastError string `json:"last_error,omitempty"`
}

// Options configure the API.
type Options struct {
	WorkMS int                   // default work time of POST /work
	Stats  *stats.Stats          // shared with the consumer
	Health func() ConsumerHealth // nil: consumer disabled
	// ResetToken is the bearer token POST /stats/reset requires; empty: reset is refused.
	ResetToken string
	// WorkMaxConcurrent caps the POST /work requests worked at once (<= 0: no cap); one more
	// is answered 503 at once.
	WorkMaxConcurrent int
	// Failures are the simulated failures POST /work draws after the work (the core's
	// TRANSIENT_FAIL_RATE and PERMANENT_FAIL_RATE); a failed request is answered 500.
	Failures failure.Rates
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

	var workSlots chan struct{}
	if o.WorkMaxConcurrent > 0 {
		workSlots = make(chan struct{}, o.WorkMaxConcurrent)
	}
	r.POST("/work", func(c *gin.Context) {
		if workSlots != nil {
			select {
			case workSlots <- struct{}{}:
				defer func() { <-workSlots }()
			default:
				c.Header("Retry-After", "1")
				c.JSON(http.StatusServiceUnavailable, gin.H{"error": fmt.Sprintf(
					"busy: %d POST /work requests in progress (WORK_MAX_CONCURRENT)", o.WorkMaxConcurrent)})
				return
			}
		}
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
		id, attempt, err := workTask(body)
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
		if kind := o.Failures.Draw(id, attempt); kind != failure.None {
			o.Stats.WorkFailed(string(kind))
			c.JSON(http.StatusInternalServerError, gin.H{"error": fmt.Sprintf("task failed (%s)", kind)})
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
	r.POST("/stats/reset", func(c *gin.Context) {
		if o.ResetToken == "" {
			c.JSON(http.StatusForbidden, gin.H{"error": "stats reset is disabled: STATS_RESET_TOKEN is not set"})
			return
		}
		if !bearerMatches(c.GetHeader("Authorization"), o.ResetToken) {
			c.Header("WWW-Authenticate", `Bearer realm="offload-core"`)
			c.JSON(http.StatusUnauthorized, gin.H{"error": "stats reset needs the header Authorization: Bearer <STATS_RESET_TOKEN>"})
			return
		}
		c.JSON(http.StatusOK, o.Stats.Reset())
	})
	return r
}

// bearerMatches tells whether header is "Bearer <token>" (the scheme in any case), comparing
// the token in constant time.
func bearerMatches(header, token string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}
