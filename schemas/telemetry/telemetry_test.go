package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestEndpoints(t *testing.T) {
	s := NewServer()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "flowsentry_test_total", Help: "x"})
	s.Registry.MustRegister(c)
	c.Add(3)
	var notReady error = errors.New("kafka not connected")
	s.Ready("kafka", func() error { return notReady })
	if err := s.Start("127.0.0.1:0", s.Handler(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "flowsentry_test_total 3") {
		t.Fatalf("/metrics %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "kafka not connected") {
		t.Fatalf("/readyz not ready: %d %s", code, body)
	}
	notReady = nil
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz ready: %d", code)
	}
}
