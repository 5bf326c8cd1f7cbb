/* SIGBUS from the snapshot mapping becomes an error (see fault_guard.h). */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include "fault_guard.h"

_Thread_local sigjmp_buf *pp_guard_jmp;

static struct sigaction previous;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *info, void *uctx) {
  sigjmp_buf *jb = pp_guard_jmp;
  if (jb) siglongjmp(*jb, 1);
  /* Not ours: behave as if we were never installed. */
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction) {
      previous.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  /* Default action: restore it and let the fault happen again. */
  signal(SIGBUS, SIG_DFL);
}

static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &previous);
}

void pp_guard_install(void) { pthread_once(&once, install); }

int pp_guarded_copy(void *dst, const void *src, unsigned long len) {
  sigjmp_buf jb;
  pp_guard_install();
  if (sigsetjmp(jb, 1)) {
    pp_guard_end();
    return 1;
  }
  pp_guard_jmp = &jb;
  memcpy(dst, src, len);
  pp_guard_end();
  return 0;
}
