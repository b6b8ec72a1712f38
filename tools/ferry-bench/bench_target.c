/* SPDX-License-Identifier: Apache-2.0 */
/* A target process: registers its buffer, tells where it is (listener
 * port, buffer address) and then only answers: its progress
 * thread serves the initiators' transfers (UCX on one host needs the
 * target's progress), and each "end of step" notification is answered
 * once what that initiator wrote has been checked and cleared. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

typedef struct fb_target {
    const fb_config *cfg;
    const fb_meet *meet;
    fb_side side;
} fb_target;

/* "fb-init-3" -> 3 */
static unsigned fb_init_id(const char *name)
{
    unsigned id;
    if (sscanf(name, "fb-init-%u", &id) != 1)
        fb_die("notification from unknown agent %s", name);
    return id;
}

static bool fb_target_end(void *ctx, const char *from, unsigned step)
{
    fb_target *t = ctx;
    if (step >= t->cfg->nsteps)
        fb_die("%s ended step %u of %zu", from, step, t->cfg->nsteps);
    return fb_side_settle(&t->side, t->cfg, fb_init_id(from), &t->cfg->steps[step]);
}

static void fb_target_watch(void *ctx)
{
    const fb_target *t = ctx;
    t->meet->watch(t->meet->ctx);
}

static unsigned fb_target_peers(const fb_config *c, unsigned id)
{
    unsigned n = 0;
    for (size_t k = 0; k < c->topo.nlinks; k++)
        n += c->topo.links[k].target == id;
    return n;
}

int fb_target_main(const fb_config *c, unsigned id, const fb_meet *meet)
{
    char name[64];
    snprintf(name, sizeof(name), "fb-target-%u", id);
    bool listen = !c->etcd.endpoints; /* etcd carries the metadata otherwise */
    fb_agent_opts o = {.name = name,
                       .backend = c->backend,
                       .params = c->params,
                       .listen = listen,
                       .progress = true};
    ferry_backend *be;
    ferry_agent *a = fb_agent_new(&o, &be);
    fb_target t = {.cfg = c, .meet = meet};
    fb_side_init(&t.side, c, false, id, a);
    fb_side_register(&t.side, c, a);
    fb_target_info info = {
        .base = (uintptr_t)t.side.mem.ptr, .size = t.side.mem.size, .dev = t.side.mem.dev};
    if (listen)
        fb_ok(ferry_md_listen_port(a, &info.port), "listen port");
    meet->announce(meet->ctx, a, &info);
    bool ok = fb_serve(a, fb_target_peers(c, id), fb_target_end,
                       meet->watch ? fb_target_watch : NULL, &t);
    fb_side_deregister(&t.side, c, a);
    ferry_agent_destroy(a);
    fb_side_free(&t.side, c);
    return ok ? FB_EXIT_OK : FB_EXIT_MISMATCH;
}
