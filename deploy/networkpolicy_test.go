package deploy

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// TestNetworkPolicyEgress evaluates the NetworkPolicy's ipBlocks for
// addresses a browser must not reach and some it must. No traffic is
// sent: these are only values to test the rules with.
func TestNetworkPolicyEgress(t *testing.T) {
	np := loadBase(t).NetworkPolicy

	tests := []struct {
		name string
		addr string
		want bool
	}{
		{"cloud metadata", "169.254.169.254", false},
		{"aws metadata over ipv6", "fd00:ec2::254", false},
		{"alibaba metadata (cgnat)", "100.100.100.200", false},
		{"link-local", "169.254.1.1", false},
		{"rfc1918 10/8", "10.96.0.1", false},
		{"rfc1918 172.16/12", "172.20.0.1", false},
		{"rfc1918 192.168/16", "192.168.1.1", false},
		{"loopback", "127.0.0.1", false},
		{"ipv6 loopback", "::1", false},
		{"ipv6 link-local", "fe80::1", false},
		{"ipv6 unique local", "fd12:3456::1", false},
		{"ipv4-mapped private", "::ffff:10.0.0.1", false},
		{"this network", "0.0.0.1", false},
		{"public ipv4", "8.8.8.8", true},
		{"public ipv6", "2001:4860:4860::8888", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := egressAllows(np, netip.MustParseAddr(tt.addr))
			if got != tt.want {
				t.Errorf("egress to %s: got %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

// egressAllows reports whether some ipBlock rule of np admits addr, on
// any port. Rules that select pods admit no arbitrary address.
func egressAllows(np *networkingv1.NetworkPolicy, addr netip.Addr) bool {
	for _, rule := range np.Spec.Egress {
		if len(rule.To) == 0 {
			return true // a rule with no peers admits everything
		}
		for _, peer := range rule.To {
			if peer.IPBlock != nil && blockAdmits(peer.IPBlock, addr) {
				return true
			}
		}
	}
	return false
}

func blockAdmits(b *networkingv1.IPBlock, addr netip.Addr) bool {
	if !netip.MustParsePrefix(b.CIDR).Contains(addr) {
		return false
	}
	for _, ex := range b.Except {
		if netip.MustParsePrefix(ex).Contains(addr) {
			return false
		}
	}
	return true
}

// TestNetworkPolicyRules checks DNS egress, the ingress port and that
// both directions are policed.
func TestNetworkPolicyRules(t *testing.T) {
	np := loadBase(t).NetworkPolicy

	dns := map[corev1.Protocol]bool{}
	for _, rule := range np.Spec.Egress {
		for _, peer := range rule.To {
			if peer.PodSelector == nil || peer.PodSelector.MatchLabels["k8s-app"] != "kube-dns" {
				continue
			}
			for _, p := range rule.Ports {
				if p.Port != nil && p.Port.IntValue() == 53 && p.Protocol != nil {
					dns[*p.Protocol] = true
				}
			}
		}
	}

	ingressPorts := 0
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.String() != "http" {
				t.Errorf("ingress port: got %v, want http only", p.Port)
			}
			ingressPorts++
		}
	}

	tests := []struct {
		name      string
		got, want any
	}{
		{"policyTypes", len(np.Spec.PolicyTypes), 2},
		{"dns over udp to kube-dns", dns[corev1.ProtocolUDP], true},
		{"dns over tcp to kube-dns", dns[corev1.ProtocolTCP], true},
		{"ingress ports", ingressPorts, 1},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}
