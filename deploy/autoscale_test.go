package deploy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"duochrome/internal/brokerclient"
	"duochrome/internal/metrics"
	"duochrome/internal/session"
)

// TestExamples decodes every example manifest strictly; each must be a
// kind that a test below checks.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no examples in %s", examplesDir)
	}
	for _, f := range files {
		kind, _ := decodeObject(t, f)
		if kind != "HorizontalPodAutoscaler" {
			t.Errorf("%s: got a %s, want only checked kinds", f, kind)
		}
	}
}

// TestHorizontalPodAutoscaler checks the autoscaling example: it scales
// the base's Deployment, on Pods metrics that the frontend exports as
// gauges, with sane bounds and a slow scale-down (removing a pod ends
// its sessions).
func TestHorizontalPodAutoscaler(t *testing.T) {
	_, obj := decodeObject(t, filepath.Join(examplesDir, "horizontalpodautoscaler.yaml"))
	hpa, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		t.Fatalf("got %T, want a HorizontalPodAutoscaler", obj)
	}
	deploy := loadBase(t).Deployment
	spec := hpa.Spec

	tests := []struct {
		name      string
		got, want any
	}{
		{"scaleTargetRef", spec.ScaleTargetRef, autoscalingv2.CrossVersionObjectReference{
			APIVersion: "apps/v1", Kind: "Deployment", Name: deploy.Name}},
		{"minReplicas at least the PDB's one down", spec.MinReplicas != nil && *spec.MinReplicas >= 2, true},
		{"maxReplicas above minReplicas", spec.MinReplicas != nil && spec.MaxReplicas > *spec.MinReplicas, true},
		{"metrics", len(spec.Metrics) > 0, true},
		{"slow scale-down", spec.Behavior != nil && spec.Behavior.ScaleDown != nil &&
			deref(spec.Behavior.ScaleDown.StabilizationWindowSeconds) != nil, true},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}

	exported := frontendMetrics(t)
	for i, m := range spec.Metrics {
		if m.Type != autoscalingv2.PodsMetricSourceType || m.Pods == nil {
			t.Errorf("metric %d: got type %s, want Pods", i, m.Type)
			continue
		}
		name := m.Pods.Metric.Name
		if !strings.Contains(exported, "# TYPE "+name+" gauge\n") {
			t.Errorf("metric %s: the frontend exports no gauge of that name", name)
		}
		if m.Pods.Target.Type != autoscalingv2.AverageValueMetricType || m.Pods.Target.AverageValue == nil ||
			m.Pods.Target.AverageValue.Sign() <= 0 {
			t.Errorf("metric %s: got target %+v, want a positive AverageValue", name, m.Pods.Target)
		}
	}
	if !strings.Contains(exported, "# TYPE duochrome_sessions_max gauge\n") {
		t.Error("the frontend exports no duochrome_sessions_max gauge, which README names")
	}
}

// frontendMetrics is what the frontend's /metrics serves.
func frontendMetrics(t *testing.T) string {
	t.Helper()
	m := metrics.New(metrics.Sources{
		Capacity: func() session.Capacity { return session.Capacity{Max: 1} },
		Broker:   func() brokerclient.Health { return brokerclient.Health{} },
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	if err != nil || rec.Code != http.StatusOK {
		t.Fatalf("scrape: got %d (%v), want 200", rec.Code, err)
	}
	return string(body)
}
