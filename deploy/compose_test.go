package deploy

import (
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// composeFile is the part of deploy/compose.yaml that the test checks;
// unknown fields are allowed, as compose has many.
type composeFile struct {
	Services map[string]struct {
		Command     []string          `json:"command"`
		Environment map[string]string `json:"environment"`
		Ports       []string          `json:"ports"`
		ReadOnly    bool              `json:"read_only"`
		User        string            `json:"user"`
	} `json:"services"`
}

// TestComposeRequiresToken checks that compose, like the image and the
// Deployment, serves only with a token (compose refuses to start while
// DUOCHROME_TOKEN is unset) and publishes the port on loopback only.
func TestComposeRequiresToken(t *testing.T) {
	var f composeFile
	decodeLoose(t, "compose.yaml", &f)
	svc, ok := f.Services["duochrome"]
	if !ok {
		t.Fatalf("no service duochrome in compose.yaml")
	}

	// ${VAR:?message}: compose stops with the message while VAR is unset.
	required := "${DUOCHROME_TOKEN:?"
	tests := []struct {
		name      string
		got, want any
	}{
		{"no " + insecureNoToken, slices.ContainsFunc(svc.Command, isInsecureNoToken), false},
		{"DUOCHROME_TOKEN required", strings.HasPrefix(svc.Environment["DUOCHROME_TOKEN"], required), true},
		{"ports on loopback", !slices.ContainsFunc(svc.Ports, func(p string) bool {
			return !strings.HasPrefix(p, "127.0.0.1:")
		}), true},
		{"read_only", svc.ReadOnly, true},
		{"user", svc.User, "10001:10001"},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// decodeLoose decodes the YAML file path into v, ignoring unknown fields.
func decodeLoose(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}
