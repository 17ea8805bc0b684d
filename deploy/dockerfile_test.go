package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"duochrome/internal/policy"
)

// The image's layout, which the runc test reproduces.
const (
	dockerfilePath = "../Dockerfile"
	frontendPath   = "/opt/duochrome/bin/frontend"
	brokerPath     = "/opt/duochrome/bin/broker"
	tiniPath       = "/usr/bin/tini"
	setcapArgs     = "cap_setuid,cap_setgid,cap_kill+ep"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line  int
	cmd   string // upper case: FROM, RUN, COPY, ...
	flags map[string]string
	args  string
}

// stage is the instructions from one FROM to the next.
type stage struct {
	from string // the FROM line's arguments
	ins  []instruction
}

var knownInstructions = []string{"FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER",
	"ENTRYPOINT", "CMD", "EXPOSE", "VOLUME", "LABEL", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}

// parseDockerfile splits a Dockerfile into stages, failing on anything
// it does not understand.
func parseDockerfile(t testing.TB, text string) []stage {
	t.Helper()
	var stages []stage
	for _, in := range instructions(t, text) {
		if in.cmd == "FROM" {
			stages = append(stages, stage{from: in.args})
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("line %d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		s := &stages[len(stages)-1]
		s.ins = append(s.ins, in)
	}
	return stages
}

// instructions joins continuation lines, drops comments and splits each
// instruction into its command, --flags and arguments.
func instructions(t testing.TB, text string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		out = append(out, splitInstruction(t, start, cur.String()))
		cur.Reset()
	}
	if cur.Len() != 0 {
		t.Fatalf("line %d: continuation at end of file", start)
	}
	return out
}

func splitInstruction(t testing.TB, line int, s string) instruction {
	t.Helper()
	cmd, rest, _ := strings.Cut(s, " ")
	in := instruction{line: line, cmd: strings.ToUpper(cmd), flags: map[string]string{}}
	if !slices.Contains(knownInstructions, in.cmd) {
		t.Fatalf("line %d: unknown instruction %q", line, cmd)
	}

	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		var flag string
		flag, rest, _ = strings.Cut(rest, " ")
		name, value, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		in.flags[name] = value
		rest = strings.TrimSpace(rest)
	}
	in.args = rest
	return in
}

// execForm decodes the JSON array of ENTRYPOINT or CMD.
func execForm(t testing.TB, in instruction) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(in.args), &argv); err != nil {
		t.Fatalf("line %d: %s must be in exec form (a JSON array): %v", in.line, in.cmd, err)
	}
	return argv
}

// image is what the final stage says about the runtime image.
type image struct {
	user       string
	entrypoint []string
	cmd        []string
	runs       []instruction
	copies     []instruction
	last       []instruction // every instruction, in order
}

func loadImage(t testing.TB) (*image, []stage) {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, string(data))
	if len(stages) < 2 {
		t.Fatalf("got %d stages, want a build stage and a runtime stage", len(stages))
	}

	img := &image{}
	final := stages[len(stages)-1]
	for _, in := range final.ins {
		img.last = append(img.last, in)
		switch in.cmd {
		case "USER":
			img.user = in.args
		case "ENTRYPOINT":
			img.entrypoint = execForm(t, in)
		case "CMD":
			img.cmd = execForm(t, in)
		case "RUN":
			img.runs = append(img.runs, in)
		case "COPY", "ADD":
			img.copies = append(img.copies, in)
		}
	}
	return img, stages
}

