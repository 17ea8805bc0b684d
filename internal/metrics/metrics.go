// Package metrics keeps the frontend's Prometheus metrics: sessions,
// the queue, the broker, browser exits and HTTP requests. Every name
// starts with duochrome_. Labels never hold a session id or a path: a
// request is counted by its route pattern.
//
// A nil *Metrics is valid and counts nothing, so that tests and callers
// without metrics need no guard.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session"
)

// Sources are where the gauges read their values when scraped.
type Sources struct {
	// Capacity reports the sessions' slots and queue. Required.
	Capacity func() session.Capacity

	// Broker reports the broker's health. Required.
	Broker func() brokerclient.Health
}

// Metrics holds the frontend's collectors in a registry of its own.
type Metrics struct {
	reg      *prometheus.Registry
	created  *prometheus.CounterVec   // mode
	failed   *prometheus.CounterVec   // mode, reason
	ended    *prometheus.CounterVec   // reason
	create   *prometheus.HistogramVec // mode
	lifetime prometheus.Histogram
	exits    *prometheus.CounterVec // reason, signal
	requests *prometheus.CounterVec // route, method, code
}

// New returns Metrics reading its gauges from src. It registers the Go
// runtime's and the process's standard collectors too.
func New(src Sources) *Metrics {
	m := newCounters()
	m.reg = prometheus.NewRegistry()
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.created, m.failed, m.ended, m.create, m.lifetime, m.exits, m.requests,
	)
	m.reg.MustRegister(gauges(src)...)

	for _, key := range session.EndKeys {
		m.ended.WithLabelValues(key) // every reason shows, at zero
	}
	return m
}

func newCounters() *Metrics {
	return &Metrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duochrome_sessions_created_total",
			Help: "Sessions whose browser started and answered CDP, by mode (rest or connect).",
		}, []string{"mode"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duochrome_sessions_failed_total",
			Help: "Session creations that failed after their options were accepted, by mode and reason.",
		}, []string{"mode", "reason"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duochrome_sessions_ended_total",
			Help: "Sessions that ended, by reason.",
		}, []string{"reason"}),
		create: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "duochrome_session_create_duration_seconds",
			Help:    "Time from a create request to a ready browser, queueing included, by mode.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60},
		}, []string{"mode"}),
		lifetime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "duochrome_session_duration_seconds",
			Help:    "How long sessions ran, from a ready browser to their end.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
		}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duochrome_browser_exits_total",
			Help: "Browser ends the broker reported, by reason (killed, exited, crashed) and signal (none if it exited).",
		}, []string{"reason", "signal"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duochrome_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
	}
}

// gauges read the Manager and the Supervisor at each scrape.
func gauges(src Sources) []prometheus.Collector {
	capacity := func(f func(session.Capacity) int) func() float64 {
		return func() float64 { return float64(f(src.Capacity())) }
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "duochrome_sessions_active",
			Help: "Sessions running that clients can use.",
		}, capacity(func(c session.Capacity) int { return c.Running })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "duochrome_sessions_max",
			Help: "Sessions that may run at once.",
		}, capacity(func(c session.Capacity) int { return c.Max })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "duochrome_queue_length",
			Help: "Session creations waiting for a free slot.",
		}, capacity(func(c session.Capacity) int { return c.Waiting })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "duochrome_queue_size",
			Help: "Session creations that may wait for a free slot.",
		}, capacity(func(c session.Capacity) int { return c.QueueSize })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "duochrome_broker_ready",
			Help: "1 while a broker runs that can start sessions, else 0.",
		}, func() float64 { return boolFloat(src.Broker().Ready) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "duochrome_broker_restarts_total",
			Help: "Brokers started to replace one that died.",
		}, func() float64 { return float64(src.Broker().Restarts) }),
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics are off", http.StatusNotFound)
		})
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// SessionCreated counts a session that became ready after d.
func (m *Metrics) SessionCreated(mode string, d time.Duration) {
	if m == nil {
		return
	}
	m.created.WithLabelValues(mode).Inc()
	m.create.WithLabelValues(mode).Observe(d.Seconds())
}

// CreateFailed counts a session creation that failed.
func (m *Metrics) CreateFailed(mode, reason string) {
	if m == nil {
		return
	}
	m.failed.WithLabelValues(mode, reason).Inc()
}

// SessionEnded counts a session that ended after running for lifetime; it
// fits session.Config.OnEnd.
func (m *Metrics) SessionEnded(reason string, lifetime time.Duration) {
	if m == nil {
		return
	}
	m.ended.WithLabelValues(reason).Inc()
	m.lifetime.Observe(lifetime.Seconds())
}

// Request counts an answered request by its route pattern ("" for one
// that matched none, such as a 404 or a refused method).
func (m *Metrics) Request(route, method string, code int) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	if code == 0 {
		code = http.StatusOK // a handler that wrote nothing
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
}

// Watcher wraps a broker Watcher so that browser exits are counted on
// their way to it.
func (m *Metrics) Watcher(next brokerclient.Watcher) brokerclient.Watcher {
	if m == nil {
		return next
	}
	return exitCounter{m: m, next: next}
}

type exitCounter struct {
	m    *Metrics
	next brokerclient.Watcher
}

func (e exitCounter) BrokerStarted(st *brokerclient.Status) { e.next.BrokerStarted(st) }
func (e exitCounter) BrokerLost(err error)                  { e.next.BrokerLost(err) }

func (e exitCounter) SessionExited(ex brokerclient.Exit) {
	signal := ex.Signal
	if signal == "" {
		signal = "none"
	}
	e.m.exits.WithLabelValues(ex.Reason, signal).Inc()
	e.next.SessionExited(ex)
}
