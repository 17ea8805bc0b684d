package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// minTokenLen keeps a token out of reach of guessing over the network.
const minTokenLen = 16

// loadToken returns the bearer token from --token or --token-file (or
// their environment variables), or "" for none.
func loadToken(o options) (string, error) {
	t := o.token
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("read --token-file: %w", err)
		}
		t = strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("--token-file %s is empty", o.tokenFile)
		}
	}
	if t != "" && len(t) < minTokenLen {
		return "", fmt.Errorf("the token has %d characters, at least %d are needed "+
			"(for example: openssl rand -hex 32)", len(t), minTokenLen)
	}
	return t, nil
}

// errExposed refuses to serve a non-loopback address without a token.
var errExposed = errors.New("refusing to listen on an address other than loopback without a " +
	"token: anyone who reaches it could drive every browser; give a token of at least 16 " +
	"characters (openssl rand -hex 32) in a file named by --token-file or DUOCHROME_TOKEN_FILE " +
	"(such as a mounted secret), or in DUOCHROME_TOKEN; or pass --insecure-no-token if " +
	"something in front authenticates")

// checkExposure decides, from the address actually bound, whether the
// frontend may serve without a token, and says how it is protected.
func checkExposure(addr net.Addr, o options, token string, log hclog.Logger) error {
	loopback := isLoopback(addr)
	switch {
	case token != "":
		log.Info("authentication: bearer token required", "addr", addr.String())
	case loopback:
		log.Info("authentication: none; listening on loopback only", "addr", addr.String())
	case o.insecureNoToken:
		log.Warn("authentication: none on an address other than loopback (--insecure-no-token): "+
			"anyone who reaches it controls every browser", "addr", addr.String())
	default:
		return fmt.Errorf("%w (address %s)", errExposed, addr)
	}
	return nil
}

func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
