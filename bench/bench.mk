# The benchmark matrix (bench/matrix.c) and its GPU floor/baseline
# (gpu/baseline_kernel.cu): included by the Makefile. Never part of
# pagepir.so or libpagepir.a.
#
#   make build/bench_matrix     the driver (CUDA floor/baseline compiled in
#                               when nvcc is found)
#   make bench                  CPU: matrix + scan benchmark (bench/run_cpu.sh)
#   make bench-gpu              CUDA: matrix on a GPU host (bench/run_gpu.sh)

ifneq ($(GPU_SRC),gpu/cuda_stub.c)
  BENCH_GPU_OBJ := $(B)/gpu/baseline_kernel.o
  BENCH_DEFS    := -DPP_BENCH_CUDA
endif

$(B)/gpu/baseline_kernel.o: gpu/baseline_kernel.cu gpu/baseline_kernel.h $(HEADERS) | $(B)/gpu
	$(NVCC) $(NVCCFLAGS) $(CUDA_ARCH) -Xcompiler -fPIC -c $< -o $@

$(B)/bench_matrix: bench/matrix.c gpu/baseline_kernel.h $(HEADERS) libpagepir.a $(BENCH_GPU_OBJ) | $(B)
	$(CC) $(CFLAGS) -O3 $(BENCH_DEFS) bench/matrix.c $(BENCH_GPU_OBJ) -o $@ libpagepir.a \
	  $(SQLITE_LIBS) $(GPU_LIBS) $(LDLIBS)

# The GPU path's control flow on a machine without a GPU: the harness
# interface answered on the CPU by bench/mock_gpu.c (timings meaningless).
#   build/bench_matrix_mock --backend cuda --table-backend cpu --pages 4096 --qs "1 2" --conc "1 2"
$(B)/bench_matrix_mock: bench/matrix.c bench/mock_gpu.c gpu/baseline_kernel.h $(HEADERS) libpagepir.a | $(B)
	$(CC) $(CFLAGS) -DPP_BENCH_CUDA bench/matrix.c bench/mock_gpu.c -o $@ libpagepir.a \
	  $(SQLITE_LIBS) $(GPU_LIBS) $(LDLIBS)
