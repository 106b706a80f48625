# proxyd — GNU make build.  `make V=1` shows the commands.
#
#   make            build build/proxyd and build/proxyctl (installs deps first)
#   make test       build and run every test; last line "N passed, M failed"
#   make run        run proxyd in the foreground with conf/proxyd.conf
#   make asan       the same build and tests under AddressSanitizer + UBSan
#   make asan-ci    the sanitizer build with the data-path integration suites
#   make fuzz       run every fuzz target for FUZZ_SECONDS each
#   make fuzz-long  run every target for FUZZ_LONG_SECONDS; execs go to README.md
#   make bench      compare proxyd with other proxies (bench/RESULTS.md)
#   make bench-sessions  proxyd as shipped holding 1k..100k idle tunnels: memory,
#                   latency, workers (bench/sessions.sh; SESSIONS_STEPS=...)
#   make cluster-demo  redis-server, proxyd nodes and haproxy (conf/cluster/) on
#                   loopback: shared user limit, budget, sticky routes, a node
#                   killed under load; SIZE=small is what make test runs
#   make install    PREFIX=/usr/local SYSCONFDIR=/etc DESTDIR= : binaries, man pages,
#                   config, systemd unit, logrotate file
#   make deb        the Debian package, in build/ (dpkg-buildpackage)
#   make deb-check  build the package and check its files and lintian
#   make deps       install the Debian packages the build and tests need

BUILD      ?= build
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= /lib/systemd/system
DESTDIR    ?=
CXX        ?= g++
FUZZ_CXX   ?= clang++
FUZZ_SECONDS ?= 300
FUZZ_LONG_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 8
SANITIZE   ?=

# Debian packages: build (compiler, libraries; nlohmann-json is header-only),
# tests (curl as a real client, openssl to make test certificates, clang + its
# runtime for libFuzzer and LeakSanitizer), docs (mandoc for lint). Password
# hashes are libxcrypt's (libcrypt-dev); the tests make users files with the
# operators' own tools: htpasswd (apache2-utils) and mkpasswd (whois).
DEB_PACKAGES := g++ make pkg-config libevent-dev libssl-dev libinih-dev nlohmann-json3-dev \
                libcrypt-dev libgtest-dev libgmock-dev mandoc curl openssl procps \
                clang libclang-rt-14-dev apache2-utils whois
# Operations: the operators' own tools judge compatibility: promtool
# (prometheus) the metrics, goaccess the access log, systemd-analyze the unit,
# logrotate its file; debhelper, dpkg-dev, fakeroot and lintian build and
# check the Debian package.
DEB_PACKAGES += prometheus goaccess systemd logrotate debhelper dpkg-dev fakeroot lintian
# Cluster: hiredis is the Redis client library (with its libevent adapter);
# the tests start a real redis-server and a real haproxy in front of nodes.
DEB_PACKAGES += libhiredis-dev redis-server haproxy

PKGS       := libevent libevent_openssl openssl inih hiredis
# Recursively expanded on purpose: pkg-config runs only after `deps`.
PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS    = $(shell pkg-config --libs $(PKGS))
TEST_LIBS   = $(shell pkg-config --libs gtest_main gmock)

WARNINGS   := -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor -Wformat=2
# CPPFLAGS and LDFLAGS are the caller's (debian/rules passes dpkg-buildflags').
CXXFLAGS   ?= -O2 -g
ALL_CXXFLAGS = -std=c++20 $(CPPFLAGS) $(CXXFLAGS) $(WARNINGS) -I. -MMD -MP $(PKG_CFLAGS) $(SAN_FLAGS)
LDLIBS      = $(PKG_LIBS) -lcrypt -lpthread
ifneq ($(SANITIZE),)
# GCC 12 reports false maybe-uninitialized warnings inside libstdc++ (regex,
# std::function) once ASan instruments it; only that warning is relaxed.
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
              -Wno-maybe-uninitialized
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

