# Sanitizer build and run (included by the top Makefile).
#
#   make asan     the extension (build/asan/pagepir.so), libpagepir.a and the C
#                 unit tests built with AddressSanitizer + UndefinedBehavior-
#                 Sanitizer, then the C unit tests and the whole Tcl suite run
#                 against them (test/run_asan.sh); ends with "N passed, N failed"
#                 and fails on any sanitizer report. docs/RELIABILITY.md.
#
# Always the CPU stub for CUDA (gpu/cuda_stub.c): nvcc objects are not
# instrumented. The SIMD kernels get -O1 too (the last -O wins).
# ASAN_CC picks the compiler (default $(CC); clang works as well: the runtime
# to preload is asked from the same compiler).

ASAN_CC    ?= $(CC)
ASAN_B     := $(B)/asan
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -g -O1
# The runtime tclsh must preload: gcc's libasan.so, or clang's libclang_rt.asan.
ASAN_RT    := $(shell if $(ASAN_CC) --version 2>/dev/null | grep -q clang; \
                then $(ASAN_CC) -print-file-name=libclang_rt.asan-$$(uname -m).so; \
                else $(ASAN_CC) -print-file-name=libasan.so; fi 2>/dev/null)

ASAN_SO_OBJ   := $(EXT_SRC:%=$(ASAN_B)/so/%.o)
ASAN_A_OBJ    := $(EXT_SRC:%=$(ASAN_B)/a/%.o)
ASAN_STUB_OBJ := $(ASAN_B)/gpu/cuda_stub.o
ASAN_UNIT_OBJ := $(filter-out $(ASAN_B)/a/pagepir.o,$(ASAN_A_OBJ))
# Every C unit test program (test/unit/test_*.c), test_primitives first.
ASAN_UNIT     := test_primitives $(filter-out test_primitives,$(sort \
                 $(patsubst test/unit/%.c,%,$(wildcard test/unit/test_*.c))))

.PHONY: asan asan-build
asan: check-deps asan-build all $(B)/mksnap
	@ASAN_RT="$(ASAN_RT)" ASAN_B="$(ASAN_B)" ASAN_UNIT="$(ASAN_UNIT)" sh test/run_asan.sh

asan-build: $(ASAN_B)/pagepir.so $(ASAN_B)/libpagepir.a $(ASAN_UNIT:%=$(ASAN_B)/test/%)

$(ASAN_B)/so $(ASAN_B)/a $(ASAN_B)/gpu $(ASAN_B)/test:
	mkdir -p $@

$(ASAN_B)/so/%.o: ext/%.c $(HEADERS) test/sanitize.mk | $(ASAN_B)/so
	$(ASAN_CC) $(CFLAGS) $(SIMD_FLAGS_$*) $(ASAN_FLAGS) -c $< -o $@
$(ASAN_B)/a/%.o: ext/%.c $(HEADERS) test/sanitize.mk | $(ASAN_B)/a
	$(ASAN_CC) $(CFLAGS) $(SIMD_FLAGS_$*) $(ASAN_FLAGS) -DSQLITE_CORE -c $< -o $@
$(ASAN_STUB_OBJ): gpu/cuda_stub.c $(HEADERS) test/sanitize.mk | $(ASAN_B)/gpu
	$(ASAN_CC) $(CFLAGS) $(ASAN_FLAGS) -c $< -o $@

$(ASAN_B)/pagepir.so: $(ASAN_SO_OBJ) $(ASAN_STUB_OBJ)
	$(ASAN_CC) $(ASAN_FLAGS) -shared -o $@.tmp $^ $(LDLIBS) && mv -f $@.tmp $@
$(ASAN_B)/libpagepir.a: $(ASAN_A_OBJ) $(ASAN_STUB_OBJ)
	rm -f $@.tmp && ar rcs $@.tmp $^ && mv -f $@.tmp $@

# As the top Makefile links them: test_primitives from the objects, every
# other unit test against the static library.
$(ASAN_B)/test/test_primitives: test/unit/test_primitives.c $(ASAN_UNIT_OBJ) $(ASAN_STUB_OBJ) | $(ASAN_B)/test
	$(ASAN_CC) $(CFLAGS) $(ASAN_FLAGS) -DSQLITE_CORE $^ -o $@ $(SQLITE_LIBS) $(LDLIBS)
$(ASAN_B)/test/test_%: test/unit/test_%.c test/unit/sql_checks.h $(ASAN_B)/libpagepir.a | $(ASAN_B)/test
	$(ASAN_CC) $(CFLAGS) $(ASAN_FLAGS) $< -o $@ $(ASAN_B)/libpagepir.a $(SQLITE_LIBS) $(LDLIBS)
