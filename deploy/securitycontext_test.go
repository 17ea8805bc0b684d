package deploy

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"duochrome/internal/policy"
)

// The image's user, which the Dockerfile's USER and the Deployment's
// runAsUser and runAsGroup must both name.
const (
	appUID = 10001
	appGID = 10001
)

// brokerCaps are what the broker's file capabilities name, in
// Kubernetes spelling.
var brokerCaps = []corev1.Capability{"SETUID", "SETGID", "KILL"}

func TestDeploymentSecurityContext(t *testing.T) {
	b := loadBase(t)
	c := b.container(t)
	pod := &b.Deployment.Spec.Template.Spec
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("the container has no securityContext with capabilities")
	}

	tests := []struct {
		name      string
		got, want any
	}{
		{"runAsNonRoot", isTrue(sc.RunAsNonRoot), true},
		{"runAsUser", deref(sc.RunAsUser), int64(appUID)},
		{"runAsGroup", deref(sc.RunAsGroup), int64(appGID)},
		{"privileged", isTrue(sc.Privileged), false},
		{"readOnlyRootFilesystem", isTrue(sc.ReadOnlyRootFilesystem), true},
		// no_new_privs would make the kernel ignore the broker's file
		// capabilities: row 5 of the capability table.
		{"allowPrivilegeEscalation", isTrue(sc.AllowPrivilegeEscalation), true},
		{"capabilities.drop", sc.Capabilities.Drop, []corev1.Capability{"ALL"}},
		{"capabilities.add", sorted(sc.Capabilities.Add), sorted(brokerCaps)},
		{"seccompProfile", seccompType(pod, sc), corev1.SeccompProfileTypeRuntimeDefault},
		{"procMount", sc.ProcMount == nil || *sc.ProcMount == corev1.DefaultProcMount, true},
		{"hostNetwork", pod.HostNetwork, false},
		{"hostPID", pod.HostPID, false},
		{"hostIPC", pod.HostIPC, false},
		{"pod-level runAsUser", pod.SecurityContext == nil || pod.SecurityContext.RunAsUser == nil ||
			*pod.SecurityContext.RunAsUser == appUID, true},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// seccompType is the profile the container runs with: its own, else the
// pod's.
func seccompType(pod *corev1.PodSpec, sc *corev1.SecurityContext) corev1.SeccompProfileType {
	if sc.SeccompProfile != nil {
		return sc.SeccompProfile.Type
	}
	if pod.SecurityContext != nil && pod.SecurityContext.SeccompProfile != nil {
		return pod.SecurityContext.SeccompProfile.Type
	}
	return ""
}

func TestDeploymentProbesPortsAndResources(t *testing.T) {
	b := loadBase(t)
	c := b.container(t)

	port := containerPort(c, "http")
	tests := []struct {
		name      string
		got, want any
	}{
		{"http containerPort", port, int32(8080)},
		{"--listen", flagValue(c.Args, "--listen"), ":8080"},
		{"readinessProbe", httpProbe(c.ReadinessProbe), "/readyz http"},
		{"livenessProbe", httpProbe(c.LivenessProbe), "/healthz http"},
		{"startupProbe", httpProbe(c.StartupProbe), "/healthz http"},
		{"service targetPort", b.Service.Spec.Ports[0].TargetPort, intstr.FromString("http")},
		{"cpu request set", !c.Resources.Requests.Cpu().IsZero(), true},
		{"memory request set", !c.Resources.Requests.Memory().IsZero(), true},
		{"memory limit set", !c.Resources.Limits.Memory().IsZero(), true},
		{"image", strings.HasPrefix(c.Image, "duochrome"), true},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestDeploymentWritesOnlySessionData checks the container's two
// mounts: the one writable path is an emptyDir holding the policy's data
// directory, which is also where the broker's plugin socket goes (/tmp:
// the broker clears TMPDIR); the other is the token, read-only from a
// Secret (TestDeploymentRequiresToken checks it further).
func TestDeploymentWritesOnlySessionData(t *testing.T) {
	b := loadBase(t)
	c := b.container(t)
	pod := &b.Deployment.Spec.Template.Spec
	if len(c.VolumeMounts) != 2 || len(pod.Volumes) != 2 {
		t.Fatalf("got %d mounts and %d volumes, want 2 and 2 (/tmp and the token)",
			len(c.VolumeMounts), len(pod.Volumes))
	}

	var writable []corev1.VolumeMount
	for _, m := range c.VolumeMounts {
		v := podVolume(pod, m.Name)
		switch {
		case v == nil:
			t.Errorf("mount %s: no volume %q", m.MountPath, m.Name)
		case !m.ReadOnly:
			writable = append(writable, m)
		case v.Secret == nil:
			t.Errorf("read-only mount %s: got %+v, want a Secret", m.MountPath, v.VolumeSource)
		}
	}
	if len(writable) != 1 {
		t.Fatalf("got %d writable mounts, want 1 (/tmp)", len(writable))
	}

	m, v := writable[0], podVolume(pod, writable[0].Name)
	if v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil {
		t.Errorf("volume %q: got %+v, want an emptyDir with a sizeLimit", m.Name, v.VolumeSource)
	}
	if m.MountPath != "/tmp" || m.SubPath != "" {
		t.Errorf("mount: got %s (subPath %q), want /tmp", m.MountPath, m.SubPath)
	}
	pol := loadPolicy(t, imagePolicy, appUID)
	if !strings.HasPrefix(pol.DataDir, m.MountPath+"/") {
		t.Errorf("policy data_dir: got %s, want it under %s", pol.DataDir, m.MountPath)
	}
}

// podVolume returns the pod's volume called name, or nil.
func podVolume(pod *corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// TestOverlayUIDPool checks the uid-pool overlay: its policy is valid
// for the image's user, and the patch mounts it over the image's policy
// as a plain read-only file.
func TestOverlayUIDPool(t *testing.T) {
	k := loadKustomization(t, overlayDir)
	if !slices.Equal(k.Resources, []string{"../../base"}) {
		t.Fatalf("resources: got %v, want [../../base]", k.Resources)
	}
	if len(k.ConfigMapGenerator) != 1 || !slices.Equal(k.ConfigMapGenerator[0].Files, []string{"broker.json"}) ||
		len(k.Patches) != 1 {
		t.Fatalf("got generators %+v and patches %+v, want one of each", k.ConfigMapGenerator, k.Patches)
	}

	pol := loadPolicy(t, filepath.Join(overlayDir, "broker.json"), appUID)
	if pol.Pool.Size < 2 {
		t.Errorf("pool size: got %d, want a pool", pol.Pool.Size)
	}

	_, obj := decodeObject(t, filepath.Join(overlayDir, k.Patches[0].Path))
	patch, ok := obj.(*appsv1.Deployment)
	if !ok {
		t.Fatalf("patch: got %T, want a Deployment", obj)
	}
	checkPolicyPatch(t, patch, k.ConfigMapGenerator[0].Name, loadBase(t).container(t).Name)
}

// checkPolicyPatch checks that patch mounts the ConfigMap named cm, key
// broker.json, at the broker's policy path in the container named name.
func checkPolicyPatch(t *testing.T, patch *appsv1.Deployment, cm, name string) {
	t.Helper()
	spec := patch.Spec.Template.Spec
	if len(spec.Containers) != 1 || spec.Containers[0].Name != name ||
		len(spec.Containers[0].VolumeMounts) != 1 || len(spec.Volumes) != 1 {
		t.Fatalf("patch: want one mount in container %s and one volume, got %+v", name, spec)
	}
	m, v := spec.Containers[0].VolumeMounts[0], spec.Volumes[0]

	tests := []struct {
		name      string
		got, want any
	}{
		{"mountPath", m.MountPath, policy.Path},
		{"subPath", m.SubPath, "broker.json"},
		{"readOnly", m.ReadOnly, true},
		{"volume name", v.Name, m.Name},
		{"configMap", v.ConfigMap != nil && v.ConfigMap.Name == cm, true},
		// Not writable by group or others, or the broker refuses it.
		{"defaultMode", v.ConfigMap != nil && v.ConfigMap.DefaultMode != nil &&
			*v.ConfigMap.DefaultMode&0o022 == 0, true},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("patch %s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func equal(got, want any) bool { return reflect.DeepEqual(got, want) }

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func sorted(caps []corev1.Capability) []corev1.Capability {
	return slices.Sorted(slices.Values(caps))
}

func containerPort(c *corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// httpProbe is "path port" of an HTTP GET probe.
func httpProbe(p *corev1.Probe) string {
	if p == nil || p.HTTPGet == nil {
		return "(none)"
	}
	return p.HTTPGet.Path + " " + p.HTTPGet.Port.String()
}
