# libFuzzer targets (included by the top Makefile). docs/RELIABILITY.md.
#
#   make fuzz          build build/fuzz/fuzz_key, fuzz_options, fuzz_sql (clang,
#                      -fsanitize=fuzzer,address,undefined)
#   make fuzz-replay   run every file of test/fuzz/corpus/<target>/ and
#                      test/fuzz/seeds/<target>/ once through its target (fast;
#                      `make test` style): ends with "N passed, N failed"
#   make fuzz-run FUZZ_TARGET=fuzz_sql [FUZZ_TIME=600] [FUZZ_JOBS=1]
#                      fuzz one target for FUZZ_TIME seconds; new inputs go to
#                      build/fuzz/work/<target>/, crashes to build/fuzz/artifacts/
#                      (FUZZ_JOBS > 1: that many processes, logs in ./fuzz-N.log)
#   make fuzz-merge FUZZ_TARGET=fuzz_sql
#                      minimise seeds + corpus + work into a new
#                      test/fuzz/corpus/<target>/ (libFuzzer -merge=1)
#   make fuzz-seeds    regenerate test/fuzz/seeds/ from the tests and vectors
#                      (test/fuzz/make_seeds.py)
#   make fuzz-coverage line/branch coverage of ext/ reached by each target's
#                      corpus + seeds (a -fprofile-instr-generate build, no
#                      sanitizers; llvm-profdata and llvm-cov)
#
# Needs clang with the libFuzzer runtime (Debian: clang, libclang-rt-<ver>-dev
# where the runtime is packaged separately). FUZZ_CC picks the compiler.

FUZZ_CC      ?= clang
FUZZ_B       := $(B)/fuzz
FUZZ_TARGETS := fuzz_key fuzz_options fuzz_sql
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# The project's flags without its -O level (the SIMD kernels' -O3 as well).
FUZZ_CFLAGS  := $(filter-out -O%,$(CFLAGS)) -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN)
FUZZ_LIB_OBJ := $(EXT_SRC:%=$(FUZZ_B)/obj/%.o) $(FUZZ_B)/obj/cuda_stub.o
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_B)/%)
FUZZ_TARGET  ?= fuzz_sql
FUZZ_TIME    ?= 600
FUZZ_JOBS    ?= 1
# Options every run and replay uses (per target extras: FUZZ_OPTS_<target>).
FUZZ_OPTS    ?= -timeout=25 -rss_limit_mb=2048 -malloc_limit_mb=1024
FUZZ_OPTS_fuzz_key     := -max_len=700
FUZZ_OPTS_fuzz_options := -max_len=512 -dict=test/fuzz/options.dict
FUZZ_OPTS_fuzz_sql     := -max_len=4096 -dict=test/fuzz/sql.dict

.PHONY: fuzz fuzz-check fuzz-replay fuzz-run fuzz-merge fuzz-seeds fuzz-coverage

fuzz: fuzz-check $(FUZZ_BINS)

# A clear message where clang or its libFuzzer runtime is missing.
fuzz-check:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "pagepir: $(FUZZ_CC) not found: apt-get install -y clang"; exit 1; }
	@d=$$(mktemp -d) && \
	printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > $$d/p.c && \
	if $(FUZZ_CC) -fsanitize=fuzzer,address $$d/p.c -o $$d/p >/dev/null 2>&1; then rm -rf $$d; else rm -rf $$d; \
	  echo "pagepir: $(FUZZ_CC) -fsanitize=fuzzer does not link: the libFuzzer runtime is missing"; \
	  echo "  (Debian 12 ships it with clang-14; newer: apt-get install -y libclang-rt-$$($(FUZZ_CC) -dumpversion | cut -d. -f1)-dev)"; \
	  exit 1; fi

$(FUZZ_B)/obj $(FUZZ_B)/work $(FUZZ_B)/artifacts:
	mkdir -p $@

$(FUZZ_B)/obj/%.o: ext/%.c $(HEADERS) test/fuzz/fuzz.mk | $(FUZZ_B)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(filter-out -O%,$(SIMD_FLAGS_$*)) -fsanitize=fuzzer-no-link -DSQLITE_CORE -c $< -o $@
$(FUZZ_B)/obj/cuda_stub.o: gpu/cuda_stub.c $(HEADERS) test/fuzz/fuzz.mk | $(FUZZ_B)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
# An archive: each target links only the objects it needs.
$(FUZZ_B)/libpagepir_fuzz.a: $(FUZZ_LIB_OBJ)
	rm -f $@.tmp && ar rcs $@.tmp $^ && mv -f $@.tmp $@
# (Build once before starting several fuzz-run's in parallel: two makes
# rebuilding the same objects at once collide.)

$(FUZZ_B)/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_B)/libpagepir_fuzz.a $(HEADERS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_B)/libpagepir_fuzz.a -o $@ $(SQLITE_LIBS) $(LDLIBS)

fuzz-replay: fuzz
	@FUZZ_B="$(FUZZ_B)" FUZZ_OPTS="$(FUZZ_OPTS)" sh test/fuzz/replay.sh $(FUZZ_TARGETS)

