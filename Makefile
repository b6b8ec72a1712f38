# SPDX-License-Identifier: Apache-2.0
# Convenience front end over Meson + ninja. See docs/building.md.
#
#   make test        install deps, build, run the whole suite, print the summary
#   make demo        build and run build/examples/ferry-demo $(DEMO_ARGS)
#   make pytest      only the Python suite; make python: pip-install ferry-kv
#                    (the repository root, meson-python) into build/pyenv, the
#                    venv the Python suite runs in
#   make wheel       sdist + wheel of ferry-kv, wheel of ferry-kv-nixl in build/dist
#   make wheel-test  those wheels in a fresh venv, the Python suite against them
#   make asan|tsan|valgrind|fuzz   the checking builds (see below)
#
# Variables (make VAR=value):
#   MESON_ARGS       extra `meson setup` options for every build dir
#                    (CI: -Dwerror=true); applied to configured dirs too
#   TEST_ARGS        extra `meson test` options for `make test`
#                    (e.g. TEST_ARGS='--suite unit' or a test name)
#   ASAN_TEST_ARGS, TSAN_TEST_ARGS, VALGRIND_TEST_ARGS  the same per target
#   FUZZ_SECONDS     libFuzzer time per fuzz target (default 60)
#   SUMMARIZE_FLAGS  passed to scripts/summarize.py (CI: --no-total)
#   NO_DEPS=1        skip scripts/install-deps.sh
#   UCX_WHEEL=0      do not fetch the libucx wheel (UCX 1.22) into build/ucx-wheel

SHELL := /bin/bash
MAKEFLAGS += --no-print-directory

# The Debian interpreter: meson runs on it and apt's python3-* land in it.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
CLANG := $(shell command -v clang 2>/dev/null)
# Sanitizer builds prefer clang (its runtimes come from libclang-rt-14-dev).
SAN_CC ?= $(if $(CLANG),clang,gcc)

MESON_ARGS ?=
TEST_ARGS ?=
ASAN_TEST_ARGS ?=
# TSan and valgrind leave out the CUDA mock's variant configurations
# (plugins/cuda/tests/meson.build says why): they cost half of those runs' time.
TSAN_TEST_ARGS ?= --suite unit --suite conformance --no-suite mock-variant
# Valgrind also leaves out the UCX 1.22 runs (suite ucx22): the wheel's UCX
# is a release build that valgrind finds reading uninitialised lane state
# inside itself (ucp_proto_multi_no_resource, ucp_ep_get_lane), with no
# frame of ferry's at the top; Debian's UCX is checked.
VALGRIND_TEST_ARGS ?= --suite unit --suite conformance --no-suite mock-variant --no-suite ucx22
FUZZ_SECONDS ?= 60
SUMMARIZE_FLAGS ?=
DEMO_ARGS ?=

SUMMARIZE = $(PYTHON) scripts/summarize.py $(SUMMARIZE_FLAGS)

BUILD := build
ASAN_BUILD := build-asan
TSAN_BUILD := build-tsan
FUZZ_BUILD := build-fuzz
# (A -Dc_args in MESON_ARGS replaces the frame-pointer flag: last -D wins.)
# The checking builds test the UCX plugin on Debian's UCX only.
SAN_SETUP := -Db_lundef=false -Dc_args=-fno-omit-frame-pointer -Ducx_wheel=disabled
ASAN_SETUP := -Db_sanitize=address,undefined $(SAN_SETUP)
TSAN_SETUP := -Db_sanitize=thread -Dfuzzing=disabled $(SAN_SETUP)
# Everything in build-fuzz carries coverage instrumentation (fuzzer-no-link), so
# libFuzzer is guided by the library code too, not only by the fuzz target.
FUZZ_SETUP := -Dfuzzing=enabled -Db_sanitize=address,undefined -Db_lundef=false -Ducx_wheel=disabled \
	-Dc_args='-fno-omit-frame-pointer -fsanitize=fuzzer-no-link'

# Suppression files are used when they exist.
LSAN_SUPP := $(wildcard $(CURDIR)/tests/lsan.supp)
TSAN_SUPP := $(wildcard $(CURDIR)/tests/tsan.supp)
UBSAN_SUPP := $(wildcard $(CURDIR)/tests/ubsan.supp)
VALGRIND_SUPP := $(wildcard $(CURDIR)/tests/valgrind.supp)

