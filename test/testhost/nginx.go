package testhost

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Nginx is a real nginx (Debian's) serving a directory inside a Host.
type Nginx struct {
	Dir       string // root and logs live here
	Root      string // document root
	AccessLog string
	cmd       *exec.Cmd
	exited    chan error
}

// StartNginx runs nginx in h, listening on ports on both of h's addresses.
// Each access log line is "<client address> <request line> <status>
// <authorization header> <x-api-key header> <protocol>".
func StartNginx(h *Host, dir string, ports ...int) (*Nginx, error) {
	return StartNginxTLS(h, dir, nil, nil, ports...)
}

// StartNginxTLS is StartNginx with, in addition, tlsPorts serving HTTPS
// (HTTP/2 and HTTP/1.1) with cert.
func StartNginxTLS(h *Host, dir string, cert *tls.Certificate, tlsPorts []int, ports ...int) (*Nginx, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, fmt.Errorf("nginx not installed: %w", err)
		}
		bin = "/usr/sbin/nginx"
	}
	n := &Nginx{Dir: dir, Root: filepath.Join(dir, "www"), AccessLog: filepath.Join(dir, "access.log")}
	if err := os.MkdirAll(n.Root, 0o755); err != nil {
		return nil, err
	}
	// Workers run as nobody; they must reach the document root.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	var listen strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&listen, "    listen %s:%d;\n    listen [%s]:%d;\n", h.Addr4, p, h.Addr6, p)
	}
	if len(tlsPorts) > 0 {
		if err := writeLeaf(dir, cert, 0, 0); err != nil {
			return nil, err
		}
		for _, p := range tlsPorts {
			fmt.Fprintf(&listen, "    listen %s:%d ssl http2;\n    listen [%s]:%d ssl http2;\n", h.Addr4, p, h.Addr6, p)
		}
		fmt.Fprintf(&listen, "    ssl_certificate %[1]s/server.crt;\n    ssl_certificate_key %[1]s/server.key;\n", dir)
		ports = append(tlsPorts, ports...)
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  default_type application/octet-stream;
  types { text/html html; application/json json; }
  log_format sluice '$remote_addr "$request" $status "$http_authorization" "$http_x_api_key" $server_protocol';
  access_log %[1]s/access.log sluice;
  client_body_temp_path %[1]s/tmp-body;
  proxy_temp_path %[1]s/tmp-proxy;
  fastcgi_temp_path %[1]s/tmp-fastcgi;
  uwsgi_temp_path %[1]s/tmp-uwsgi;
  scgi_temp_path %[1]s/tmp-scgi;
  keepalive_requests 100000;
  server {
%[2]s    root %[3]s;
    location / { try_files $uri $uri/ =404; }
  }
}
`, dir, listen.String(), n.Root)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	n.cmd = exec.Command(bin, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = os.Stderr, os.Stderr
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := h.Start(n.cmd); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	n.exited = make(chan error, 1)
	go func() { n.exited <- n.cmd.Wait() }()
	// Ready when the first port accepts, from inside the namespace.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c net.Conn
		err := h.Do(func() (err error) {
			c, err = net.DialTimeout("tcp", net.JoinHostPort(h.Addr4.String(), fmt.Sprint(ports[0])), time.Second)
			return err
		})
		if err == nil {
			c.Close()
			return n, nil
		}
		select {
		case werr := <-n.exited:
			return nil, fmt.Errorf("nginx exited: %v", werr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.Stop()
			return nil, errors.New("nginx did not start listening")
		}
	}
}

// WriteFile puts a file in the document root.
func (n *Nginx) WriteFile(name string, data []byte) error {
	return os.WriteFile(filepath.Join(n.Root, name), data, 0o644)
}

// AccessLines returns the access log lines so far.
func (n *Nginx) AccessLines() ([]string, error) {
	f, err := os.Open(n.AccessLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

// Stop terminates nginx and waits for it.
func (n *Nginx) Stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	Terminate(n.cmd.Process, syscall.SIGTERM, n.exited, 5*time.Second)
}
