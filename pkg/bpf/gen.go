package bpf

// The generated steer_bpfel.go and steer_bpfel.o are committed so that a
// plain `go build` needs no clang. `make generate` reruns this line.
//
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -type conn_info -type peer_key -type resolver_key -type stat_index steer ../../bpf/steer.c -- -I../../bpf/headers -I/usr/include/x86_64-linux-gnu
