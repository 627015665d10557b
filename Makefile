# sluice — see README.md. The two commands that matter: `make demo`, `make test`.
GO      ?= go
PREFIX  ?= /usr/local
DESTDIR ?=
BIN     := bin
PKGS    := ./...
KERNELS := .cache/kernels

# The SQL classifier is PostgreSQL's own parser (pg_query, C): cgo, linked
# statically so the binaries still run anywhere.
export CGO_ENABLED = 1
BUILDFLAGS := -trimpath -tags osusergo,netgo -ldflags '-s -w -extldflags=-static'

.PHONY: all build demo test test-unit test-e2e test-kernels kernels kube deps generate check-generated bench fuzz install uninstall vet clean

all: build

build:
	$(GO) build $(BUILDFLAGS) -o $(BIN)/ ./cmd/sluiced ./cmd/sluice

# A throwaway remote host in a network namespace, the daemon on the embedded
# defaults, an enrolled agent reaching it with curl, and a refusal.
demo: build
	./test/deps.sh demo
	$(GO) run ./test/demo --bin $(BIN)

# Everything CI runs: dependencies, the older-kernel image, the whole suite
# with the race detector, and the freshness of the generated BPF objects.
test: deps kernels kube
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) check-generated

test-unit:
	$(GO) test -count=1 ./pkg/... ./policies/...

test-e2e: deps kube
	$(GO) test -count=1 -v ./test/e2e/

# Load and exercise the BPF programs on the host kernel and, under qemu, on
# Debian's 6.1 kernel.
test-kernels: deps kernels
	$(GO) test -count=1 -v ./test/kernels/

# kube-apiserver, kubectl and a fake kubelet for the Kubernetes tests, built
# from the Go module proxy (test/kubetools): about ten minutes cold, nothing
# when they are up to date.
kube:
	./test/kubetools/build.sh

kernels:
	@if ls $(KERNELS)/vmlinuz-* >/dev/null 2>&1; then :; else ./test/kernels/fetch.sh $(KERNELS); fi

deps:
	./test/deps.sh

# Rebuild the BPF objects from bpf/*.c (needs clang and libbpf-dev).
generate:
	$(GO) generate ./pkg/bpf/

# The committed objects must match the sources: rebuild into a scratch copy
# and compare.
check-generated:
	@if ! command -v clang >/dev/null; then echo "check-generated: no clang, skipped"; exit 0; fi; \
	tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	cp -r bpf pkg go.mod go.sum $$tmp/ && (cd $$tmp && $(GO) generate ./pkg/bpf/ >/dev/null) && \
	for f in pkg/bpf/steer_bpfel.go pkg/bpf/steer_bpfel.o; do \
		cmp -s $$f $$tmp/$$f || { echo "check-generated: $$f is stale; run make generate"; exit 1; }; \
	done; echo "check-generated: BPF objects are fresh"

# Connection set-up and bulk throughput, direct vs through sluice, then the
# Go micro-benchmarks.
bench: build deps
	$(GO) run ./test/bench --bin $(BIN)
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

fuzz:
	@for t in FuzzParse:./pkg/config FuzzParseAddress:./pkg/config FuzzVerify:./pkg/identity \
	          FuzzParseMountinfo:./pkg/cgroup FuzzParseStat:./pkg/intercept FuzzDecision:./pkg/policy \
	          FuzzText:./pkg/mask FuzzValue:./pkg/mask FuzzParseRules:./pkg/mask FuzzParse:./pkg/protocol/postgres/pgsql \
	          FuzzStartup:./pkg/protocol/postgres FuzzClientMessages:./pkg/protocol/postgres FuzzMaskRow:./pkg/protocol/postgres \
	          FuzzRead:./pkg/record FuzzVerify:./pkg/record FuzzMask:./pkg/jsonmask FuzzClassify:./pkg/protocol/kube \
	          FuzzWebSocket:./pkg/protocol/kube/remotecmd FuzzSPDY:./pkg/protocol/kube/remotecmd; do \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime 30s "$${t#*:}" || exit 1; \
	done

install: build
	install -D -m 0755 $(BIN)/sluiced $(DESTDIR)$(PREFIX)/bin/sluiced
	install -D -m 0755 $(BIN)/sluice $(DESTDIR)$(PREFIX)/bin/sluice
	install -D -m 0644 systemd/sluiced.service $(DESTDIR)/etc/systemd/system/sluiced.service
	sed -i 's|/usr/local/bin/sluiced|$(PREFIX)/bin/sluiced|' $(DESTDIR)/etc/systemd/system/sluiced.service
	@if [ -f $(DESTDIR)/etc/sluice/sluice.yaml ]; then echo "keeping existing $(DESTDIR)/etc/sluice/sluice.yaml"; \
	else install -D -m 0644 pkg/config/sluice.yaml $(DESTDIR)/etc/sluice/sluice.yaml && \
	     sed -i 's|^policy_dir: ""|policy_dir: /etc/sluice/policies|' $(DESTDIR)/etc/sluice/sluice.yaml; fi
	install -d -m 0755 $(DESTDIR)/etc/sluice/policies
	for f in policies/*.rego; do case $$f in *_test.rego) ;; *) install -m 0644 $$f $(DESTDIR)/etc/sluice/policies/;; esac; done
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/sluice/README.md
	@echo "installed; start with: systemctl daemon-reload && systemctl enable --now sluiced"

uninstall:
	-$(DESTDIR)$(PREFIX)/bin/sluice uninstall
	rm -f $(DESTDIR)$(PREFIX)/bin/sluiced $(DESTDIR)$(PREFIX)/bin/sluice $(DESTDIR)/etc/systemd/system/sluiced.service
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/sluice

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l bpf cmd pkg test policies 2>/dev/null)" || { gofmt -l cmd pkg test; echo 'vet: run gofmt -w'; exit 1; }

clean:
	rm -rf $(BIN)