# intercept_tls_get_addr=0: GCC 12's LeakSanitizer guesses the bounds of a
# dlopen()ed library's thread-local block from the word before it, and when
# the block happens to sit 16 bytes into a page it reads garbage bounds and
# dies at exit ("Tracer caught signal 11"). UCX's libraries, loaded with the
# UCX plugin, hit it by heap layout alone. Without the interception those
# blocks are still found: they are heap chunks reachable from each thread's
# vector of TLS blocks, so leaks through them are still reported.
export ASAN_OPTIONS ?= intercept_tls_get_addr=0:halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:print_summary=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1:print_summary=1$(if $(UBSAN_SUPP),:suppressions=$(UBSAN_SUPP))
export LSAN_OPTIONS ?= print_suppressions=0$(if $(LSAN_SUPP),:suppressions=$(LSAN_SUPP))
export TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1:history_size=4:print_summary=1$(if $(TSAN_SUPP),:suppressions=$(TSAN_SUPP))

VALGRIND_OPTS := --quiet --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--num-callers=30 --child-silent-after-fork=yes \
	$(if $(VALGRIND_SUPP),--suppressions=$(VALGRIND_SUPP))

# clang 14's TSan cannot map its shadow with more than 28 bits of mmap ASLR
# (newer kernels default to 32): run those tests with ASLR off then.
TSAN_PREFIX := $(shell bits=$$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0); \
	if [ "$$bits" -gt 28 ] && setarch "$$(uname -m)" -R true 2>/dev/null; then \
	echo "setarch $$(uname -m) -R"; fi)

.PHONY: all deps build test pytest python wheel wheel-test demo asan tsan valgrind fuzz ci clean

all: build

deps:
ifneq ($(NO_DEPS),1)
	@bash scripts/install-deps.sh
endif

# $(call configure,DIR,CC,SETUP_ARGS): set DIR up unless it is configured;
# a configured DIR gets $(MESON_ARGS) through `meson configure` when they
# changed (DIR/.meson-args remembers them). Setup output is shown in full
# only when setup fails (else: DIR/meson-logs/setup-output.txt).
define configure
	@margs=$$(echo $(MESON_ARGS)); \
	if [ -f $(1)/build.ninja ] && [ -f $(1)/meson-private/coredata.dat ]; then \
	    if [ -n "$$margs" ] && [ "$$margs" != "$$(cat $(1)/.meson-args 2>/dev/null)" ]; then \
	        echo "meson configure $(1) $(MESON_ARGS)"; \
	        meson configure $(1) $(MESON_ARGS) && echo "$$margs" > $(1)/.meson-args; \
	    fi; \
	else \
	    rm -rf $(1); slog=$$(mktemp); \
	    echo "meson setup $(1) (CC=$(2)) $(3) $(MESON_ARGS)"; \
	    if ! CC=$(2) meson setup $(1) $(3) $(MESON_ARGS) > "$$slog" 2>&1; then \
	        cat "$$slog"; rm -rf $(1) "$$slog"; exit 1; \
	    fi; \
	    echo "$$margs" > $(1)/.meson-args; \
	    grep -E '^(WARNING|DEPRECATION)' "$$slog" || true; \
	    sed -n '/^Build targets in project/,/^Found ninja/p' "$$slog" | grep -v '^Found ninja' || true; \
	    mv "$$slog" $(1)/meson-logs/setup-output.txt; \
	fi
endef

# $(call meson_test,DIR,LOG,PREFIX,MESON_TEST_ARGS): shell text that runs
# `PREFIX meson test` and leaves its results in $$log = DIR/meson-logs/LOG.json
# (meson names it testlog.json, or testlog-<wrapper>.json with --wrapper; LOG
# must be that name). Recipes then let summarize.py give the verdict: it also
# counts a crash after the last "ok", which meson alone would not itemise.
define meson_test
log=$(1)/meson-logs/$(2).json; rm -f "$$log"; \
	$(3) meson test -C $(1) --print-errorlogs $(4); rc=$$?; \
	if [ ! -f "$$log" ] && [ $$rc -eq 0 ]; then mkdir -p $(1)/meson-logs; : > "$$log"; fi
endef

