package deploy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// This file turns a container's securityContext into the process part
// of an OCI runtime spec the way a CRI runtime (containerd, CRI-O) does,
// so that runc enacts what a kubelet would.

// ociProcessSecurity is what a container's securityContext decides.
type ociProcessSecurity struct {
	User            ociUser
	Capabilities    ociCapabilities
	NoNewPrivileges bool
	ReadonlyRoot    bool
	Seccomp         *ociSeccomp // nil: unconfined
}

// defaultRuntimeCaps is containerd's and CRI-O's default capability set,
// which capabilities.drop and capabilities.add modify.
var defaultRuntimeCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// errNonRoot is the kubelet's refusal to start a container that would
// run as root under runAsNonRoot.
var errNonRoot = errors.New("runAsNonRoot and the container would run as root")

// enact derives the process's security from sc as a CRI runtime does
// for a container whose image has no USER of its own to fall back on:
//
//   - uid and gid from runAsUser and runAsGroup, refused as root under
//     runAsNonRoot, as the kubelet does;
//   - the runtime's default capabilities, minus drop (ALL: every one),
//     plus add, put in the bounding, permitted and effective sets; the
//     inheritable and ambient sets stay empty (containerd and CRI-O since
//     CVE-2022-24769). For a non-root user the kernel empties permitted
//     and effective at execve unless the file has capabilities: the
//     bounding set is what the broker's file capabilities draw on;
//   - noNewPrivileges when allowPrivilegeEscalation is false;
//   - a read-only root from readOnlyRootFilesystem;
//   - for seccompProfile RuntimeDefault, the part of the runtime's
//     default profile that matters here: no user namespaces.
func enact(sc *corev1.SecurityContext) (*ociProcessSecurity, error) {
	if sc == nil || sc.RunAsUser == nil || sc.RunAsGroup == nil {
		return nil, errors.New("want a securityContext with runAsUser and runAsGroup")
	}
	if isTrue(sc.Privileged) {
		return nil, errors.New("privileged containers are not enacted here")
	}
	if isTrue(sc.RunAsNonRoot) && *sc.RunAsUser == 0 {
		return nil, errNonRoot
	}

	capList, err := capabilitySet(sc.Capabilities)
	if err != nil {
		return nil, err
	}
	seccomp, err := seccompFor(sc.SeccompProfile)
	if err != nil {
		return nil, err
	}
	return &ociProcessSecurity{
		User: ociUser{UID: uint32(*sc.RunAsUser), GID: uint32(*sc.RunAsGroup)},
		Capabilities: ociCapabilities{
			Bounding: capList, Permitted: capList, Effective: capList,
			Inheritable: []string{}, Ambient: []string{},
		},
		NoNewPrivileges: sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
		ReadonlyRoot:    isTrue(sc.ReadOnlyRootFilesystem),
		Seccomp:         seccomp,
	}, nil
}

// capabilitySet applies drop, then add, to the runtime's defaults.
func capabilitySet(c *corev1.Capabilities) ([]string, error) {
	set := slices.Clone(defaultRuntimeCaps)
	if c == nil {
		return set, nil
	}
	for _, d := range c.Drop {
		if d == "ALL" {
			set = nil
			break
		}
		set = slices.DeleteFunc(set, func(s string) bool { return s == "CAP_"+string(d) })
	}
	for _, a := range c.Add {
		name := "CAP_" + strings.TrimPrefix(string(a), "CAP_")
		if a == "ALL" || strings.ToUpper(name) != name {
			return nil, fmt.Errorf("capability %q is not enacted here", a)
		}
		if !slices.Contains(set, name) {
			set = append(set, name)
		}
	}
	slices.Sort(set)
	return append([]string{}, set...), nil
}

// seccompFor returns the profile for p. Without a profile the kubelet
// runs the container unconfined (unless its SeccompDefault is on).
func seccompFor(p *corev1.SeccompProfile) (*ociSeccomp, error) {
	if p == nil || p.Type == corev1.SeccompProfileTypeUnconfined {
		return nil, nil
	}
	if p.Type != corev1.SeccompProfileTypeRuntimeDefault {
		return nil, fmt.Errorf("seccomp profile %s is not enacted here", p.Type)
	}
	return noUserNamespaces(), nil
}

// noUserNamespaces is the rule of Docker's, containerd's and CRI-O's
// default profiles that decides whether Chromium's sandbox can start:
// without CAP_SYS_ADMIN, no user namespaces (clone and unshare fail with
// EPERM, clone3 with ENOSYS so that callers fall back to clone).
func noUserNamespaces() *ociSeccomp {
	const cloneNewUser = 0x10000000
	eperm, enosys := uint(1), uint(38)
	newUser := []ociSeccompArg{{Index: 0, Value: cloneNewUser, ValueTwo: cloneNewUser, Op: "SCMP_CMP_MASKED_EQ"}}
	return &ociSeccomp{
		DefaultAction: "SCMP_ACT_ALLOW",
		Architectures: []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"},
		Syscalls: []ociSyscall{
			{Names: []string{"clone", "unshare"}, Action: "SCMP_ACT_ERRNO", ErrnoRet: &eperm, Args: newUser},
			{Names: []string{"clone3"}, Action: "SCMP_ACT_ERRNO", ErrnoRet: &enosys},
		},
	}
}

func TestEnact(t *testing.T) {
	base := loadBase(t).container(t).SecurityContext
	brokerSet := []string{"CAP_KILL", "CAP_SETGID", "CAP_SETUID"}

	tests := []struct {
		name     string
		edit     func(*corev1.SecurityContext)
		caps     []string
		nnp      bool
		readonly bool
		err      error
	}{
		{"deployment", func(*corev1.SecurityContext) {}, brokerSet, false, true, nil},
		{"no caps added", func(sc *corev1.SecurityContext) { sc.Capabilities.Add = nil }, nil, false, true, nil},
		{"no privilege escalation", func(sc *corev1.SecurityContext) {
			sc.AllowPrivilegeEscalation = new(false)
		}, brokerSet, true, true, nil},
		{"writable root", func(sc *corev1.SecurityContext) {
			sc.ReadOnlyRootFilesystem = nil
		}, brokerSet, false, false, nil},
		{"root under runAsNonRoot", func(sc *corev1.SecurityContext) { sc.RunAsUser = new(int64(0)) },
			nil, false, false, errNonRoot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := base.DeepCopy()
			tt.edit(sc)
			got, err := enact(sc)
			if !errors.Is(err, tt.err) {
				t.Fatalf("got error %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			c := got.Capabilities
			for _, set := range [][]string{c.Bounding, c.Permitted, c.Effective} {
				if !slices.Equal(set, tt.caps) && (len(set) != 0 || len(tt.caps) != 0) {
					t.Errorf("capabilities: got %v, want %v", set, tt.caps)
				}
			}
			if len(c.Ambient) != 0 || len(c.Inheritable) != 0 {
				t.Errorf("ambient %v, inheritable %v: want both empty", c.Ambient, c.Inheritable)
			}
			if got.NoNewPrivileges != tt.nnp || got.ReadonlyRoot != tt.readonly {
				t.Errorf("noNewPrivileges %v, readonly %v: want %v, %v",
					got.NoNewPrivileges, got.ReadonlyRoot, tt.nnp, tt.readonly)
			}
			if got.User.UID != appUID || got.Seccomp == nil {
				t.Errorf("uid %d, seccomp %v: want %d and the default profile", got.User.UID, got.Seccomp, appUID)
			}
		})
	}
}
