/* SPDX-License-Identifier: Apache-2.0 */
/* What a peer can reach through SHM, and bad input, with two agents of this
 * process (the fd server and the mappings work the same between
 * processes; test_shm_2proc covers those):
 *   - a region the target deregistered is refused by its fd server, even
 *     to a peer holding its old key; a registered one still works;
 *   - bad params, memory types and notification sizes get a status, a
 *     detail and no crash. */
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "shm_test.h"

#define LEN (1u << 20)

typedef struct agent2 {
    ferry_agent *agent;
    ferry_backend *shm;
} agent2;

static ferry_status open_agent(agent2 *a, const char *name, const ferry_param *params, size_t n)
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.name = name;
    ferry_status rc = ferry_agent_create(&cfg, &a->agent);
    return rc == FERRY_OK ? ferry_backend_create(a->agent, "SHM", params, n, &a->shm) : rc;
}

static ferry_dlist *one(uint64_t addr, uint64_t len)
{
    ferry_dlist *l = NULL;
    if (ferry_dlist_create(FERRY_MEM_DRAM, 1, &l) == FERRY_OK)
        ferry_dlist_add(l, addr, len, 0);
    return l;
}

static ferry_status reg(agent2 *a, void *p, bool on)
{
    ferry_dlist *l = one((uintptr_t)p, LEN);
    ferry_status rc = on ? ferry_register(a->agent, l, NULL) : ferry_deregister(a->agent, l, NULL);
    ferry_dlist_destroy(l);
    return rc;
}

static ferry_status write_to(agent2 *ini, void *src, void *dst, ferry_xfer **x)
{
    ferry_dlist *l = one((uintptr_t)src, LEN), *r = one((uintptr_t)dst, LEN);
    ferry_status rc = ferry_xfer_create(ini->agent, FERRY_OP_WRITE, l, r, "tgt", NULL, x);
    ferry_dlist_destroy(l);
    ferry_dlist_destroy(r);
    return rc == FERRY_OK ? st_wait(*x, ferry_xfer_post(*x)) : rc;
}

static void test_deregistered_refused(void)
{
    agent2 t = {0}, i = {0};
    void *r1 = NULL, *r2 = NULL, *src = NULL;
    ferry_xfer *x1 = NULL, *x2 = NULL;
    FY_REQUIRE(open_agent(&t, "tgt", NULL, 0) == FERRY_OK);
    FY_REQUIRE(open_agent(&i, "ini", NULL, 0) == FERRY_OK);
    FY_REQUIRE(ferry_mem_alloc(t.agent, t.shm, FERRY_MEM_DRAM, LEN, 0, &r1) == FERRY_OK);
    FY_REQUIRE(ferry_mem_alloc(t.agent, t.shm, FERRY_MEM_DRAM, LEN, 0, &r2) == FERRY_OK);
    FY_REQUIRE(ferry_mem_alloc(i.agent, i.shm, FERRY_MEM_DRAM, LEN, 0, &src) == FERRY_OK);
    FY_CHECK_EQ(reg(&t, r1, true), FERRY_OK);
    FY_CHECK_EQ(reg(&t, r2, true), FERRY_OK);
    FY_CHECK_EQ(reg(&i, src, true), FERRY_OK);
    char *md = st_md_hex(t.agent);
    FY_REQUIRE(md && st_md_load(i.agent, md) == FERRY_OK);
    free(md);
    FY_CHECK_EQ(reg(&t, r2, false), FERRY_OK); /* the initiator still holds its key */
    memset(src, 0xab, LEN);
    FY_CHECK_EQ(write_to(&i, src, r2, &x2), FERRY_ERR_NOT_FOUND);
    FY_CHECK(strstr(ferry_last_error(), "refused") != NULL);
    FY_CHECK(((uint8_t *)r2)[0] != 0xab);
    FY_CHECK_EQ(write_to(&i, src, r1, &x1), FERRY_OK);
    FY_CHECK(!memcmp(r1, src, LEN));
    ferry_xfer_release(x1);
    ferry_xfer_release(x2);
    ferry_agent_destroy(i.agent);
    ferry_agent_destroy(t.agent);
}

static void test_bad_input(void)
{
    agent2 a = {0};
    const ferry_param bad[][1] = {{{"map_timeout_ms", "abc"}},
                                  {{"map_timeout_ms", "5"}},
                                  {{"map_timeout_ms", "-1"}},
                                  {{"nope", "1"}}};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        FY_CHECK_EQ(open_agent(&a, "bad", bad[k], 1), FERRY_ERR_INVALID_PARAM);
        FY_CHECK(ferry_last_error()[0] != '\0');
        ferry_agent_destroy(a.agent);
    }
    FY_REQUIRE(open_agent(&a, "ok", NULL, 0) == FERRY_OK);
    void *p = NULL;
    FY_CHECK_EQ(ferry_mem_alloc(a.agent, a.shm, FERRY_MEM_VRAM, LEN, 0, &p),
                FERRY_ERR_NOT_SUPPORTED);
    FY_CHECK_EQ(ferry_mem_alloc(a.agent, a.shm, FERRY_MEM_DRAM, 1ull << 62, 0, &p),
                FERRY_ERR_NO_MEMORY);
    FY_CHECK(p == NULL);
    ferry_agent_destroy(a.agent);
}

int main(void)
{
    FY_RUN(test_deregistered_refused);
    FY_RUN(test_bad_input);
    return fy_test_done();
}
