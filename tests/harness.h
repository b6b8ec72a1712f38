/* SPDX-License-Identifier: Apache-2.0 */
/* Minimal TAP test harness for ferry's C tests.
 *
 * A test program is main() calling FY_RUN(fn) for each test function and
 * returning fy_test_done(). Each FY_RUN prints one TAP line ("ok N - fn" or
 * "not ok N - fn"), the plan is printed at the end. FY_CHECK* record a
 * failure (with file:line on stderr... printed as a TAP comment) and go on.
 * FY_SKIP(reason) inside a test marks it skipped and returns from it.
 * fy_test_skip_all(reason) exits 77 with a TAP skip plan: for programs whose
 * hardware or dependency is absent. */
#ifndef FY_TEST_HARNESS_H
#define FY_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fy_t_count, fy_t_failed_total, fy_t_failed, fy_t_skipped;
static const char *fy_t_skip_reason;

#define FY_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                      \
            fy_t_failed++;                                                                         \
        }                                                                                          \
    } while (0)

#define FY_CHECK_EQ(a, b)                                                                          \
    do {                                                                                           \
        long long fy_a_ = (long long)(a), fy_b_ = (long long)(b);                                  \
        if (fy_a_ != fy_b_) {                                                                      \
            printf("# %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, fy_a_,  \
                   fy_b_);                                                                         \
            fy_t_failed++;                                                                         \
        }                                                                                          \
    } while (0)

/* Stops the current test when cond is false (for preconditions). */
#define FY_REQUIRE(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("# %s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond);                \
            fy_t_failed++;                                                                         \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define FY_SKIP(reason)                                                                            \
    do {                                                                                           \
        fy_t_skip_reason = (reason);                                                               \
        return;                                                                                    \
    } while (0)

#define FY_RUN(fn) fy_test_run(#fn, fn)

static inline void fy_test_run(const char *name, void (*fn)(void))
{
    fy_t_failed = 0;
    fy_t_skip_reason = NULL;
    fn();
    fy_t_count++;
    if (fy_t_failed) {
        fy_t_failed_total++;
        printf("not ok %d - %s\n", fy_t_count, name);
    } else if (fy_t_skip_reason) {
        fy_t_skipped++;
        printf("ok %d - %s # SKIP %s\n", fy_t_count, name, fy_t_skip_reason);
    } else {
        printf("ok %d - %s\n", fy_t_count, name);
    }
    fflush(stdout);
}

static inline int fy_test_done(void)
{
    printf("1..%d\n", fy_t_count);
    fflush(stdout); /* a leak checker may end the process before exit flushes */
    return fy_t_failed_total ? 1 : 0;
}

static inline void fy_test_skip_all(const char *reason)
{
    printf("1..0 # SKIP %s\n", reason);
    fflush(stdout);
    exit(77);
}

/* The Python that runs a test's helper scripts: FERRY_TEST_PYTHON (a host
 * whose torch lives in a venv), else Debian's. */
static inline const char *fy_test_python(void)
{
    const char *p = getenv("FERRY_TEST_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

/* Exit 77 unless that Python imports torch.distributed. */
static inline void fy_test_need_torch(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s' -c 'import torch.distributed' >/dev/null 2>&1",
             fy_test_python());
    if (system(cmd) != 0)
        fy_test_skip_all("no torch.distributed (Debian python3-torch, or FERRY_TEST_PYTHON)");
}

#endif
