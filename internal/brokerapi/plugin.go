// Package brokerapi is the contract between the frontend and the broker:
// the gRPC service generated from broker.proto and the go-plugin glue that
// serves it over a unix socket with automatic mutual TLS.
package brokerapi

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative broker.proto

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// PluginName is the name under which the broker serves its one plugin.
const PluginName = "broker"

// Handshake is shared by both processes. The cookie is not a secret: it only
// keeps an operator who runs the broker by hand from starting it as a plugin
// by accident.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "DUOCHROME_BROKER",
	MagicCookieValue: "7d1f0c0e4b6a4f0e9a2b3c4d5e6f7a8b",
}

// FDPassFD is the descriptor number at which the broker inherits its end of
// the socketpair over which it sends each session's CDP pipe pair.
const FDPassFD = 3

// Plugin implements plugin.GRPCPlugin for the broker service. The broker
// sets Impl; the frontend leaves it nil.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin

	Impl BrokerServer
}

// GRPCServer registers the broker service.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	RegisterBrokerServer(s, p.Impl)
	return nil
}

// GRPCClient returns a BrokerClient for the connection.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewBrokerClient(c), nil
}

// PluginSet returns the plugin set both processes register.
func PluginSet(server BrokerServer) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &Plugin{Impl: server}}
}