fuzz-run: fuzz | $(FUZZ_B)/work $(FUZZ_B)/artifacts
	mkdir -p $(FUZZ_B)/work/$(FUZZ_TARGET) test/fuzz/corpus/$(FUZZ_TARGET) test/fuzz/seeds/$(FUZZ_TARGET)
	$(FUZZ_B)/$(FUZZ_TARGET) $(FUZZ_OPTS) $(FUZZ_OPTS_$(FUZZ_TARGET)) \
	  -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	  $(if $(filter-out 1,$(FUZZ_JOBS)),-jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS)) \
	  -artifact_prefix=$(FUZZ_B)/artifacts/$(FUZZ_TARGET)- \
	  $(FUZZ_B)/work/$(FUZZ_TARGET) test/fuzz/corpus/$(FUZZ_TARGET) test/fuzz/seeds/$(FUZZ_TARGET)

fuzz-merge: fuzz
	rm -rf $(FUZZ_B)/merged/$(FUZZ_TARGET) && mkdir -p $(FUZZ_B)/merged/$(FUZZ_TARGET) $(FUZZ_B)/work/$(FUZZ_TARGET) \
	  test/fuzz/corpus/$(FUZZ_TARGET) test/fuzz/seeds/$(FUZZ_TARGET)
	$(FUZZ_B)/$(FUZZ_TARGET) $(FUZZ_OPTS) $(FUZZ_OPTS_$(FUZZ_TARGET)) -merge=1 \
	  $(FUZZ_B)/merged/$(FUZZ_TARGET) test/fuzz/seeds/$(FUZZ_TARGET) test/fuzz/corpus/$(FUZZ_TARGET) \
	  $(FUZZ_B)/work/$(FUZZ_TARGET)
	rm -rf test/fuzz/corpus/$(FUZZ_TARGET) && mkdir -p test/fuzz/corpus/$(FUZZ_TARGET)
	cp $(FUZZ_B)/merged/$(FUZZ_TARGET)/* test/fuzz/corpus/$(FUZZ_TARGET)/
	@echo "test/fuzz/corpus/$(FUZZ_TARGET): $$(ls test/fuzz/corpus/$(FUZZ_TARGET) | wc -l) files, $$(cat test/fuzz/corpus/$(FUZZ_TARGET)/* | wc -c) bytes"

fuzz-seeds:
	python3 test/fuzz/make_seeds.py

# ---- coverage of the corpora ------------------------------------------------------------
FUZZ_COV_B      := $(FUZZ_B)/cov
FUZZ_COV_CFLAGS := $(filter-out -O%,$(CFLAGS)) -g -O1 -fprofile-instr-generate -fcoverage-mapping
LLVM_PROFDATA   ?= llvm-profdata
LLVM_COV        ?= llvm-cov
FUZZ_COV_OBJ    := $(EXT_SRC:%=$(FUZZ_COV_B)/obj/%.o) $(FUZZ_COV_B)/obj/cuda_stub.o

$(FUZZ_COV_B)/obj:
	mkdir -p $@
$(FUZZ_COV_B)/obj/%.o: ext/%.c $(HEADERS) test/fuzz/fuzz.mk | $(FUZZ_COV_B)/obj
	$(FUZZ_CC) $(FUZZ_COV_CFLAGS) $(filter-out -O%,$(SIMD_FLAGS_$*)) -fsanitize=fuzzer-no-link -DSQLITE_CORE -c $< -o $@
$(FUZZ_COV_B)/obj/cuda_stub.o: gpu/cuda_stub.c $(HEADERS) test/fuzz/fuzz.mk | $(FUZZ_COV_B)/obj
	$(FUZZ_CC) $(FUZZ_COV_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_COV_B)/libpagepir_cov.a: $(FUZZ_COV_OBJ)
	rm -f $@.tmp && ar rcs $@.tmp $^ && mv -f $@.tmp $@
$(FUZZ_COV_B)/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_COV_B)/libpagepir_cov.a $(HEADERS)
	$(FUZZ_CC) $(FUZZ_COV_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_COV_B)/libpagepir_cov.a -o $@ $(SQLITE_LIBS) $(LDLIBS)

fuzz-coverage: fuzz-check $(FUZZ_TARGETS:%=$(FUZZ_COV_B)/%)
	@for t in $(FUZZ_TARGETS); do \
	  rm -f $(FUZZ_COV_B)/$$t.profraw; mkdir -p test/fuzz/corpus/$$t test/fuzz/seeds/$$t; \
	  LLVM_PROFILE_FILE=$(FUZZ_COV_B)/$$t.profraw $(FUZZ_COV_B)/$$t -runs=0 $(FUZZ_OPTS) \
	    test/fuzz/corpus/$$t test/fuzz/seeds/$$t >$(FUZZ_COV_B)/$$t.log 2>&1 || { echo "$$t: replay failed ($(FUZZ_COV_B)/$$t.log)"; exit 1; }; \
	  $(LLVM_PROFDATA) merge -sparse $(FUZZ_COV_B)/$$t.profraw -o $(FUZZ_COV_B)/$$t.profdata || exit 1; \
	  echo "== $$t: coverage of ext/ by test/fuzz/corpus/$$t + seeds/$$t"; \
	  $(LLVM_COV) report $(FUZZ_COV_B)/$$t -instr-profile=$(FUZZ_COV_B)/$$t.profdata \
	    $(wildcard ext/*.c) 2>/dev/null | cut -c1-200; \
	done
