package broker

import (
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "duochrome/internal/brokerapi"
)

// FuzzLaunchRequest feeds the broker's launch validation with arbitrary
// wire bytes, as a compromised frontend could send them, and checks the
// invariants that make a request safe to act on: an accepted request names
// a plain session directory and yields an argv whose every switch is fixed
// or on the allowlist, with options confined to their own switches.
func FuzzLaunchRequest(f *testing.F) {
	seeds := []*pb.LaunchRequest{
		{SessionId: strings.Repeat("a", 32)},
		{SessionId: strings.Repeat("b", 32), Flags: []string{"--mute-audio"}},
		{SessionId: strings.Repeat("c", 32), Flags: []string{"--gpu-launcher=/bin/sh"}},
		{SessionId: "../" + strings.Repeat("d", 29)},
		{SessionId: strings.Repeat("e", 32), Options: &pb.BrowserOptions{
			WindowWidth: 800, WindowHeight: 600, Lang: "de-DE", Timezone: "Europe/Berlin", UserAgent: "x"}},
	}
	for _, s := range seeds {
		b, _ := proto.Marshal(s)
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, wire []byte) {
		req := &pb.LaunchRequest{}
		if proto.Unmarshal(wire, req) != nil {
			return
		}
		if (&Server{}).checkLaunch(req) != nil {
			return
		}
		if !sessionIDPattern.MatchString(req.SessionId) {
			t.Fatalf("accepted session id %q", req.SessionId)
		}
		dirs := sessionDirsAt("/data/s-0123")
		args := browserArgs(dirs, req, true)
		fixed := len(fixedArgs) + 1 // and --user-data-dir
		for i, a := range args[fixed:] {
			if !allowedOptionArg(a, req.Options) && !allowedFlags[a] {
				t.Fatalf("argument %d %q is neither fixed, an option, nor allowed", fixed+i, a)
			}
		}
		for _, kv := range browserEnv(dirs, req.Options) {
			if strings.ContainsAny(kv, "\x00\n") {
				t.Fatalf("environment entry %q contains a NUL or newline", kv)
			}
		}
	})
}

// allowedOptionArg reports whether a is the switch one typed option
// produces, carrying exactly that option's value.
func allowedOptionArg(a string, o *pb.BrowserOptions) bool {
	if o == nil {
		return false
	}
	switch {
	case strings.HasPrefix(a, "--window-size="):
		return a == "--window-size="+itoa(o.WindowWidth)+","+itoa(o.WindowHeight)
	case strings.HasPrefix(a, "--lang="):
		return a == "--lang="+o.Lang && !strings.ContainsAny(o.Lang, " =,")
	case strings.HasPrefix(a, "--accept-lang="):
		return a == "--accept-lang="+o.Lang && !strings.ContainsAny(o.Lang, " =,")
	case strings.HasPrefix(a, "--user-agent="):
		return a == "--user-agent="+o.UserAgent
	}
	return false
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