# The Python suite (when its folder exists) runs after the C suites of `make
# test` unless TEST_ARGS picks tests; its JUnit file is summarized with them.
# It runs in a venv ($(PYENV), made with --system-site-packages so it sees
# Debian's pytest, numpy and torch, plus meson-python and build from PyPI:
# scripts/install-deps.sh --venv) into which `make python` pip-installs the
# repository root (pyproject.toml: meson-python), built in $(PY_BUILD), a
# meson build folder of its own (-Dpython=true) that stays between runs, so
# a rebuild is incremental. When the install fails, pytest does not run and
# its missing JUnit file counts as a failure in the summary.
PYTEST_PATHS ?= $(wildcard python/tests tests/python)
PYTEST_ARGS ?=
PYTEST_ENV ?=
PYTEST_JUNIT := $(BUILD)/junit/pytest.xml
PYENV := $(BUILD)/pyenv
PYENV_PY := $(PYENV)/bin/python
PY_BUILD := $(BUILD)/py
PY_INSTALL_LOG := $(BUILD)/python-install.log
RUN_PYTEST := $(if $(and $(PYTEST_PATHS),$(if $(strip $(TEST_ARGS)),,yes)),yes)
PIP_QUIET := --no-warn-script-location --disable-pip-version-check
define python_install
{ bash scripts/install-deps.sh --venv $(PYENV) && \
	$(PYENV_PY) -m pip install --no-build-isolation --no-deps $(PIP_QUIET) \
	    --config-settings=build-dir=$(CURDIR)/$(PY_BUILD) . ; } > $(PY_INSTALL_LOG) 2>&1 || \
	{ echo "python: installing ferry-kv (.) into $(PYENV) failed; its log:"; tail -n 40 $(PY_INSTALL_LOG); false; }
endef
define pytest_run
rm -f $(PYTEST_JUNIT); mkdir -p $(dir $(PYTEST_JUNIT)); \
	echo "pytest $(PYTEST_PATHS)"; \
	if $(python_install); then \
	    FERRY_BUILD_DIR=$(CURDIR)/$(BUILD) $(PYTEST_ENV) $(PYENV_PY) -m pytest -q -rs -p no:cacheprovider \
	        --junitxml=$(PYTEST_JUNIT) $(PYTEST_ARGS) $(PYTEST_PATHS); prc=$$?; \
	    if [ $$prc -eq 5 ]; then echo "pytest: no tests collected"; fi; \
	fi
endef

# UCX 1.22 from PyPI's libucx-cu12 wheel, unpacked in $(BUILD)/ucx-wheel
# (scripts/fetch-ucx-wheel.sh: pinned version, sha256 checked, fetched
# once): the build then has a second UCX plugin, and `make test` runs the
# UCX suites against it too (suite ucx22). UCX_WHEEL=0: not fetched (its
# tests then skip, saying why). A build folder configured before the wheel
# was there is set up again to see it.
UCX_WHEEL ?= 1
UCX_WHEEL_DIR := $(BUILD)/ucx-wheel
define ucx_wheel_fetch
	@if [ "$(UCX_WHEEL)" = 1 ]; then \
	    bash scripts/fetch-ucx-wheel.sh $(UCX_WHEEL_DIR) || \
	    echo "ucx wheel: not fetched; the UCX 1.22 suites (ucx22) will skip"; \
	    if [ -f $(UCX_WHEEL_DIR)/libucx/.sha256 ] && [ -f $(BUILD)/build.ninja ] && \
	       ! grep -q 'plugins/ucx/wheel/libferry_plugin_ucx.so' $(BUILD)/build.ninja; then \
	        meson setup --reconfigure $(BUILD) > /dev/null; \
	    fi; \
	fi
endef

build: deps
	$(ucx_wheel_fetch)
	$(call configure,$(BUILD),$(CC),)
	@ninja -C $(BUILD)

test: build
	@$(call meson_test,$(BUILD),testlog,,$(TEST_ARGS)); \
	$(if $(RUN_PYTEST),$(pytest_run);) \
	$(SUMMARIZE) "$$log" $(if $(RUN_PYTEST),$(PYTEST_JUNIT))

pytest: build
	@$(if $(PYTEST_PATHS),$(pytest_run); $(SUMMARIZE) $(PYTEST_JUNIT),echo "pytest: no Python test folder")

