package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// testPodIP stands for the pod's IP (status.podIP): a container here
// has no interface but its loopback.
const testPodIP = "127.0.0.1"

// deployedRun is the Deployment's container as the kubelet would run
// it: the image's ENTRYPOINT with the container's args (which replace
// the image's CMD), its environment resolved and $(VAR) expanded, the
// pod's fsGroup, and a fresh token in the Secret's volume.
func deployedRun(t *testing.T, b *base, img *image, work string) podRun {
	t.Helper()
	c := b.container(t)
	pod := &b.Deployment.Spec.Template.Spec
	env := containerEnv(t, c, testPodIP)

	args := slices.Clone(img.entrypoint)
	for _, a := range c.Args {
		args = append(args, expand(a, env))
	}
	var envList []string
	for _, v := range c.Env {
		envList = append(envList, v.Name+"="+env[v.Name])
	}

	run := podRun{sc: c.SecurityContext, args: args, env: envList}
	if pod.SecurityContext != nil && pod.SecurityContext.FSGroup != nil {
		run.fsGroup = *pod.SecurityContext.FSGroup
	}
	m, v := tokenVolume(t, c, pod)
	mode := os.FileMode(0o644) // the API server's default for a Secret volume
	if v.Secret.DefaultMode != nil {
		mode = os.FileMode(*v.Secret.DefaultMode)
	}
	run.token = writeToken(t, work, m.MountPath, v.Secret.Items[0].Path, mode, run.fsGroup)
	return run
}

// writeToken writes a random token into a fresh host directory as the
// kubelet writes a Secret's key: owned by root and, with an fsGroup, by
// that group, with the volume's defaultMode plus read for the group
// (SetVolumeOwnership on a read-only volume).
func writeToken(t *testing.T, work, mountPath, name string, mode os.FileMode, fsGroup int64) *tokenFile {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	tok := &tokenFile{value: hex.EncodeToString(raw), hostDir: filepath.Join(work, "token-secret"),
		mountPath: mountPath}

	if err := os.Mkdir(tok.hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tok.hostDir, name)
	if err := os.WriteFile(file, []byte(tok.value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fsGroup != 0 {
		mode |= 0o440
		if err := os.Chown(file, 0, int(fsGroup)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
	return tok
}
