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
void* malloc(size_t n) {
  void* p = __libc_malloc(n);
  if (p) {
    atomic_fetch_add(&live, malloc_usable_size(p));
    atomic_fetch_add(&count, 1);
  }
  return p;
}
void free(void* p) {
  if (p) {
    atomic_fetch_sub(&live, malloc_usable_size(p));
    atomic_fetch_sub(&count, 1);
  }
  __libc_free(p);
}
void* calloc(size_t a, size_t b) {
  void* p = __libc_calloc(a, b);
  if (p) {
    atomic_fetch_add(&live, malloc_usable_size(p));
    atomic_fetch_add(&count, 1);
  }
  return p;
}
void* realloc(void* q, size_t n) {
  if (q) {
    atomic_fetch_sub(&live, malloc_usable_size(q));
    atomic_fetch_sub(&count, 1);
  }
  void* p = __libc_realloc(q, n);
  if (p) {
    atomic_fetch_add(&live, malloc_usable_size(p));
    atomic_fetch_add(&count, 1);
  } else if (q) {
    atomic_fetch_add(&live, malloc_usable_size(q));
    atomic_fetch_add(&count, 1);
  }
  return p;
}
int posix_memalign(void** r, size_t a, size_t n) {
  void* p = __libc_memalign(a, n);
  if (!p) return 12;
  atomic_fetch_add(&live, malloc_usable_size(p));
  atomic_fetch_add(&count, 1);
  *r = p;
  return 0;
}
void* aligned_alloc(size_t a, size_t n) {
  void* p = __libc_memalign(a, n);
  if (p) {
    atomic_fetch_add(&live, malloc_usable_size(p));
    atomic_fetch_add(&count, 1);
  }
  return p;
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
