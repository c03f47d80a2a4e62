// LD_PRELOAD counter of malloc's live usable bytes and blocks, for bench/idle_bytes.py: written to
// $ALLOC_COUNT_FILE every 200 ms as "bytes blocks".
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
extern void* __libc_malloc(size_t);
extern void __libc_free(void*);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
static atomic_long live, count;
// Counts block p in (+1) or out (-1); nothing for a null pointer. Returns p.
static void* counted(void* p, int sign) {
  if (p) {
    atomic_fetch_add(&live, sign * (long)malloc_usable_size(p));
    atomic_fetch_add(&count, sign);
  }
  return p;
}
void* malloc(size_t n) {
  return counted(__libc_malloc(n), 1);
}
void free(void* p) {
  __libc_free(counted(p, -1));
}
void* calloc(size_t a, size_t b) {
  return counted(__libc_calloc(a, b), 1);
}
void* realloc(void* q, size_t n) {
  counted(q, -1);
  void* p = __libc_realloc(q, n);
  if (!p) {
    counted(q, 1);  // a failed realloc leaves q as it was
    return NULL;
  }
  return counted(p, 1);
}
void* aligned_alloc(size_t a, size_t n) {
  return counted(__libc_memalign(a, n), 1);
}
int posix_memalign(void** r, size_t a, size_t n) {
  void* p = aligned_alloc(a, n);
  if (!p) return 12;  // ENOMEM
  *r = p;
  return 0;
}
void* memalign(size_t a, size_t n) {
  return aligned_alloc(a, n);
}
static void* reporter(void* _) {
  const char* f = getenv("ALLOC_COUNT_FILE");
  if (!f) return 0;
  for (;;) {
    usleep(200000);
    FILE* o = fopen(f, "w");
    if (o) {
      fprintf(o, "%ld %ld\n", atomic_load(&live), atomic_load(&count));
      fclose(o);
    }
  }
}
__attribute__((constructor)) static void init(void) {
  pthread_t t;
  pthread_create(&t, 0, reporter, 0);
}