# Installs the distribution ferry-kv (this repository, meson-python) into
# the venv $(PYENV) (see the Python suite above).
python: build
	@$(python_install) && echo "python: ferry_kv installed in $(PYENV) ($(PYENV_PY) -c 'import ferry_kv')"

# `make wheel`: the sdist and the wheel of ferry-kv (python -m build: the
# wheel is built from the sdist) and the wheel of ferry-kv-nixl, in $(DIST).
# `make wheel-test` (CI step "wheel"): those wheels installed into a fresh
# venv ($(WHEEL_VENV), --system-site-packages for Debian's pytest, numpy and
# torch) and the Python suite run against them from a folder where the
# source tree is not importable; JUnit file $(WHEEL_JUNIT).
DIST := $(BUILD)/dist
WHEEL_VENV := $(BUILD)/wheel-venv
WHEEL_JUNIT := $(BUILD)/junit/wheel.xml
WHEEL_LOG := $(BUILD)/wheel.log
wheel: deps
	@rm -rf $(DIST); mkdir -p $(DIST); \
	{ bash scripts/install-deps.sh --venv $(PYENV) && \
	  $(PYENV_PY) -m build --no-isolation -o $(DIST) . && \
	  $(PYENV_PY) -m build --no-isolation -o $(DIST) python/nixl-compat; } > $(WHEEL_LOG) 2>&1 || \
	{ echo "wheel: building the distributions failed; the end of $(WHEEL_LOG):"; tail -n 40 $(WHEEL_LOG); false; }
	@cd $(DIST) && for f in *; do printf '%-55s %6s KiB\n' "$$f" $$(( $$(stat -c %s "$$f") / 1024 )); done

wheel-test: wheel
	@rm -f $(WHEEL_JUNIT); mkdir -p $(dir $(WHEEL_JUNIT)); rm -rf $(WHEEL_VENV); \
	{ $(PYTHON) -m venv --system-site-packages $(WHEEL_VENV) && \
	  $(WHEEL_VENV)/bin/python -m pip install --no-index --no-deps $(PIP_QUIET) \
	      $(DIST)/ferry_kv-*.whl $(DIST)/ferry_kv_nixl-*.whl; } >> $(WHEEL_LOG) 2>&1 || \
	{ echo "wheel: installing the wheels into $(WHEEL_VENV) failed; the end of $(WHEEL_LOG):"; \
	  tail -n 40 $(WHEEL_LOG); }; \
	if [ -x $(WHEEL_VENV)/bin/python ]; then \
	    echo "pytest $(PYTEST_PATHS) against $$(cd / && $(CURDIR)/$(WHEEL_VENV)/bin/python -I -c 'import ferry_kv, os; print(os.path.dirname(ferry_kv.__file__))')"; \
	    cd $(WHEEL_VENV) && FERRY_BUILD_DIR=$(CURDIR)/$(BUILD) $(PYTEST_ENV) env -u PYTHONPATH -u LD_LIBRARY_PATH \
	        -u FERRY_PLUGIN_DIR $(CURDIR)/$(WHEEL_VENV)/bin/python -m pytest -q -rs -p no:cacheprovider \
	        --junitxml=$(CURDIR)/$(WHEEL_JUNIT) $(PYTEST_ARGS) $(addprefix $(CURDIR)/,$(PYTEST_PATHS)); \
	    cd $(CURDIR); \
	fi; \
	$(SUMMARIZE) $(WHEEL_JUNIT)

demo: build
	$(BUILD)/examples/ferry-demo $(DEMO_ARGS)

asan: deps
	$(call configure,$(ASAN_BUILD),$(SAN_CC),$(ASAN_SETUP))
	@ninja -C $(ASAN_BUILD)
	@$(call meson_test,$(ASAN_BUILD),testlog,,-t 3 $(ASAN_TEST_ARGS)); $(SUMMARIZE) "$$log"

tsan: deps
	$(call configure,$(TSAN_BUILD),$(SAN_CC),$(TSAN_SETUP))
	@ninja -C $(TSAN_BUILD)
	@$(call meson_test,$(TSAN_BUILD),testlog,$(TSAN_PREFIX),-t 5 $(TSAN_TEST_ARGS)); $(SUMMARIZE) "$$log"

