package deploy

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"duochrome/internal/policy"
	"duochrome/internal/testenv"
)

// chromiumDir is where Debian's packages put Chromium, in the image and
// on this machine.
const chromiumDir = "/usr/lib/chromium"

// rootfs is a root file system laid out as the image is (see the
// Dockerfile): the freshly built binaries with the image's owners and
// modes, tini, the shared libraries Chromium and tini load, the image's
// policy and users. Chromium itself and the fonts are bind-mounted
// read-only from this machine, which installed them from the same
// Debian packages the image does.
type rootfs struct {
	dir         string // the root file system
	work        string // everything else: bundles, state, volumes
	plainBroker string // the broker without file capabilities
	binds       []ociMount
}

// buildRootfs assembles the root file system under a fresh root-owned
// directory, which must not be on a nosuid mount: file capabilities are
// ignored there.
func buildRootfs(t *testing.T) *rootfs {
	t.Helper()
	work := testenv.InstallDir(t)
	if opts, err := exec.Command("findmnt", "-n", "-o", "OPTIONS", "-T", work).Output(); err == nil &&
		strings.Contains(","+strings.TrimSpace(string(opts))+",", ",nosuid,") {
		t.Fatalf("%s is on a nosuid mount: the broker's file capabilities would be ignored", work)
	}
	r := &rootfs{dir: filepath.Join(work, "rootfs"), work: work}

	r.mkdirs(t)
	r.installBinaries(t)
	r.copyHostFiles(t, hostFiles(t)...)
	r.writeIdentity(t)
	for _, p := range []string{chromiumDir, "/etc/fonts", "/usr/share/fonts"} {
		if _, err := os.Stat(p); err == nil {
			r.binds = append(r.binds, readOnlyBind(p))
		}
	}
	return r
}

// mkdirs creates the directory tree, root-owned and 0755, and the merged
// /usr symbolic links of Debian 12.
func (r *rootfs) mkdirs(t *testing.T) {
	t.Helper()
	dirs := []string{"", "etc/duochrome", "opt/duochrome/bin", "usr/bin", "usr/sbin", "usr/lib64",
		"usr/lib/x86_64-linux-gnu", chromiumDir, "etc/fonts", "usr/share/fonts",
		"proc", "dev", "sys", "tmp"}
	for _, d := range dirs {
		path := filepath.Join(r.dir, d)
		if err := os.MkdirAll(path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := os.Symlink("usr/"+l, filepath.Join(r.dir, l)); err != nil {
			t.Fatal(err)
		}
	}
}

// installBinaries builds the frontend and the broker as the Dockerfile
// does and installs them and the policy with the image's owners and
// modes.
func (r *rootfs) installBinaries(t *testing.T) {
	t.Helper()
	build := filepath.Join(r.work, "build")
	if err := os.Mkdir(build, 0o700); err != nil {
		t.Fatal(err)
	}
	testenv.Build(t, "duochrome/cmd/frontend", filepath.Join(build, "frontend"), "")
	testenv.Build(t, "duochrome/cmd/broker", filepath.Join(build, "broker"), "")

	testenv.Install(t, filepath.Join(build, "frontend"), r.path(frontendPath), 0, 0, 0o755)
	testenv.Install(t, filepath.Join(build, "broker"), r.path(brokerPath), 0, appGID, 0o750)
	testenv.Setcap(t, r.path(brokerPath))

	// The same broker without file capabilities, for the rows of the
	// capability table that lack them; bind-mounted over the real one.
	r.plainBroker = filepath.Join(r.work, "broker-without-file-caps")
	testenv.Install(t, filepath.Join(build, "broker"), r.plainBroker, 0, appGID, 0o750)

	testenv.Install(t, imagePolicy, r.path(policy.Path), 0, 0, 0o644)
}

// hostFiles are the files the rootfs takes from this machine with
// their shared libraries: tini, and the NSS modules that libnss3 loads
// at run time. Chromium's own files are listed for their libraries only:
// its directory is bind-mounted.
func hostFiles(t *testing.T) []string {
	t.Helper()
	files := []string{testenv.RequireCommand(t, "tini"),
		filepath.Join(chromiumDir, "chromium-headless-shell")}
	libs, err := filepath.Glob(filepath.Join(chromiumDir, "*.so*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if !strings.HasSuffix(l, ".TOC") {
			files = append(files, l)
		}
	}
	for _, m := range []string{"libsoftokn3.so", "libfreebl3.so", "libnssckbi.so"} {
		if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/" + m); err == nil {
			files = append(files, "/usr/lib/x86_64-linux-gnu/"+m)
		}
	}
	return files
}

// copyHostFiles copies files and every library that ldd lists for them
// into the rootfs at the same paths, except what is under chromiumDir.
func (r *rootfs) copyHostFiles(t *testing.T, files ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range files {
		for _, path := range append([]string{f}, ldd(t, f)...) {
			if seen[path] || strings.HasPrefix(path, chromiumDir+"/") {
				continue
			}
			seen[path] = true
			r.copyFile(t, path)
		}
	}
}

// ldd returns the absolute paths of the shared libraries file needs.
func ldd(t *testing.T, file string) []string {
	t.Helper()
	out, err := exec.Command("ldd", file).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", file, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		case strings.Contains(sc.Text(), "not found"):
			t.Fatalf("ldd %s: %s", file, sc.Text())
		}
	}
	return libs
}

// copyFile copies the host file path (following symbolic links) to the
// same path inside the rootfs, resolving the directory as the host does
// (/lib is usr/lib on both).
func (r *rootfs) copyFile(t *testing.T, path string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	dst := r.path(filepath.Join(dir, filepath.Base(path)))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}

	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, src); err != nil {
		t.Fatalf("copy %s: %v", path, err)
	}
}

// writeIdentity writes the image's users and groups: root, nobody and
// the frontend's user.
func (r *rootfs) writeIdentity(t *testing.T) {
	t.Helper()
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
			"duochrome:x:10001:10001::/nonexistent:/usr/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":         "root:x:0:\nduochrome:x:10001:\nnogroup:x:65534:\n",
		"etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
		"etc/hosts":         "127.0.0.1 localhost\n::1 localhost\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// path is the host path of a path inside the rootfs.
func (r *rootfs) path(p string) string {
	return filepath.Join(r.dir, p)
}
