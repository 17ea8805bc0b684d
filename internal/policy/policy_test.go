package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	const broker = 1000
	tests := []struct {
		name   string
		change func(p *Policy)
		want   string // substring of the error; "" for none
	}{
		{"default", func(p *Policy) {}, ""},
		{"relative browser", func(p *Policy) { p.BrowserPath = "chromium" }, "browser_path"},
		{"unclean browser", func(p *Policy) { p.BrowserPath = "/usr/lib/../bin/sh" }, "browser_path"},
		{"root in pool", func(p *Policy) { p.Pool = Pool{FirstUID: 0, Size: 10} }, "uid 0"},
		{"broker in pool", func(p *Policy) { p.Pool = Pool{FirstUID: 990, Size: 20} }, "broker's own uid"},
		{"empty pool", func(p *Policy) { p.Pool = Pool{FirstUID: 20000, Size: 0} }, "pool.size"},
		{"huge pool", func(p *Policy) { p.Pool = Pool{FirstUID: 20000, Size: MaxPoolSize + 1} }, "pool.size"},
		{"wrapping pool", func(p *Policy) { p.Pool = Pool{FirstUID: 1<<32 - 2, Size: 4} }, "4294967295"},
		{"relative data dir", func(p *Policy) { p.DataDir = "data" }, "data_dir"},
		{"sandbox require", func(p *Policy) { p.Sandbox = SandboxRequire }, ""},
		{"sandbox unknown", func(p *Policy) { p.Sandbox = "maybe" }, "sandbox"},
		{"sandbox empty", func(p *Policy) { p.Sandbox = "" }, "sandbox"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Default()
			p.DataDir = "/tmp/x"
			tt.change(p)
			err := p.Validate(broker)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		json string
		ok   bool
	}{
		{"pool", `{"pool": {"first_uid": 20000, "size": 64}}`, true},
		{"unknown key", `{"pool": {"first_uid": 20000, "size": 64}, "extra_flags": ["--gpu-launcher=x"]}`, false},
		{"unknown nested key", `{"pool": {"first_uid": 20000, "size": 64, "gid": 0}}`, false},
		{"trailing", `{} {}`, false},
		{"not an object", `[]`, false},
		{"negative uid", `{"pool": {"first_uid": -1, "size": 1}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decode([]byte(tt.json), Default())
			if got := err == nil; got != tt.ok {
				t.Fatalf("decode(%s) = %v, want ok=%v", tt.json, err, tt.ok)
			}
		})
	}
}

// TestLoadStrictModes checks that a policy file is read only when root
// alone could have written it and every directory above it.
func TestLoadStrictModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates root-owned and user-owned files")
	}
	// StrictModes refuses a sticky, world-writable parent such as /tmp,
	// so the test tree lives under /var/lib, which only root may write.
	root, err := os.MkdirTemp("/var/lib", "duochrome-policy-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(root, "broker.json")
	old := Path
	Path = path
	t.Cleanup(func() { Path = old })

	if p, err := Load(1000); err != nil || p.Source != "compiled-in defaults" {
		t.Fatalf("missing file: got %v, %v; want the defaults", p, err)
	}

	if err := os.WriteFile(path, []byte(`{"pool": {"first_uid": 20000, "size": 8}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(1000)
	if err != nil {
		t.Fatalf("root-owned 0644: %v", err)
	}
	if p.Pool.FirstUID != 20000 || p.Pool.Size != 8 || p.Source != path {
		t.Fatalf("got pool %+v from %s, want 20000/8 from %s", p.Pool, p.Source, path)
	}

	os.Chmod(path, 0o664)
	if _, err := Load(1000); !errors.Is(err, ErrInsecure) {
		t.Errorf("group-writable: got %v, want ErrInsecure", err)
	}
	os.Chmod(path, 0o644)

	os.Chown(path, 1000, 0)
	if _, err := Load(1000); !errors.Is(err, ErrInsecure) {
		t.Errorf("owned by uid 1000: got %v, want ErrInsecure", err)
	}
	os.Chown(path, 0, 0)

	os.Chmod(root, 0o777)
	if _, err := Load(1000); !errors.Is(err, ErrInsecure) {
		t.Errorf("world-writable directory: got %v, want ErrInsecure", err)
	}
	os.Chmod(root, 0o755)

	// A browser that a non-root user could replace is refused.
	browser := filepath.Join(root, "browser")
	os.WriteFile(browser, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(path, []byte(`{"browser_path": "`+browser+`"}`), 0o644)
	if _, err := Load(1000); err != nil {
		t.Errorf("root-owned browser: %v", err)
	}
	os.Chown(browser, 1000, 1000)
	if _, err := Load(1000); !errors.Is(err, ErrInsecure) {
		t.Errorf("browser owned by uid 1000: got %v, want ErrInsecure", err)
	}
	os.Chown(browser, 0, 0)
	os.Chmod(browser, 0o777)
	if _, err := Load(1000); !errors.Is(err, ErrInsecure) {
		t.Errorf("world-writable browser: got %v, want ErrInsecure", err)
	}
	os.WriteFile(path, []byte(`{"pool": {"first_uid": 20000, "size": 8}}`), 0o644)

	os.Rename(path, path+".real")
	os.Symlink(path+".real", path)
	if _, err := Load(1000); err == nil {
		t.Errorf("symbolic link: got nil error, want a refusal")
	}
}
