# Portcullis: the two commands of the README, and the builds behind them.
#   make demo   install what is missing, build, run the demo on the shipped config
#   make test   install what is missing, build (plain + ASan/UBSan + fuzz), run every test

# Debian 12 packages the build, the tests and the demo need.
DEPS := meson ninja-build gcc clang pkg-config libfyaml-dev libsqlite3-dev \
        libjansson-dev libcmocka-dev libclang-rt-14-dev sqlite3 python3 python3-yaml \
        libnftables-dev nftables libnetfilter-log-dev libnetfilter-conntrack-dev libmnl-dev libevent-dev libcap-dev libssl-dev libcurl4-openssl-dev libmicrohttpd-dev curl wrk openssl \
        postgresql libpq-dev gdb

.PHONY: all deps build build-asan build-fuzz demo demo-policy test clean bench

all: build

deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make: run as root to install $$missing" >&2; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || \
		{ DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	fi

build: deps
	@[ -f build/build.ninja ] || meson setup build >/dev/null
	ninja -C build

build-asan: deps
	@[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	ninja -C build-asan

build-fuzz: deps
	@[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false >/dev/null
	ninja -C build-fuzz

# The lab demo needs root (network namespaces); `make demo-policy` shows the
# policy tables alone, without a kernel.
demo: build
	tests/lab/demo.sh build

demo-policy: build
	tests/demo.sh build/src/cli/portcullis

test: build build-asan build-fuzz
	tests/run-all.sh

bench: build
	bench/run.sh build

clean:
	rm -rf build build-asan build-fuzz
