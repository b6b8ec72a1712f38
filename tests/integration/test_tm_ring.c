/* SPDX-License-Identifier: Apache-2.0 */
/* The event ring read from another process. The reader is a child forked
 * before the agent exists; the parent's agent writes the ring (16 slots).
 * Phases, each started by a byte on a pipe:
 *   1. the two registrations of the fixture: both read, in order, none lost;
 *   2. 100 transfers (200 events) written while the reader waits: it finds
 *      exactly 184 overwritten and reads the last 16 in order;
 *   3. 2000 transfers written while the reader follows: every event is
 *      either read (sequence numbers strictly increasing) or counted lost.
 * The child's exit status is its verdict. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "telemetry/ring.h"
#include "testutil.h"

#define SIZE 512u

static int to_child[2], to_parent[2];
static char dir[] = "/tmp/ferry-ring-XXXXXX";
static char ring_path[600];

static int child_fail(const char *what)
{
    printf("# reader: %s\n", what);
    return 1;
}

static void wait_byte(int fd)
{
    char c;
    if (read(fd, &c, 1) != 1)
        _exit(3);
}

static void send_byte(int fd)
{
    if (write(fd, "x", 1) != 1)
        _exit(3);
}

/* Reads what is there; seen and the last sequence number read. */
static int drain(fy_ring_reader *r, uint64_t *seen, uint64_t *last, ferry_ring_slot *e)
{
    while (fy_ring_next(r, e) == FERRY_OK) {
        uint64_t seq = e->stamp - 1;
        if (*seen && seq <= *last)
            return child_fail("sequence numbers went backwards");
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t now_us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
        if (e->time_us + 1000000u < r->hdr->created_us || e->time_us > now_us + 1000000u)
            return child_fail("an event's time is not a wall-clock time of this run");
        *last = seq;
        (*seen)++;
    }
    return 0;
}

static int child_phase12(fy_ring_reader *r)
{
    ferry_ring_slot e;
    uint64_t seen = 0, last = 0;
    if (drain(r, &seen, &last, &e) || seen != 2 || r->lost || e.type != FERRY_RING_MEM_REGISTER)
        return child_fail("phase 1: want the two registrations");
    send_byte(to_parent[1]);
    wait_byte(to_child[0]);
    seen = 0;
    if (drain(r, &seen, &last, &e))
        return 1;
    if (r->lost != 184 || seen != 16 || last != 201)
        return child_fail("phase 2: want 184 lost and events 186..201");
    if (e.type != FERRY_RING_XFER_DONE || e.value != SIZE || strcmp(e.backend, "LOCAL"))
        return child_fail("phase 2: the last event is not the last completion");
    fy_ring_reader late; /* opened now: the overwritten events are counted at once */
    if (fy_ring_open(ring_path, true, &late) != FERRY_OK)
        return child_fail("phase 2: a second reader cannot open the ring");
    bool ok = late.lost == 186 && late.next == 186;
    fy_ring_close(&late);
    return ok ? 0 : child_fail("phase 2: a reader opened late does not count 186 overwritten");
}

/* Whether the parent has said it is done writing (a byte waits). */
static bool parent_done(void)
{
    struct pollfd p = {.fd = to_child[0], .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

static int child_phase3(fy_ring_reader *r)
{
    ferry_ring_slot e;
    uint64_t seen = 0, last = 201, lost0 = r->lost;
    send_byte(to_parent[1]);
    bool done = false;
    while (!done) {
        done = parent_done(); /* read after this still sees every event */
        if (drain(r, &seen, &last, &e))
            return 1;
    }
    printf("# reader: phase 3 read %llu, lost %llu\n", (unsigned long long)seen,
           (unsigned long long)(r->lost - lost0));
    if (seen + (r->lost - lost0) != 4000 || last != 4201)
        return child_fail("phase 3: read + lost != written");
    return 0;
}

static int child_main(void)
{
    fy_ring_reader r;
    wait_byte(to_child[0]);
    snprintf(ring_path, sizeof(ring_path), "%s/ring-writer.ring", dir);
    if (fy_ring_open(ring_path, true, &r) != FERRY_OK)
        return child_fail("cannot open the ring");
    if (r.hdr->capacity != 16 || r.hdr->pid != (uint32_t)getppid())
        return child_fail("header: capacity or pid");
    int rc = child_phase12(&r);
    if (!rc)
        rc = child_phase3(&r);
    fy_ring_close(&r);
    return rc;
}

/* n transfers; with pace, a short sleep every 8, so that a following
 * reader gets to run between bursts (and still falls behind in some). */
static ferry_status writes(tu_loop *lp, int n, bool pace)
{
    ferry_status rc = FERRY_OK;
    for (int i = 0; i < n && rc == FERRY_OK; i++) {
        if (pace && i % 8 == 0)
            usleep(20);
        ferry_xfer *x = NULL;
        rc = tu_loop_xfer(lp, FERRY_OP_WRITE, SIZE, NULL, &x);
        if (rc == FERRY_OK)
            rc = tu_post_wait(x);
        ferry_xfer_release(x);
    }
    return rc;
}

static void test_reader_in_another_process(void)
{
    FY_REQUIRE(mkdtemp(dir) != NULL);
    FY_REQUIRE(pipe(to_child) == 0 && pipe(to_parent) == 0);
    fflush(stdout);
    pid_t pid = fork();
    FY_REQUIRE(pid >= 0);
    if (pid == 0) {
        int verdict = child_main();
        fflush(stdout); /* _exit flushes nothing: the reader's lines would be lost */
        _exit(verdict);
    }
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    cfg.telemetry = true;
    cfg.telemetry_exporters = "ring";
    cfg.telemetry_dir = dir;
    cfg.telemetry_ring_slots = 16;
    tu_loop lp;
    FY_CHECK_EQ(tu_loop_open(&lp, "ring-writer", &cfg, NULL, 0, SIZE), FERRY_OK);
    send_byte(to_child[1]);
    wait_byte(to_parent[0]);
    FY_CHECK_EQ(writes(&lp, 100, false), FERRY_OK);
    send_byte(to_child[1]);
    wait_byte(to_parent[0]);
    FY_CHECK_EQ(writes(&lp, 2000, true), FERRY_OK);
    send_byte(to_child[1]);
    int status = 0;
    FY_CHECK(waitpid(pid, &status, 0) == pid);
    FY_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_loop_close(&lp);
    char path[600];
    snprintf(path, sizeof(path), "%s/ring-writer.ring", dir);
    FY_CHECK(access(path, F_OK) != 0); /* the agent removes its ring */
    rmdir(dir);
}

/* Files that are not rings are refused, not read. */
static void test_not_a_ring(void)
{
    char path[] = "/tmp/ferry-notring-XXXXXX";
    int fd = mkstemp(path);
    FY_REQUIRE(fd >= 0);
    char junk[4096];
    memset(junk, 'F', sizeof(junk));
    FY_CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    close(fd);
    fy_ring_reader r;
    FY_CHECK_EQ(fy_ring_open(path, true, &r), FERRY_ERR_BAD_METADATA);
    unlink(path);
    FY_CHECK_EQ(fy_ring_open(path, true, &r), FERRY_ERR_IO);
}

int main(void)
{
    FY_RUN(test_reader_in_another_process);
    FY_RUN(test_not_a_ring);
    return fy_test_done();
}
