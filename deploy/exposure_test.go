package deploy

import (
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"duochrome/internal/api"
)

// The token Secret that the operator creates (README, "Kubernetes"), and
// the flag that would serve without it.
const (
	tokenSecret     = "duochrome-token"
	tokenKey        = "token"
	insecureNoToken = "--insecure-no-token"
)

// TestDeploymentRequiresToken checks that the base serves only with a
// bearer token: read from a file that a Secret provides, read-only and
// readable by the frontend's group alone, and never the opt-out.
func TestDeploymentRequiresToken(t *testing.T) {
	b := loadBase(t)
	c := b.container(t)
	pod := &b.Deployment.Spec.Template.Spec

	m, v := tokenVolume(t, c, pod)
	argv := slices.Concat(c.Command, c.Args)
	tests := []struct {
		name      string
		got, want any
	}{
		{"no " + insecureNoToken, slices.ContainsFunc(argv, isInsecureNoToken), false},
		{"no DUOCHROME_INSECURE_NO_TOKEN", envVar(c, "DUOCHROME_INSECURE_NO_TOKEN") == nil, true},
		{"no token in the environment", envVar(c, "DUOCHROME_TOKEN") == nil, true},
		{"no --token flag", slices.ContainsFunc(argv, isTokenFlag), false},
		{"DUOCHROME_TOKEN_FILE", envValue(c, "DUOCHROME_TOKEN_FILE"), path.Join(m.MountPath, tokenKey)},
		{"mount readOnly", m.ReadOnly, true},
		{"mount subPath", m.SubPath, ""},
		{"secretName", v.Secret.SecretName, tokenSecret},
		{"items", v.Secret.Items, []corev1.KeyToPath{{Key: tokenKey, Path: tokenKey}}},
		{"secret required", v.Secret.Optional == nil || !*v.Secret.Optional, true},
		// Browsers run in the same container as other uids: the token
		// must not be readable by others, so the frontend reads it
		// through the group that fsGroup gives the file.
		{"defaultMode", deref(v.Secret.DefaultMode), int32(0o440)},
		{"fsGroup", fsGroup(pod), int64(appGID)},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// isInsecureNoToken reports whether arg is --insecure-no-token, in any
// of the spellings Go's flag package accepts.
func isInsecureNoToken(arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return strings.HasPrefix(arg, "-") && name == insecureNoToken[2:]
}

// isTokenFlag reports whether arg is --token, which puts the token where
// the Deployment's manifest and ps show it.
func isTokenFlag(arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return strings.HasPrefix(arg, "-") && name == "token"
}

func TestFlagSpellings(t *testing.T) {
	tests := []struct {
		arg             string
		insecure, token bool
	}{
		{"--insecure-no-token", true, false},
		{"-insecure-no-token", true, false},
		{"--insecure-no-token=true", true, false},
		{"--insecure-no-tokens", false, false},
		{"insecure-no-token", false, false},
		{"--token=0123456789abcdef", false, true},
		{"-token", false, true},
		{"--token-file=/run/secrets/duochrome/token", false, false},
	}
	for _, tt := range tests {
		if got := isInsecureNoToken(tt.arg); got != tt.insecure {
			t.Errorf("isInsecureNoToken(%q): got %v, want %v", tt.arg, got, tt.insecure)
		}
		if got := isTokenFlag(tt.arg); got != tt.token {
			t.Errorf("isTokenFlag(%q): got %v, want %v", tt.arg, got, tt.token)
		}
	}
}

// tokenVolume returns the container's mount of the token Secret and its
// volume.
func tokenVolume(t testing.TB, c *corev1.Container, pod *corev1.PodSpec) (corev1.VolumeMount, *corev1.Volume) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if v := podVolume(pod, m.Name); v != nil && v.Secret != nil && v.Secret.SecretName == tokenSecret {
			return m, v
		}
	}
	t.Fatalf("no mount of the Secret %s", tokenSecret)
	return corev1.VolumeMount{}, nil
}

func fsGroup(pod *corev1.PodSpec) any {
	if pod.SecurityContext == nil {
		return nil
	}
	return deref(pod.SecurityContext.FSGroup)
}

// TestDeploymentPublicURL checks that the URL of a REST session leads to
// the pod that holds it: --public-url names the pod's IP, from the
// downward API, and what the kubelet makes of it is a valid public URL.
func TestDeploymentPublicURL(t *testing.T) {
	c := loadBase(t).container(t)
	podIP := envVar(c, "POD_IP")
	if podIP == nil || podIP.ValueFrom == nil || podIP.ValueFrom.FieldRef == nil ||
		podIP.ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Fatalf("POD_IP: got %+v, want it from the field status.podIP", podIP)
	}
	if got, want := flagValue(c.Args, "--public-url"), "ws://$(POD_IP):8080"; got != want {
		t.Errorf("--public-url: got %q, want %q", got, want)
	}

	env := containerEnv(t, c, "10.1.2.3")
	expanded := expand(flagValue(c.Args, "--public-url"), env)
	u, err := api.ParsePublicURL(expanded)
	if err != nil {
		t.Fatalf("--public-url as the kubelet expands it: %v", err)
	}
	if got, want := u.String(), "ws://10.1.2.3:"+flagValue(c.Args, "--listen")[1:]; got != want {
		t.Errorf("public URL for pod IP 10.1.2.3: got %s, want %s (the --listen port)", got, want)
	}
}

// TestExpand checks the kubelet's $(VAR) expansion as expand does it.
func TestExpand(t *testing.T) {
	env := map[string]string{"POD_IP": "10.1.2.3", "EMPTY": ""}
	tests := []struct{ in, want string }{
		{"ws://$(POD_IP):8080", "ws://10.1.2.3:8080"},
		{"$(POD_IP)$(POD_IP)", "10.1.2.310.1.2.3"},
		{"$(UNSET)", "$(UNSET)"},
		{"[$(EMPTY)]", "[]"},
		{"$$(POD_IP)", "$(POD_IP)"},
		{"$$$(POD_IP)", "$10.1.2.3"},
		{"cost $5", "cost $5"},
		{"$(POD_IP", "$(POD_IP"},
		{"end $", "end $"},
	}
	for _, tt := range tests {
		if got := expand(tt.in, env); got != tt.want {
			t.Errorf("expand(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// envVar returns the container's variable called name, or nil.
func envVar(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// envValue is the literal value of the container's variable name.
func envValue(c *corev1.Container, name string) string {
	if v := envVar(c, name); v != nil {
		return v.Value
	}
	return ""
}

// containerEnv resolves the container's environment as the kubelet
// does, in order, each value expanded with the ones before it, for a pod
// whose IP is podIP. Other sources than status.podIP are not enacted.
func containerEnv(t testing.TB, c *corev1.Container, podIP string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, v := range c.Env {
		switch {
		case v.ValueFrom == nil:
			env[v.Name] = expand(v.Value, env)
		case v.ValueFrom.FieldRef != nil && v.ValueFrom.FieldRef.FieldPath == "status.podIP":
			env[v.Name] = podIP
		default:
			t.Fatalf("env %s: source %+v is not enacted here", v.Name, v.ValueFrom)
		}
	}
	return env
}

// expand replaces $(NAME) in s with env's NAME, as the kubelet expands
// a container's args, command and env: a name not in env stays as it
// is, and $$ is a literal $.
func expand(s string, env map[string]string) string {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			out.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			out.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				out.WriteString(s[i:])
				return out.String()
			}
			name := s[i+2 : i+end]
			if v, ok := env[name]; ok {
				out.WriteString(v)
			} else {
				out.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			out.WriteByte('$')
		}
	}
	return out.String()
}
