/* Picks the SIMD kernel table from CPUID (or by name, for tests). */
#include <stdio.h>
#include <string.h>
#include "simd.h"

#if defined(__x86_64__) || defined(__i386__)
#define PP_X86 1
static int cpu_has(const char *feature) {
  __builtin_cpu_init();
  if (!strcmp(feature, "avx2"))
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul");
  if (!strcmp(feature, "avx512"))
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("pclmul");
  return 0;
}
#else
#define PP_X86 0
static int cpu_has(const char *feature) { (void)feature; return 0; }
#endif

static const pp_simd *by_name(const char *name) {
#if PP_X86
  if (!strcmp(name, "avx512")) return &pp_simd_avx512;
  if (!strcmp(name, "avx2")) return &pp_simd_avx2;
#endif
  if (!strcmp(name, "portable")) return &pp_simd_portable;
  return NULL;
}

const pp_simd *pp_simd_select(const char *name, char *err, size_t errlen) {
  if (!name || !strcmp(name, "auto")) {
    if (cpu_has("avx512")) return by_name("avx512");
    if (cpu_has("avx2")) return by_name("avx2");
    return &pp_simd_portable;
  }
  if (strcmp(name, "avx512") && strcmp(name, "avx2") && strcmp(name, "portable")) {
    snprintf(err, errlen, "unknown simd '%s' (use auto, avx512, avx2 or portable)", name);
    return NULL;
  }
  if (strcmp(name, "portable") && !cpu_has(name)) {
    snprintf(err, errlen, "simd '%s' is not supported by this CPU (available: %s)",
             name, pp_simd_available());
    return NULL;
  }
  return by_name(name);
}

const char *pp_simd_available(void) {
  if (cpu_has("avx512")) return "avx512 avx2 portable";
  if (cpu_has("avx2")) return "avx2 portable";
  return "portable";
}
