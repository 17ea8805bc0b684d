package caps

import (
	"os"
	"testing"
)

const sample = `Name:	chromium-headle
Umask:	0077
State:	S (sleeping)
PPid:	4242
Uid:	65534	65534	65534	65534
Gid:	65534	65534	65534	65534
Groups:	
NSpid:	4300
CapInh:	0000000000000000
CapPrm:	00000000000000e0
CapEff:	00000000000000e0
CapBnd:	000001ffffffffff
CapAmb:	0000000000000000
NoNewPrivs:	1
Seccomp:	2
`

func TestParse(t *testing.T) {
	st, err := parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if st.Uid != [4]uint32{65534, 65534, 65534, 65534} || st.Gid[3] != 65534 {
		t.Errorf("got uids %v gids %v, want all 65534", st.Uid, st.Gid)
	}
	if len(st.Groups) != 0 {
		t.Errorf("got groups %v, want none", st.Groups)
	}
	if st.Permitted != BrokerSet || st.Effective != BrokerSet {
		t.Errorf("got permitted %#x effective %#x, want %#x", st.Permitted, st.Effective, uint64(BrokerSet))
	}
	if st.State != 'S' {
		t.Errorf("got state %q, want S", st.State)
	}
	if !st.NoNewPrivs || st.Seccomp != 2 || st.ParentPid != 4242 {
		t.Errorf("got no_new_privs %v seccomp %d ppid %d, want true 2 4242", st.NoNewPrivs, st.Seccomp, st.ParentPid)
	}
}

func TestParseRefusesTruncated(t *testing.T) {
	if _, err := parse([]byte("Name:\tx\nUid:\t1\t2\n")); err == nil {
		t.Fatal("got nil error for a truncated status, want one")
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		mask uint64
		want string
	}{
		{0, "none"},
		{BrokerSet, "cap_kill,cap_setgid,cap_setuid"},
		{1 << 63, "cap_63"},
	}
	for _, tt := range tests {
		if got := Format(tt.mask); got != tt.want {
			t.Errorf("Format(%#x) = %q, want %q", tt.mask, got, tt.want)
		}
	}
}

func TestSelf(t *testing.T) {
	st, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if int(st.Uid[0]) != os.Getuid() {
		t.Fatalf("got uid %d, want %d", st.Uid[0], os.Getuid())
	}
}
