/* SPDX-License-Identifier: Apache-2.0 */
/* An LD_PRELOAD shim that makes the Nth allocation libferry asks for fail.
 *
 *   FY_FAILMALLOC_N=N          fail the Nth malloc/calloc/realloc/strdup/
 *                              strndup/aligned_alloc/posix_memalign made
 *                              from inside a library whose path contains
 *                              FY_FAILMALLOC_IN (default "libferry"); the
 *                              others pass. Unset or 0: count only.
 *   FY_FAILMALLOC_REPORT=FILE  "failed N at OBJECT+0xOFFSET" as soon as
 *                              the Nth fails (the allocation site:
 *                              addr2line -e OBJECT), and at exit "count C"
 *                              (allocations seen from that library)
 *
 * scripts/alloc-torture.sh runs a unit test for N = 1, 2, ... under
 * valgrind and reads the reports. The caller is told apart by its return
 * address (dladdr); the shim's own calls into libc are not counted. */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_memalign)(void **, size_t, size_t);

static atomic_long fm_count;
static long fm_target = -1; /* -1: not read yet */
static const char *fm_in = "libferry";
static void *fm_site;
static __thread int fm_inside; /* dladdr and getenv may allocate */

/* A static arena for dlsym's own calloc before real_calloc is known. */
static char fm_boot[4096];
static size_t fm_boot_used;

static void fm_init(void)
{
    if (real_malloc)
        return;
    fm_inside++;
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    const char *n = getenv("FY_FAILMALLOC_N"), *in = getenv("FY_FAILMALLOC_IN");
    fm_target = n ? atol(n) : 0;
    if (in && *in)
        fm_in = in;
    fm_inside--;
}

/* Writes "failed N at OBJECT+0xOFFSET" to the report (truncating it). */
static void fm_write_site(void)
{
    const char *path = getenv("FY_FAILMALLOC_REPORT");
    if (!path)
        return;
    fm_inside++;
    FILE *f = fopen(path, "w");
    if (f) {
        Dl_info info;
        if (dladdr(fm_site, &info) && info.dli_fname)
            fprintf(f, "failed %ld at %s+0x%lx\n", fm_target, info.dli_fname,
                    (unsigned long)((char *)fm_site - (char *)info.dli_fbase));
        else
            fprintf(f, "failed %ld at %p\n", fm_target, fm_site);
        fclose(f);
    }
    fm_inside--;
}

/* True when this allocation, asked for from caller, is the one to fail. */
static bool fm_fail(void *caller)
{
    if (fm_inside || fm_target < 0)
        return false;
    fm_inside++;
    Dl_info info;
    bool ours = dladdr(caller, &info) && info.dli_fname && strstr(info.dli_fname, fm_in);
    fm_inside--;
    if (!ours)
        return false;
    long k = atomic_fetch_add(&fm_count, 1) + 1;
    if (fm_target > 0 && k == fm_target) {
        fm_site = caller;
        fm_write_site(); /* now: a crash after it must not lose the site */
        return true;
    }
    return false;
}

#define CALLER __builtin_extract_return_addr(__builtin_return_address(0))

void *malloc(size_t size)
{
    fm_init();
    if (fm_fail(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    return real_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    if (!real_calloc) {
        if (!real_malloc && fm_inside) { /* dlsym asking during fm_init */
            size_t len = (n * size + 15) & ~(size_t)15;
            if (fm_boot_used + len > sizeof(fm_boot))
                return NULL;
            void *p = fm_boot + fm_boot_used;
            fm_boot_used += len;
            return p; /* zeroed: static storage */
        }
        fm_init();
    }
    if (fm_fail(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    return real_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    fm_init();
    if (fm_fail(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    return real_realloc(p, size);
}

void free(void *p)
{
    static void (*real_free)(void *);
    if ((char *)p >= fm_boot && (char *)p < fm_boot + sizeof(fm_boot))
        return;
    if (!real_free)
        real_free = dlsym(RTLD_NEXT, "free");
    real_free(p);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    fm_init();
    if (fm_fail(CALLER))
        return ENOMEM;
    return real_memalign(out, align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    fm_init();
    void *p = NULL;
    if (fm_fail(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    return real_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) ? NULL : p;
}

char *strdup(const char *s)
{
    fm_init();
    if (fm_fail(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *p = real_malloc(n);
    return p ? memcpy(p, s, n) : NULL;
}

char *strndup(const char *s, size_t max)
{
    fm_init();
    if (fm_fail(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t n = strnlen(s, max);
    char *p = real_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

__attribute__((destructor)) static void fm_report(void)
{
    const char *path = getenv("FY_FAILMALLOC_REPORT");
    if (!path)
        return;
    fm_inside++;
    FILE *f = fopen(path, fm_site ? "a" : "w"); /* after the site's line */
    if (f) {
        fprintf(f, "count %ld\n", (long)atomic_load(&fm_count));
        fclose(f);
    }
    fm_inside--;
}
