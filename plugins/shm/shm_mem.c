/* SPDX-License-Identifier: Apache-2.0 */
/* SHM memory: allocations and registrations.
 *
 * mem_alloc hands out memfd-backed memory, mapped shared. The memfd is
 * sealed against shrinking and growing, so a peer that maps part of it can
 * trust the size it checked: a truncation cannot turn its copies into
 * SIGBUS. A region registered inside such an allocation is published as
 * "memfd" with a random token; the fd server (shm_srv.c) hands the memfd to
 * peers of our user that name a registered token, and to nobody else. Any
 * other DRAM region is published as ordinary memory, which peers reach by
 * cross-memory attach. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "shm_internal.h"

#define FY_SHM_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* ---- allocations ---- */

static ferry_status fy_shm_memfd(fy_shm *be, uint64_t len, int *out)
{
    int fd = memfd_create("ferry-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        fy_shm_log(be, FERRY_LOG_ERROR, "memfd_create: %s", strerror(errno));
        return errno == ENOMEM || errno == EMFILE ? FERRY_ERR_NO_MEMORY : FERRY_ERR_BACKEND;
    }
    if (ftruncate(fd, (off_t)len) != 0 || fcntl(fd, F_ADD_SEALS, FY_SHM_SEALS) != 0) {
        fy_shm_log(be, FERRY_LOG_ERROR, "memfd of %llu bytes: %s", (unsigned long long)len,
                   strerror(errno));
        close(fd);
        return FERRY_ERR_NO_MEMORY;
    }
    *out = fd;
    return FERRY_OK;
}

static ferry_status fy_shm_alloc_map(fy_shm *be, fy_shm_alloc *a)
{
    void *p = mmap(NULL, a->len, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
    if (p == MAP_FAILED) {
        fy_shm_log(be, FERRY_LOG_ERROR, "mapping a memfd of %llu bytes: %s",
                   (unsigned long long)a->len, strerror(errno));
        return FERRY_ERR_NO_MEMORY;
    }
    a->base = p;
    return FERRY_OK;
}

ferry_status fy_shm_mem_alloc(void *priv, ferry_mem_type type, uint64_t len, uint64_t dev_id,
                              void **addr, void **alloc)
{
    fy_shm *be = priv;
    (void)dev_id;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!len || len > (uint64_t)INT64_MAX || !addr || !alloc)
        return FERRY_ERR_INVALID_PARAM;
    fy_shm_alloc *a = calloc(1, sizeof(*a));
    if (!a)
        return FERRY_ERR_NO_MEMORY;
    a->len = len;
    a->refs = 1; /* mem_free's */
    ferry_status rc = fy_shm_memfd(be, len, &a->fd);
    if (rc == FERRY_OK && (rc = fy_shm_alloc_map(be, a)) != FERRY_OK)
        close(a->fd);
    if (rc != FERRY_OK) {
        free(a);
        return rc;
    }
    pthread_mutex_lock(&be->lock);
    a->next = be->allocs;
    be->allocs = a;
    pthread_mutex_unlock(&be->lock);
    *addr = a->base;
    *alloc = a;
    return FERRY_OK;
}

/* Under be->lock. */
static void fy_shm_alloc_unref(fy_shm *be, fy_shm_alloc *a)
{
    if (--a->refs)
        return;
    fy_shm_alloc **link = &be->allocs;
    while (*link != a)
        link = &(*link)->next;
    *link = a->next;
    munmap(a->base, a->len);
    close(a->fd);
    free(a);
}

/* The memory stays until the last region inside it is deregistered too. */
void fy_shm_mem_free(void *priv, void *alloc)
{
    fy_shm *be = priv;
    pthread_mutex_lock(&be->lock);
    fy_shm_alloc_unref(be, alloc);
    pthread_mutex_unlock(&be->lock);
}