func TestDockerfileStages(t *testing.T) {
	img, stages := loadImage(t)
	build, final := stages[0], stages[len(stages)-1]

	var buildText strings.Builder
	for _, in := range build.ins {
		buildText.WriteString(in.cmd + " " + in.args + "\n")
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"runtime base", final.from, "debian:bookworm-slim"},
		{"build stage is named", strings.HasSuffix(build.from, " AS build"), true},
		{"cgo off", strings.Contains(buildText.String(), "ENV CGO_ENABLED=0"), true},
		{"builds the frontend", strings.Contains(buildText.String(), "./cmd/frontend"), true},
		{"builds the broker", strings.Contains(buildText.String(), "./cmd/broker"), true},
		{"entrypoint", img.entrypoint, []string{tiniPath, "--", frontendPath}},
		{"cmd --listen", flagValue(img.cmd, "--listen"), ":8080"},
		{"cmd needs a token", slices.ContainsFunc(slices.Concat(img.entrypoint, img.cmd), isInsecureNoToken), false},
		{"installs chromium", anyRun(img, "chromium-headless-shell"), true},
		{"installs tini", anyRun(img, " tini "), true},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func anyRun(img *image, s string) bool {
	return slices.ContainsFunc(img.runs, func(in instruction) bool { return strings.Contains(in.args+" ", s) })
}

// TestDockerfileUser checks that the final USER is numeric (so that
// runAsNonRoot can verify it) and the Deployment's user.
func TestDockerfileUser(t *testing.T) {
	img, _ := loadImage(t)
	uid, gid, ok := strings.Cut(img.user, ":")
	u, errU := strconv.Atoi(uid)
	g, errG := strconv.Atoi(gid)
	if !ok || errU != nil || errG != nil {
		t.Fatalf("USER: got %q, want numeric uid:gid", img.user)
	}
	if u == 0 || u != appUID || g != appGID {
		t.Errorf("USER: got %d:%d, want %d:%d", u, g, appUID, appGID)
	}
}

// setcapCall matches a setcap invocation and what follows it up to the
// end of its shell command.
var setcapCall = regexp.MustCompile(`(^|[;&|(\s])setcap\s+([^;&|)]*)`)

// TestDockerfileSetcapOnlyOnBroker checks that the one setcap in the file
// gives the broker exactly its three capabilities, in the final stage.
func TestDockerfileSetcapOnlyOnBroker(t *testing.T) {
	img, stages := loadImage(t)

	var calls []string
	for i, s := range stages {
		for _, in := range s.ins {
			for _, m := range setcapCall.FindAllStringSubmatch(in.args, -1) {
				if i != len(stages)-1 {
					t.Errorf("line %d: setcap outside the runtime stage", in.line)
				}
				calls = append(calls, strings.Join(strings.Fields(m[2]), " "))
			}
		}
	}
	want := []string{setcapArgs + " " + brokerPath}
	if !slices.Equal(calls, want) {
		t.Errorf("setcap calls: got %q, want %q", calls, want)
	}

	if !anyRun(img, "apt-get purge -y --auto-remove libcap2-bin") {
		t.Error("setcap stays in the image: want libcap2-bin purged")
	}
}

// TestDockerfileFileModes checks the owner and mode of every file the
// runtime stage copies in.
func TestDockerfileFileModes(t *testing.T) {
	img, _ := loadImage(t)
	want := map[string]string{
		frontendPath: "--from=build root:root 0755",
		brokerPath:   "--from=build root:10001 0750",
		policy.Path:  " root:root 0644",
	}

	got := map[string]string{}
	for _, in := range img.copies {
		if in.cmd == "ADD" {
			t.Errorf("line %d: ADD; use COPY", in.line)
		}
		fields := strings.Fields(in.args)
		dst := fields[len(fields)-1]
		from := ""
		if f, ok := in.flags["from"]; ok {
			from = "--from=" + f
		}
		got[dst] = from + " " + in.flags["chown"] + " " + in.flags["chmod"]
	}
	if !equal(got, want) {
		t.Errorf("copies: got %q, want %q", got, want)
	}
}

// TestDockerfileNoSetuidFiles checks that the last step that changes
// files clears every setuid and setgid bit and fails the build if one
// remains, and that no step sets one.
func TestDockerfileNoSetuidFiles(t *testing.T) {
	img, _ := loadImage(t)
	const (
		sweep  = "find / -xdev -type f -perm /6000 -exec chmod ug-s {} +"
		verify = "! find / -xdev -type f -perm /6000 | grep ."
	)
	setsID := regexp.MustCompile(`chmod\s+(-\S+\s+)*([ugoa]*\+[rwx]*s|[0-7]*[2-7][0-7]{3}\b)`)

	lastChange := -1
	for i, in := range img.last {
		if in.cmd == "RUN" || in.cmd == "COPY" || in.cmd == "ADD" {
			lastChange = i
		}
		if m := setsID.FindString(in.args); m != "" {
			t.Errorf("line %d: %q may set a setuid or setgid bit", in.line, m)
		}
		if mode := in.flags["chmod"]; mode != "" && len(mode) > 3 && mode[len(mode)-4] != '0' {
			t.Errorf("line %d: --chmod=%s sets special bits", in.line, mode)
		}
	}

	last := img.last[lastChange]
	if last.cmd != "RUN" || !strings.Contains(last.args, sweep) || !strings.Contains(last.args, verify) {
		t.Errorf("line %d: the last step that changes files is %s %q, want a RUN with %q and %q",
			last.line, last.cmd, last.args, sweep, verify)
	}
}

// TestDockerignoreKeepsSources checks that every file the build copies
// from the context is let through .dockerignore.
func TestDockerignoreKeepsSources(t *testing.T) {
	data, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	kept := strings.Fields(string(data))
	_, stages := loadImage(t)
	for _, s := range stages {
		for _, in := range s.ins {
			if in.cmd != "COPY" || in.flags["from"] != "" {
				continue
			}
			fields := strings.Fields(in.args)
			for _, src := range fields[:len(fields)-1] {
				src = strings.TrimPrefix(src, "./")
				if !slices.Contains(kept, "!"+src) && !slices.Contains(kept, "!"+src+"/") {
					t.Errorf("line %d: %s is excluded by .dockerignore", in.line, src)
				}
			}
		}
	}
}