# Valgrind runs over the default build; scripts/run-valgrind.sh leaves
# scripts alone. meson names the log after the wrapper's first word
# (testlog-sh.*); it is renamed to build/meson-logs/testlog-valgrind.*.
valgrind: build
	@$(call meson_test,$(BUILD),testlog-sh,,-t 10 \
	    --wrapper='sh $(CURDIR)/scripts/run-valgrind.sh $(VALGRIND_OPTS) --' $(VALGRIND_TEST_ARGS)); \
	for ext in json txt junit.xml; do \
	    rm -f $(BUILD)/meson-logs/testlog-valgrind.$$ext; \
	    [ ! -f $(BUILD)/meson-logs/testlog-sh.$$ext ] || \
	    mv $(BUILD)/meson-logs/testlog-sh.$$ext $(BUILD)/meson-logs/testlog-valgrind.$$ext; \
	done; \
	$(SUMMARIZE) $(BUILD)/meson-logs/testlog-valgrind.json

# libFuzzer: every libFuzzer executable fuzz_* under build-fuzz/tests/fuzz
# (others, like a corpus replayer, are left alone) runs for
# FUZZ_SECONDS on a scratch copy of its corpus (tests/fuzz/corpus/<target>,
# tests/fuzz/corpus/<target without fuzz_>, else tests/fuzz/corpus). Each
# target is one test in build-fuzz/meson-logs/testlog-fuzz.json; crash inputs
# are kept in build-fuzz/fuzz-artifacts/.
fuzz: deps
	@if [ -z "$(CLANG)" ]; then echo "fuzz: clang not found" >&2; exit 1; fi
	$(call configure,$(FUZZ_BUILD),clang,$(FUZZ_SETUP))
	@ninja -C $(FUZZ_BUILD)
	@log=$(FUZZ_BUILD)/meson-logs/testlog-fuzz.json; art=$(FUZZ_BUILD)/fuzz-artifacts; \
	mkdir -p $(FUZZ_BUILD)/meson-logs "$$art"; : > "$$log"; \
	targets=$$(for f in $$(find $(FUZZ_BUILD)/tests/fuzz -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x 2>/dev/null | sort); do \
	    grep -qaF LLVMFuzzerRunDriver "$$f" && echo "$$f"; done); \
	record() { $(PYTHON) -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "result": sys.argv[2], "detail": sys.argv[3]}))' "$$@" >> "$$log"; }; \
	if [ -z "$$targets" ]; then \
	    echo "fuzz: no libFuzzer executables fuzz_* in $(FUZZ_BUILD)/tests/fuzz"; \
	    record "fuzz / (no targets built)" SKIP ""; \
	fi; \
	for bin in $$targets; do \
	    t=$$(basename "$$bin"); corpus=tests/fuzz/corpus; \
	    for c in "$$corpus/$$t" "$$corpus/$${t#fuzz_}"; do [ -d "$$c" ] && { corpus=$$c; break; }; done; \
	    work=$$(mktemp -d); [ -d "$$corpus" ] && find "$$corpus" -maxdepth 1 -type f -exec cp -t "$$work" {} +; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s on $$(ls "$$work" | wc -l) seeds from $$corpus"; \
	    timeout -k 10 $$(( $(FUZZ_SECONDS) + 120 )) "$$bin" -max_total_time=$(FUZZ_SECONDS) \
	        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$$art/$$t-" \
	        "$$work" > "$$art/$$t.log" 2>&1; rc=$$?; rm -rf "$$work"; \
	    if [ $$rc -eq 0 ]; then \
	        grep -E '^(stat::number_of_executed_units|Done )' "$$art/$$t.log" | tail -2; \
	        record "fuzz / $$t" OK ""; \
	    else \
	        echo "fuzz: $$t FAILED (exit $$rc); last lines of $$art/$$t.log:"; tail -n 40 "$$art/$$t.log"; \
	        why="exit status $$rc"; [ $$rc -eq 124 ] || [ $$rc -eq 137 ] && why="hung, killed"; \
	        record "fuzz / $$t" FAIL "$$why; inputs and log in $$art"; \
	    fi; \
	done; \
	$(SUMMARIZE) "$$log"

ci:
	bash .ci/run

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) build-ci
