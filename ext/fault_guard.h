/*
** Turning SIGBUS from the snapshot mapping into an error.
**
** A mapped file that shrinks under us (truncated by an operator, a failing
** disk) raises SIGBUS on the next touch of a page past its new end. Code
** that reads the mapping runs between PP_GUARD_BEGIN and pp_guard_end: a
** SIGBUS there jumps back to PP_GUARD_BEGIN, which then evaluates nonzero,
** and the caller returns an error instead of the process dying. A SIGBUS
** anywhere else goes to whatever handler was installed before ours.
**
** Rules for guarded code (it is left by siglongjmp): own no resources that
** were acquired inside the guarded region, and call nothing that may hold a
** lock (no SQLite calls, no malloc) while guarded.
*/
#ifndef PAGEPIR_FAULT_GUARD_H
#define PAGEPIR_FAULT_GUARD_H

#include <setjmp.h>

/* Installs the process-wide handler once (chaining to the previous one). */
void pp_guard_install(void);

/* The calling thread's jump target while guarded, NULL otherwise. */
extern _Thread_local sigjmp_buf *pp_guard_jmp;

/* Usage (sigsetjmp may only stand alone in an if's condition):
**   sigjmp_buf jb;
**   pp_guard_install();
**   if (sigsetjmp(jb, 1)) { pp_guard_end(); ...fault path... }
**   pp_guard_jmp = &jb;
**   ...read the mapping...
**   pp_guard_end();
*/
static inline void pp_guard_end(void) { pp_guard_jmp = 0; }

/* Copies len bytes from the mapping; returns nonzero if that faulted. */
int pp_guarded_copy(void *dst, const void *src, unsigned long len);

#endif
