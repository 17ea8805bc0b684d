package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"duochrome/internal/policy"
)

// Directories of the kustomize base, the overlay and the examples, and
// the image's policy.
const (
	baseDir     = "kubernetes/base"
	overlayDir  = "kubernetes/overlays/uid-pool"
	examplesDir = "kubernetes/examples"
	imagePolicy = "broker.json"
)

// kustomization is the part of kustomize's Kustomization these manifests
// use. It is decoded strictly, so a field added to a kustomization.yaml
// must be added here too, and checked.
type kustomization struct {
	APIVersion         string               `json:"apiVersion"`
	Kind               string               `json:"kind"`
	Resources          []string             `json:"resources"`
	ConfigMapGenerator []configMapGenerator `json:"configMapGenerator,omitempty"`
	Patches            []kustomizePatch     `json:"patches,omitempty"`
}

type configMapGenerator struct {
	Name  string   `json:"name"`
	Files []string `json:"files"`
}

type kustomizePatch struct {
	Path string `json:"path"`
}

// newObject returns the API type for each apiVersion and kind that a
// manifest may hold.
var newObject = map[string]func() any{
	"apps/v1 Deployment":                 func() any { return new(appsv1.Deployment) },
	"v1 Service":                         func() any { return new(corev1.Service) },
	"v1 ServiceAccount":                  func() any { return new(corev1.ServiceAccount) },
	"networking.k8s.io/v1 NetworkPolicy": func() any { return new(networkingv1.NetworkPolicy) },
	"policy/v1 PodDisruptionBudget":      func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2 HorizontalPodAutoscaler": func() any {
		return new(autoscalingv2.HorizontalPodAutoscaler)
	},
}

// decodeStrict decodes the one YAML document in path into v, failing on
// unknown and duplicate fields.
func decodeStrict(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(append([]byte("\n"), data...), []byte("\n---")) {
		t.Fatalf("%s: want one YAML document per file", path)
	}
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

// decodeObject decodes a manifest into the API type that its apiVersion
// and kind name, and returns the kind with it.
func decodeObject(t testing.TB, path string) (string, any) {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &meta); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}

	newObj, ok := newObject[meta.APIVersion+" "+meta.Kind]
	if !ok {
		t.Fatalf("%s: unexpected apiVersion %q kind %q", path, meta.APIVersion, meta.Kind)
	}
	obj := newObj()
	decodeStrict(t, path, obj)
	return meta.Kind, obj
}

// loadKustomization decodes dir's kustomization.yaml and checks that it
// names every YAML file in dir.
func loadKustomization(t testing.TB, dir string) *kustomization {
	t.Helper()
	var k kustomization
	decodeStrict(t, filepath.Join(dir, "kustomization.yaml"), &k)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("%s: got %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization",
			dir, k.APIVersion, k.Kind)
	}

	named := []string{"kustomization.yaml"}
	named = append(named, k.Resources...)
	for _, p := range k.Patches {
		named = append(named, p.Path)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !slices.Contains(named, filepath.Base(f)) {
			t.Errorf("%s is not named in %s/kustomization.yaml", f, dir)
		}
	}
	return &k
}

// base is the decoded kustomize base.
type base struct {
	Deployment     *appsv1.Deployment
	Service        *corev1.Service
	ServiceAccount *corev1.ServiceAccount
	NetworkPolicy  *networkingv1.NetworkPolicy
	PDB            *policyv1.PodDisruptionBudget
}

// loadBase decodes every resource of the base and requires one of each
// kind.
func loadBase(t testing.TB) *base {
	t.Helper()
	var b base
	seen := map[string]bool{}
	for _, r := range loadKustomization(t, baseDir).Resources {
		kind, obj := decodeObject(t, filepath.Join(baseDir, r))
		if seen[kind] {
			t.Fatalf("%s: a second %s", r, kind)
		}
		seen[kind] = true

		switch o := obj.(type) {
		case *appsv1.Deployment:
			b.Deployment = o
		case *corev1.Service:
			b.Service = o
		case *corev1.ServiceAccount:
			b.ServiceAccount = o
		case *networkingv1.NetworkPolicy:
			b.NetworkPolicy = o
		case *policyv1.PodDisruptionBudget:
			b.PDB = o
		}
	}
	if b.Deployment == nil || b.Service == nil || b.ServiceAccount == nil ||
		b.NetworkPolicy == nil || b.PDB == nil {
		t.Fatalf("the base lacks a kind: got %v", seen)
	}
	return &b
}

// container returns the Deployment's one container.
func (b *base) container(t testing.TB) *corev1.Container {
	t.Helper()
	spec := &b.Deployment.Spec.Template.Spec
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		t.Fatalf("got %d containers and %d init containers, want 1 and 0",
			len(spec.Containers), len(spec.InitContainers))
	}
	return &spec.Containers[0]
}

// loadPolicy decodes a broker policy file as the broker does (unknown
// keys fail) and validates it for a broker running as brokerUID.
func loadPolicy(t testing.TB, path string, brokerUID uint32) *policy.Policy {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := policy.Default()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if err := p.Validate(brokerUID); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

func TestManifestsDecodeStrictly(t *testing.T) {
	b := loadBase(t)
	pod := b.Deployment.Spec.Template

	checks := []struct {
		name string
		ok   bool
	}{
		{"deployment selector matches its pods", selects(b.Deployment.Spec.Selector.MatchLabels, pod.Labels)},
		{"service selects the pods", selects(b.Service.Spec.Selector, pod.Labels)},
		{"pdb selects the pods", selects(b.PDB.Spec.Selector.MatchLabels, pod.Labels)},
		{"network policy selects the pods", selects(b.NetworkPolicy.Spec.PodSelector.MatchLabels, pod.Labels)},
		{"pod runs as the service account", pod.Spec.ServiceAccountName == b.ServiceAccount.Name},
		{"no service account token", isFalse(pod.Spec.AutomountServiceAccountToken) &&
			isFalse(b.ServiceAccount.AutomountServiceAccountToken)},
		{"pdb allows one pod down at a time", b.PDB.Spec.MaxUnavailable != nil &&
			b.PDB.Spec.MaxUnavailable.IntValue() == 1},
		{"service keeps a client on one pod", b.Service.Spec.SessionAffinity == corev1.ServiceAffinityClientIP},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got false, want true", c.name)
		}
	}
}

// selects reports whether a selector matches labels; an empty one
// matches nothing here, as none of ours may be empty.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func isFalse(b *bool) bool { return b != nil && !*b }
func isTrue(b *bool) bool  { return b != nil && *b }
