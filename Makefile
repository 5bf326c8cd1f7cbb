# pagepir: a 2-server DPF page-PIR server as a SQLite extension.
#
#   make            ./pagepir.so (loadable) and ./libpagepir.a (static)
#   make demo       the main job on a small built-in snapshot, in the sqlite3 shell
#   make test       unit tests + Tcl suite; ends with "N passed, N failed"
#   make bench      CPU benchmarks: the matrix and the scan (docs/benchmarks/)
#   make bench-gpu  the benchmark matrix on a GPU host (bench/run_gpu.sh)
#   make test-gpu   the suite with backend='cuda' plus GPU checks (on a GPU host)
#
# The CUDA backend is built when nvcc is found (PATH or /usr/local/cuda/bin);
# CUDA_ARCH picks the targets. Without nvcc the build still succeeds, CPU only.

CC      ?= cc
CFLAGS  ?= -O2
CFLAGS  += -std=c11 -Wall -Wextra -fPIC -D_GNU_SOURCE -pthread $(SQLITE_CFLAGS)
# Where SQLite's headers and library are, when not in the system's paths (a GPU
# host with a staged bundle: see gpu/run_on_gpu_host.sh).
SQLITE_CFLAGS ?=
SQLITE_LIBS   ?= -lsqlite3
LDLIBS  := -lm -pthread
B       := build

NVCC ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_89,code=sm_89 \
             -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCCFLAGS ?= -O3 -std=c++17
ifneq ($(wildcard gpu/cuda_backend.cu),)
ifneq ($(NVCC),)
  CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
  GPU_SRC   := gpu/cuda_backend.cu
  GPU_LIBS  := -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/targets/x86_64-linux/lib -lcudart_static -ldl -lrt -lstdc++
endif
endif
GPU_SRC ?= gpu/cuda_stub.c

EXT_SRC := alloc chacha8 dpf dpf_expand gf128 simd_select simd_portable simd_avx2 simd_avx512 \
           snapshot fault_guard epoch_files table_state merge epochs backend_cpu backend_cuda scan_scheduler metrics options connection \
           vtab_page_query vtab_metrics vtab_info vtab_keygen sql_functions pagepir
# The SIMD kernels want -O3: full unrolling keeps ChaCha's state in registers.
SIMD_FLAGS_simd_avx2     := -O3 -mavx2 -mpclmul
SIMD_FLAGS_simd_avx512   := -O3 -mavx512f -mavx512bw -mpclmul
SIMD_FLAGS_simd_portable := -O3