/* Under be->lock: the allocation holding [addr, addr + len), if any. */
static fy_shm_alloc *fy_shm_alloc_of(fy_shm *be, uint64_t addr, uint64_t len)
{
    for (fy_shm_alloc *a = be->allocs; a; a = a->next) {
        uint64_t base = (uintptr_t)a->base;
        if (addr >= base && len <= a->len && addr - base <= a->len - len)
            return a;
    }
    return NULL;
}

/* ---- registration ---- */

static uint64_t fy_shm_token(void)
{
    uint64_t t = 0;
    while (!t)
        if (getrandom(&t, sizeof(t), 0) != (ssize_t)sizeof(t))
            t = 0;
    return t;
}

static ferry_status fy_shm_publish(const fy_shm_region *g, void **pub, size_t *pub_len)
{
    uint8_t *p = malloc(FY_SHM_PUB_LEN);
    if (!p)
        return FERRY_ERR_NO_MEMORY;
    fy_shm_pub k = {.kind = g->alloc ? FY_SHM_KIND_MEMFD : FY_SHM_KIND_CMA,
                    .addr = g->addr,
                    .len = g->len,
                    .token = g->alloc ? g->token : 0};
    fy_shm_pub_encode(&k, p);
    *pub = p;
    *pub_len = FY_SHM_PUB_LEN;
    return FERRY_OK;
}

ferry_status fy_shm_reg(void *priv, ferry_mem_type type, const ferry_desc *desc, const void *meta,
                        size_t meta_len, void **region, void **pub, size_t *pub_len)
{
    fy_shm *be = priv;
    (void)meta, (void)meta_len;
    if (type != FERRY_MEM_DRAM)
        return FERRY_ERR_NOT_SUPPORTED;
    if (!desc || !region || !pub || !pub_len || !desc->len || desc->addr + desc->len < desc->addr)
        return FERRY_ERR_INVALID_PARAM;
    fy_shm_region *g = calloc(1, sizeof(*g));
    if (!g)
        return FERRY_ERR_NO_MEMORY;
    *g = (fy_shm_region){.addr = desc->addr, .len = desc->len, .token = fy_shm_token()};
    pthread_mutex_lock(&be->lock);
    g->alloc = fy_shm_alloc_of(be, g->addr, g->len);
    if (g->alloc)
        g->alloc->refs++;
    g->next = be->regions;
    be->regions = g;
    pthread_mutex_unlock(&be->lock);
    ferry_status rc = fy_shm_publish(g, pub, pub_len);
    if (rc != FERRY_OK) {
        fy_shm_dereg(be, g);
        return rc;
    }
    *region = g;
    return FERRY_OK;
}

void fy_shm_dereg(void *priv, void *region)
{
    fy_shm *be = priv;
    fy_shm_region *g = region;
    pthread_mutex_lock(&be->lock);
    fy_shm_region **link = &be->regions;
    while (*link != g)
        link = &(*link)->next;
    *link = g->next;
    if (g->alloc)
        fy_shm_alloc_unref(be, g->alloc);
    pthread_mutex_unlock(&be->lock);
    free(g);
}

bool fy_shm_lookup(fy_shm *be, uint64_t token, int *fd, uint64_t *offset, uint64_t *len)
{
    bool found = false;
    pthread_mutex_lock(&be->lock);
    for (fy_shm_region *g = be->regions; g && !found; g = g->next) {
        if (!g->alloc || g->token != token)
            continue;
        *fd = fcntl(g->alloc->fd, F_DUPFD_CLOEXEC, 0); /* the server closes it after sending */
        *offset = g->addr - (uintptr_t)g->alloc->base;
        *len = g->len;
        found = *fd >= 0;
    }
    pthread_mutex_unlock(&be->lock);
    return found;
}

/* Allocations the application did not free (the core frees them before
 * fini; this is a backstop against leaks). */
void fy_shm_mem_fini(fy_shm *be)
{
    while (be->allocs) {
        fy_shm_alloc *a = be->allocs;
        be->allocs = a->next;
        munmap(a->base, a->len);
        close(a->fd);
        free(a);
    }
}