COMMON_SRC := $(wildcard common/*.cpp)
MASTER_SRC := $(filter-out master/main.cpp master/proxyctl.cpp,$(wildcard master/*.cpp))
WORKER_SRC := $(wildcard worker/*.cpp)
CORE_SRC   := $(COMMON_SRC) $(MASTER_SRC) $(WORKER_SRC)
UNIT_SRC   := $(wildcard tests/unit/*/*.cpp)
INTEG_SRC  := $(wildcard tests/integration/*.cpp)
FUZZ_SRC   := $(wildcard tests/fuzz/*_fuzz.cpp)

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))
CORE_OBJ   := $(call obj,$(CORE_SRC))
UNIT_OBJ   := $(call obj,$(UNIT_SRC))
INTEG_OBJ  := $(call obj,$(INTEG_SRC))
FUZZ_BIN   := $(patsubst tests/fuzz/%_fuzz.cpp,$(BUILD)/fuzz/%,$(FUZZ_SRC))
CORE_LIB   := $(BUILD)/libproxyd.a

.PHONY: FORCE all deps build test check run asan asan-ci fuzz fuzz-build fuzz-long bench bench-sessions install install-files \
        deb deb-check clean lint format cluster-demo
.DEFAULT_GOAL := all

all: deps
	$(Q)$(MAKE) --no-print-directory build

build: $(BUILD)/proxyd $(BUILD)/proxyctl

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
	        || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then \
	        echo "make deps: missing Debian packages:$$missing" >&2; \
	        echo "make deps: run 'sudo make deps' (or install them with apt-get)" >&2; \
	        exit 1; \
	    fi; \
	    echo "make deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	        || { echo "make deps: apt-get install failed" >&2; exit 1; }; \
	fi

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(ALL_CXXFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/proxyd: $(call obj,master/main.cpp) $(CORE_LIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(ALL_CXXFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/proxyctl: $(call obj,master/proxyctl.cpp) $(CORE_LIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(ALL_CXXFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/unit_tests: $(UNIT_OBJ) $(CORE_LIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(ALL_CXXFLAGS) $(LDFLAGS) $^ -o $@ $(TEST_LIBS) $(LDLIBS)

$(BUILD)/integration_tests: $(INTEG_OBJ) $(CORE_LIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(ALL_CXXFLAGS) $(LDFLAGS) $^ -o $@ $(TEST_LIBS) $(LDLIBS)

# libFuzzer targets are built with clang. The sources they share are
# compiled once into build/fuzz/obj/ (instrumented for coverage, not linked
# with libFuzzer's main), so every target shares one compile of common/.
FUZZ_FLAGS = -std=c++20 -O1 -g -I. -MMD -MP -fsanitize=fuzzer-no-link,address,undefined $(PKG_CFLAGS)
fuzz_obj = $(patsubst %.cpp,$(BUILD)/fuzz/obj/%.o,$(1))
FUZZ_COMMON_OBJ := $(call fuzz_obj,$(COMMON_SRC))
$(BUILD)/fuzz/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCXX $<")
	$(Q)$(FUZZ_CXX) $(FUZZ_FLAGS) -c $< -o $@
$(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/tests/fuzz/%_fuzz.o $(FUZZ_COMMON_OBJ)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CXX) -fsanitize=fuzzer,address,undefined $^ -o $@ $(PKG_LIBS) -lcrypt

# The forwarding round trip runs the worker's real head rewriting.
$(BUILD)/fuzz/forwarding: $(call fuzz_obj,worker/http_forwarding.cpp)
# Kept between builds (make would delete them as intermediates).
.SECONDARY: $(FUZZ_COMMON_OBJ) $(call fuzz_obj,$(FUZZ_SRC) worker/http_forwarding.cpp)

fuzz-build: deps
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BIN)

fuzz: fuzz-build
	$(Q)for f in $(FUZZ_BIN); do tests/fuzz/run.sh $$f $(FUZZ_SECONDS) || exit 1; done

fuzz-long: fuzz-build
	$(Q)tests/fuzz/long.sh $(FUZZ_LONG_SECONDS) $(FUZZ_BIN)

# The build runs one compile per CPU unless the caller chose -j: most of a
# clean `make test` is compiling.
BUILD_JOBS := $(if $(findstring j,$(filter-out --%,$(MAKEFLAGS))),,-j$(shell nproc))
test: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD_JOBS) build $(BUILD)/unit_tests $(BUILD)/integration_tests \
	    $(if $(filter-out 0,$(FUZZ_SMOKE_SECONDS)),$(FUZZ_BIN))
	$(Q)BUILD=$(BUILD) FUZZ_SMOKE_SECONDS=$(FUZZ_SMOKE_SECONDS) INTEGRATION_FILTER='$(INTEGRATION_FILTER)' \
	    tests/run_tests.sh

check: test

asan: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 CXXFLAGS="-O1 -g" FUZZ_SMOKE_SECONDS=0 test

# What CI runs under the sanitizers: every unit test, and the integration
# suites that carry client and upstream bytes through the data path (HTTP,
# CONNECT, SOCKS, TLS, hostile input and the malformed-request tables, splice
# relay, the upstream pool, HTTP edges, DNS, descriptor budget, accounts:
# credentials, user limits, the verifier's threads; routing: parent
# handshakes, source addresses, budget timers; operations: access-log
# records, the master's metrics endpoint, proxyctl; cluster: the Redis
# store's two-node suite and the PROXY protocol header step). The load and
# supervision suites, whose timings ASan stretches, run under `make asan`;
# so do the suites of nodes behind haproxy (ClusterBalancer,
# ClusterProxyProtocol, ClusterLimits, ClusterFailover: a node killed under
# load and a 10 s lease expiry).
ASAN_CI_FILTER := HttpProxy*:*/HttpProxyMalformed.*:Sizes/*:Socks*:Tls*:Hostile*:*/MalformedRequest.*:SpliceRelay*:Cli*:Harness*:EmbeddedIpv4*:DescriptorBudget*:UpstreamPool*:HttpEdges*:Dns*:Accounts*:Routing*:AccessLog*:Metrics*:Proxyctl*:ClusterState*:ProxyProtocol*
asan-ci: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 CXXFLAGS="-O1 -g" FUZZ_SMOKE_SECONDS=0 \
	    INTEGRATION_FILTER='$(ASAN_CI_FILTER)' test

run: all
	@mkdir -p run
	$(BUILD)/proxyd -c conf/proxyd.conf

bench: all
	bench/run.sh

# The sessions curve: idle CONNECT tunnels held by proxyd as shipped, in steps
# (bench/README.md, "The sessions curve"); writes bench/work/sessions.tsv and
# the "Sessions curve" section of bench/RESULTS.md.
bench-sessions: all
	bench/sessions.sh

# The cluster demonstration (tests/cluster/demo.sh): prints what each part
# shows and PASS or FAIL; SIZE=small for the short version make test runs.
cluster-demo: all
	$(Q)BUILD=$(BUILD) tests/cluster/demo.sh

lint: deps
	$(Q)mandoc -Tlint man/*

format:
	$(Q)clang-format -i common/*.[ch]* master/*.[ch]* worker/*.[ch]* tests/*/*.[ch]* tests/unit/*/*.cpp

# make install: the binaries and man pages under PREFIX, and the files of the
# installed layout (the contract's "Operations"): the config in
# SYSCONFDIR/proxyd/, the systemd unit, the logrotate file.  An existing
# config is never overwritten: the new one goes beside it as proxyd.conf.new.
# The unit and the logrotate file are replaced (local changes belong in
# drop-ins: systemctl edit proxyd).  debian/rules runs install-files.
install: all
	$(Q)$(MAKE) --no-print-directory install-files

install-files: build $(BUILD)/installed/proxyd.conf $(BUILD)/installed/proxyd.service \
               $(BUILD)/installed/proxyd.logrotate
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5 \
	    $(DESTDIR)$(PREFIX)/share/doc/proxyd/examples $(DESTDIR)$(SYSCONFDIR)/proxyd \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	install -m 0755 $(BUILD)/proxyd $(DESTDIR)$(PREFIX)/sbin/proxyd
	install -m 0755 $(BUILD)/proxyctl $(DESTDIR)$(PREFIX)/bin/proxyctl
	install -m 0644 man/proxyd.8 man/proxyctl.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 man/proxyd.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 0644 conf/proxyd.conf $(DESTDIR)$(PREFIX)/share/doc/proxyd/examples/
	$(Q)conf=$(DESTDIR)$(SYSCONFDIR)/proxyd/proxyd.conf; \
	if [ -e "$$conf" ]; then \
	    echo "make install: $$conf exists: kept; the new one is $$conf.new"; conf=$$conf.new; \
	fi; \
	echo "install -m 0644 $(BUILD)/installed/proxyd.conf $$conf"; \
	install -m 0644 $(BUILD)/installed/proxyd.conf "$$conf"
	install -m 0644 $(BUILD)/installed/proxyd.service $(DESTDIR)$(SYSTEMDUNITDIR)/proxyd.service
	install -m 0644 $(BUILD)/installed/proxyd.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/proxyd

FORCE:

# The shipped conf/proxyd.conf is for running from the source tree: relative
# run/ paths, errors on stderr.  The installed one meets the unit:
# RuntimeDirectory=proxyd is /run/proxyd, LogsDirectory=proxyd is
# /var/log/proxyd, and `user` stays unset (the unit's User= drops root).
# Every rewrite is checked afterwards, so an edit of conf/proxyd.conf that
# stops a pattern matching fails the install instead of installing a config
# that does not meet the unit.
LAYOUT_SED   := -e 's|^\(pid_file *= *\)run/proxyd\.pid  *|\1/run/proxyd/proxyd.pid |' \
                -e 's|^\(control_socket *= *\)run/proxyd\.sock  *|\1/run/proxyd/proxyd.sock |' \
                -e 's|^\(error_log *= *\)stderr  *|\1/var/log/proxyd/error.log |' \
                -e 's|^\(\# Check a file with: *proxyd -t -c \)conf/proxyd\.conf$$|\1$(SYSCONFDIR)/proxyd/proxyd.conf|'
LAYOUT_CHECK := '^pid_file = /run/proxyd/proxyd\.pid ' '^control_socket = /run/proxyd/proxyd\.sock ' \
                '^error_log = /var/log/proxyd/error\.log ' '^\# Check a file with: *proxyd -t -c /'
# The unit and the logrotate file name the binary and the config: they follow
# PREFIX and SYSCONFDIR.  (The logrotate file may call a bare `proxyd`, found
# in PATH; it must reopen the logs.)
PATHS_SED    := -e 's|/usr/sbin/proxyd|$(PREFIX)/sbin/proxyd|g' -e 's|/etc/proxyd/|$(SYSCONFDIR)/proxyd/|g'

# $(call checked_sed,SED ARGS,PATTERNS...): $< rewritten to $@, each PATTERN
# required in the result.
define checked_sed
	@mkdir -p $(dir $@)
	$(Q)sed $(1) $< >$@.tmp
	$(Q)for re in $(2); do \
	    grep -q -- "$$re" $@.tmp || { echo "make: $<: rewrite for $@ did not apply: $$re" >&2; rm -f $@.tmp; exit 1; }; \
	done
	$(Q)mv $@.tmp $@
endef

# Made at every install: they depend on PREFIX and SYSCONFDIR, which make
# does not track.
$(BUILD)/installed/proxyd.conf: conf/proxyd.conf FORCE
	$(call checked_sed,$(LAYOUT_SED),$(LAYOUT_CHECK))
	$(Q)! grep -nE '^(pid_file|control_socket|error_log|access_log|user) *= *(run/|logs/|[a-z])' $@ | grep -v '= *off ' \
	    || { echo "make: $@: relative path or user left after the rewrite" >&2; rm -f $@; exit 1; }
$(BUILD)/installed/proxyd.service: conf/proxyd.service FORCE
	$(call checked_sed,$(PATHS_SED),'^ExecStart=$(PREFIX)/sbin/proxyd .*-c $(SYSCONFDIR)/proxyd/proxyd\.conf')
$(BUILD)/installed/proxyd.logrotate: conf/proxyd.logrotate FORCE
	$(call checked_sed,$(PATHS_SED),'-s  *reopen')

# make deb: dpkg-buildpackage builds in build/deb (debian/rules) with
# Debian's hardening flags, and writes its files to the parent directory;
# they are moved to DEB_DIR.  The caller's make variables are not passed down
# (MAKEFLAGS would carry BUILD, PREFIX... into debian/rules).
DEB_DIR     ?= build
DEB_VERSION  = $(shell dpkg-parsechangelog -S Version)
DEB_ARCH     = $(shell dpkg --print-architecture)
DEB_OUTPUTS  = proxyd_$(DEB_VERSION)_$(DEB_ARCH).deb proxyd-dbgsym_$(DEB_VERSION)_$(DEB_ARCH).deb \
               proxyd_$(DEB_VERSION)_$(DEB_ARCH).buildinfo proxyd_$(DEB_VERSION)_$(DEB_ARCH).changes
deb: deps
	$(Q)env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS dpkg-buildpackage -us -uc -b -j$(shell nproc)
	$(Q)mkdir -p $(DEB_DIR)
	$(Q)for f in $(DEB_OUTPUTS); do [ ! -e ../$$f ] || mv -f ../$$f $(DEB_DIR)/; done
	@echo "make deb: $(DEB_DIR)/proxyd_$(DEB_VERSION)_$(DEB_ARCH).deb"

deb-check: deb
	$(Q)DEB=$(DEB_DIR)/proxyd_$(DEB_VERSION)_$(DEB_ARCH).deb tests/package/check_deb.sh

clean:
	rm -rf $(BUILD) build

-include $(wildcard $(BUILD)/fuzz/obj/*/*.d $(BUILD)/fuzz/obj/*/*/*.d)
-include $(CORE_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(INTEG_OBJ:.o=.d) $(patsubst %.o,%.d,$(call obj,master/main.cpp master/proxyctl.cpp))