SO_OBJ := $(EXT_SRC:%=$(B)/so/%.o)
A_OBJ  := $(EXT_SRC:%=$(B)/a/%.o)
GPU_OBJ := $(B)/gpu/$(notdir $(basename $(GPU_SRC))).o
HEADERS := $(wildcard ext/*.h) gpu/cuda_backend.h

.PHONY: all demo test test-gpu bench deps clean check-deps check-test-deps apt-deps print-libs
all: pagepir.so libpagepir.a
	@if [ "$(GPU_SRC)" = gpu/cuda_stub.c ]; then echo "pagepir: built with the CPU backend only (no nvcc found)"; \
	 else echo "pagepir: built with the CPU and CUDA backends ($(NVCC))"; fi

$(B)/so/%.o: ext/%.c $(HEADERS) | $(B)/so
	$(CC) $(CFLAGS) $(SIMD_FLAGS_$*) -c $< -o $@
$(B)/a/%.o: ext/%.c $(HEADERS) | $(B)/a
	$(CC) $(CFLAGS) $(SIMD_FLAGS_$*) -DSQLITE_CORE -c $< -o $@
$(B)/gpu/cuda_stub.o: gpu/cuda_stub.c $(HEADERS) | $(B)/gpu
	$(CC) $(CFLAGS) -c $< -o $@
$(B)/gpu/cuda_backend.o: gpu/cuda_backend.cu gpu/tensor_scan.cuh $(HEADERS) | $(B)/gpu
	$(NVCC) $(NVCCFLAGS) $(CUDA_ARCH) -Xcompiler -fPIC -c $< -o $@
$(B)/so $(B)/a $(B)/gpu $(B)/test:
	mkdir -p $@

# Linked under a temporary name and renamed: a process that has the old
# library loaded keeps its (unlinked) copy instead of crashing.
pagepir.so: $(SO_OBJ) $(GPU_OBJ)
	$(CC) -shared -o $@.tmp $^ $(GPU_LIBS) $(LDLIBS) && mv -f $@.tmp $@
libpagepir.a: $(A_OBJ) $(GPU_OBJ)
	rm -f $@.tmp && ar rcs $@.tmp $^ && mv -f $@.tmp $@
# What a program linking libpagepir.a needs besides it and -lsqlite3.
print-libs:
	@echo $(GPU_LIBS) $(LDLIBS)

# ---- tools, tests -----------------------------------------------------------
# The coalescing benchmark (issue 7) and its test share bench/coalesce.c.
$(B)/coalesce: bench/coalesce.c bench/coalesce.h libpagepir.a | $(B)
	$(CC) $(CFLAGS) $< -o $@ libpagepir.a $(SQLITE_LIBS) $(GPU_LIBS) $(LDLIBS)
$(B)/test/test_coalesce: test/unit/test_coalesce.c bench/coalesce.c bench/coalesce.h libpagepir.a | $(B)/test
	$(CC) $(CFLAGS) $< -o $@ libpagepir.a $(SQLITE_LIBS) $(GPU_LIBS) $(LDLIBS)
$(B)/mksnap: bench/mksnap.c | $(B)
	$(CC) $(CFLAGS) $< -o $@ -pthread
$(B):
	mkdir -p $@

UNIT_LIB_OBJ := $(filter-out $(B)/a/pagepir.o,$(A_OBJ))
$(B)/test/test_primitives: test/unit/test_primitives.c $(UNIT_LIB_OBJ) $(GPU_OBJ) | $(B)/test
	$(CC) $(CFLAGS) -DSQLITE_CORE $^ -o $@ $(SQLITE_LIBS) $(GPU_LIBS) $(LDLIBS)
$(B)/test/test_static: test/unit/test_static.c libpagepir.a | $(B)/test
	$(CC) $(CFLAGS) $< -o $@ libpagepir.a $(SQLITE_LIBS) $(GPU_LIBS) $(LDLIBS)
$(B)/test/test_faults: test/unit/test_faults.c libpagepir.a | $(B)/test
	$(CC) $(CFLAGS) $< -o $@ libpagepir.a $(SQLITE_LIBS) $(GPU_LIBS) $(LDLIBS)
$(B)/test/test_soak: test/unit/test_soak.c libpagepir.a | $(B)/test
	$(CC) $(CFLAGS) $< -o $@ libpagepir.a $(SQLITE_LIBS) $(GPU_LIBS) $(LDLIBS)
$(B)/test/test_scheduler: test/unit/test_scheduler.c libpagepir.a | $(B)/test
	$(CC) $(CFLAGS) $< -o $@ libpagepir.a $(SQLITE_LIBS) $(GPU_LIBS) $(LDLIBS)

# Every other C test program: one file linked with libpagepir.a.
$(B)/test/test_%: test/unit/test_%.c test/unit/sql_checks.h libpagepir.a | $(B)/test
	$(CC) $(CFLAGS) $< -o $@ libpagepir.a $(SQLITE_LIBS) $(GPU_LIBS) $(LDLIBS)
# The C test programs run_all.sh runs (test_primitives first).
UNIT_PROGS := test_primitives $(filter-out test_primitives,$(sort \
              $(patsubst test/unit/%.c,%,$(wildcard test/unit/test_*.c))))

# Packages the build, demo and tests need, installed with apt when root.
# PAGEPIR_NO_APT=1 skips this (a host that brings its own, e.g. a GPU host).
# `make test` also needs clang (libFuzzer targets, replayed in the suite).
DEB_PKGS := libsqlite3-dev sqlite3 tcl libsqlite3-tcl python3
check-deps:
	@[ -n "$(PAGEPIR_NO_APT)" ] || $(MAKE) --no-print-directory apt-deps
check-test-deps:
	@[ -n "$(PAGEPIR_NO_APT)" ] || $(MAKE) --no-print-directory apt-deps DEB_PKGS="$(DEB_PKGS) clang"
apt-deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v $(CC) >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "pagepir: installing$$missing"; \
	    (apt-get install -y -q $$missing >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; }) \
	      || { echo "pagepir: apt-get install$$missing failed"; exit 1; }; \
	  else echo "pagepir: missing packages; run:  sudo apt-get install -y$$missing"; exit 1; fi; \
	fi
deps: check-deps

demo: check-deps all $(B)/mksnap
	@test -f demo.bin || $(B)/mksnap demo.bin 4096 2026
	sqlite3 :memory: < sql/demo.sql

# The suite, then a replay of the fuzz corpora and the suite again under
# ASan + UBSan + LSan (test/run_all.sh runs all three and sums them).
test: check-test-deps all $(B)/mksnap $(UNIT_PROGS:%=$(B)/test/%) fuzz asan-build
	@UNIT_PROGS="$(UNIT_PROGS)" PAGEPIR_TEST_SANITIZERS=1 FUZZ_B="$(FUZZ_B)" FUZZ_OPTS="$(FUZZ_OPTS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" \
	  ASAN_RT="$(ASAN_RT)" ASAN_B="$(ASAN_B)" ASAN_UNIT="$(ASAN_UNIT)" sh test/run_all.sh

# On a GPU host: the whole suite with backend='cuda' (test/gpu.test compares
# GPU and CPU answers bit for bit and checks the allocation counter), then the
# CUDA backend's own checks (gpu/selftest.sh: every page count and batch size,
# compute-sanitizer); then the same with every batch on the tensor-core scan
# (PAGEPIR_CUDA_KERNEL=tensor; by default it takes only batches of 16 keys and up).
test-gpu: check-deps all $(B)/mksnap $(UNIT_PROGS:%=$(B)/test/%)
	@UNIT_PROGS="$(UNIT_PROGS)" PAGEPIR_BACKEND=cuda sh test/run_all.sh; a=$$?; \
	 bash gpu/selftest.sh quick full sanitize; b=$$?; \
	 UNIT_PROGS="$(UNIT_PROGS)" PAGEPIR_BACKEND=cuda PAGEPIR_CUDA_KERNEL=tensor sh test/run_all.sh; c=$$?; \
	 PAGEPIR_CUDA_KERNEL=tensor bash gpu/selftest.sh quick full sanitize; d=$$?; \
	 [ $$a -eq 0 ] && [ $$b -eq 0 ] && [ $$c -eq 0 ] && [ $$d -eq 0 ]

# Benchmarks (bench/README.md); bench/bench.mk builds the matrix driver.
.PHONY: bench-gpu
bench: check-deps all $(B)/mksnap $(B)/bench_matrix
	@sh bench/run_cpu.sh
bench-gpu: check-deps all $(B)/mksnap $(B)/bench_matrix
	@bash bench/run_gpu.sh
-include bench/bench.mk

clean:
	rm -rf $(B) pagepir.so libpagepir.a demo.bin

# Sanitizer builds and fuzz targets (test/sanitize.mk, test/fuzz/fuzz.mk).
-include test/sanitize.mk test/fuzz/fuzz.mk
