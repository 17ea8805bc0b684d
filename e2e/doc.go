// Package e2e holds the end-to-end tests: they build bin/frontend and
// bin/broker, install them in a temporary layout like the production one
// (the broker root:<test group> 0750 with cap_setuid,cap_setgid,cap_kill+ep),
// run the frontend as an unprivileged test user and drive real Chromium
// through the HTTP API and the CDP proxy, checking from /proc what every
// process runs as.
//
// The tests need root (to create the user, setcap the broker and read other
// users' /proc entries), Chromium at /usr/lib/chromium/chromium-headless-shell
// and setcap. Without them they skip, saying what is missing; with CI=true in
// the environment they fail instead, so that CI cannot pass by skipping.
package e2e
