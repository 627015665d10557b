package daemon

import (
	"net"
	"os"
)

// notifyReady tells systemd (Type=notify) that sluiced is serving. Without
// NOTIFY_SOCKET it does nothing. See sd_notify(3).
func notifyReady() {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte("READY=1"))
}
