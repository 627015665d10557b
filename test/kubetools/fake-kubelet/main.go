// Command fake-kubelet serves the part of the kubelet API that a
// kube-apiserver proxies to: exec, attach, port-forward and container logs.
// It runs no containers. Every pod it is asked about is "this machine": an
// exec runs the requested argv as a local process (with stdin, stdout,
// stderr and a terminal wired as asked, and its exit code reported back),
// attach joins a stand-in main process that echoes its input, port-forward
// dials the port on 127.0.0.1, and logs are a few fixed lines.
//
// The streams are served by the kubelet's own streaming library
// (k8s.io/cri-streaming), so both remote command protocols a kube-apiserver
// may use towards a kubelet work: SPDY (v1 to v4.channel.k8s.io, which the
// apiserver speaks when it translates kubectl's WebSocket v5 requests) and
// WebSocket (v4.channel.k8s.io and older).
//
// It is a test tool: it listens with TLS and, given -client-ca, accepts only
// clients with a certificate from that CA (the apiserver's
// --kubelet-client-certificate), but it authorises nothing further.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

const (
	idleTimeout           = time.Hour
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
)

func main() {
	listen := flag.String("listen", ":10250", "address to serve on")
	certFile := flag.String("tls-cert", "", "serving certificate (PEM, required)")
	keyFile := flag.String("tls-key", "", "serving key (PEM, required)")
	clientCA := flag.String("client-ca", "", "if set, require client certificates issued by this CA (PEM)")
	dir := flag.String("dir", "/", "working directory of exec'd commands")
	flag.Parse()
	if *certFile == "" || *keyFile == "" {
		log.Fatal("fake-kubelet: -tls-cert and -tls-key are required")
	}

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("fake-kubelet: %v", err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if *clientCA != "" {
		pem, err := os.ReadFile(*clientCA)
		if err != nil {
			log.Fatalf("fake-kubelet: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			log.Fatalf("fake-kubelet: no certificate in %s", *clientCA)
		}
		tlsConf.ClientCAs = pool
		tlsConf.ClientAuth = tls.RequireAndVerifyClientCert
	}

	srv := &http.Server{
		Addr:              *listen,
		Handler:           newHandler(&runtime{dir: *dir}),
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.Default(),
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		_ = srv.Close()
	}()
	log.Printf("fake-kubelet: serving on %s", *listen)
	if err := srv.ListenAndServeTLS("", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("fake-kubelet: %v", err)
	}
}

// newHandler routes the kubelet paths the apiserver uses
// (pkg/registry/core/pod/strategy.go builds them).
func newHandler(rt *runtime) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/exec/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		opts, err := remotecommand.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cmd := r.URL.Query()["command"]
		if len(cmd) == 0 {
			http.Error(w, "no command", http.StatusBadRequest)
			return
		}
		log.Printf("exec %s/%s/%s %q stdin=%v stdout=%v stderr=%v tty=%v", r.PathValue("ns"), r.PathValue("pod"),
			r.PathValue("container"), cmd, opts.Stdin, opts.Stdout, opts.Stderr, opts.TTY)
		remotecommand.ServeExec(w, r, rt, r.PathValue("pod"), "", r.PathValue("container"), cmd, opts,
			idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	})
	mux.HandleFunc("/attach/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		opts, err := remotecommand.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.Printf("attach %s/%s/%s", r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container"))
		remotecommand.ServeAttach(w, r, rt, r.PathValue("pod"), "", r.PathValue("container"), opts,
			idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	})
	mux.HandleFunc("/portForward/{ns}/{pod}", func(w http.ResponseWriter, r *http.Request) {
		opts, err := portforward.NewV4Options(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.Printf("port-forward %s/%s", r.PathValue("ns"), r.PathValue("pod"))
		portforward.ServePortForward(w, r, rt, r.PathValue("pod"), "", opts,
			idleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	})
	mux.HandleFunc("/containerLogs/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "fake-kubelet: %s/%s/%s log line %d\n", r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container"), i)
		}
	})
	return mux
}
