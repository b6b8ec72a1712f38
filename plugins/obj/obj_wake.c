/* SPDX-License-Identifier: Apache-2.0 */
/* OBJ's wait fd: curl's sockets and one timer behind an epoll fd, so that
 * the agent's progress thread sleeps until a socket of a call is ready or
 * a timeout (curl's own, or a retry's backoff) is due, instead of polling
 * every progress_delay_us while objects move. curl is driven by
 * curl_multi_socket_action on exactly the sockets that fired. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "obj_internal.h"

#define FY_OBJ_WAKE_EVENTS 64

/* CURLMOPT_SOCKETFUNCTION: keeps the socket's interest in the epoll set. */
static int fy_obj_on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct fy_obj *be = arg;
    struct epoll_event ev = {.data.fd = s};
    (void)easy, (void)sockp;

    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(be->epfd, EPOLL_CTL_DEL, s, NULL); /* may be closed already */
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    if (epoll_ctl(be->epfd, EPOLL_CTL_MOD, s, &ev) < 0 &&
        epoll_ctl(be->epfd, EPOLL_CTL_ADD, s, &ev) < 0) {
        fy_obj_log(be, FERRY_LOG_ERROR, "epoll_ctl socket %d: %s", s, strerror(errno));
        return -1; /* curl fails the transfers on that socket */
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants to be called for its timeouts. */
static int fy_obj_on_timer(CURLM *multi, long timeout_ms, void *arg)
{
    struct fy_obj *be = arg;
    (void)multi;

    be->curl_due_ns = timeout_ms < 0 ? 0 : fy_obj_now_ns() + (uint64_t)timeout_ms * 1000000u;
    return 0;
}

static void fy_obj_wake_close(struct fy_obj *be)
{
    if (be->tfd >= 0)
        close(be->tfd);
    if (be->epfd >= 0)
        close(be->epfd);
    be->tfd = be->epfd = -1;
}

ferry_status fy_obj_wake_open(struct fy_obj *be)
{
    struct epoll_event ev = {.events = EPOLLIN};

    be->epfd = epoll_create1(EPOLL_CLOEXEC);
    be->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    ev.data.fd = be->tfd;
    if (be->epfd < 0 || be->tfd < 0 || epoll_ctl(be->epfd, EPOLL_CTL_ADD, be->tfd, &ev) < 0) {
        fy_obj_log(be, FERRY_LOG_ERROR, "wait fd: %s", strerror(errno));
        fy_obj_wake_close(be);
        return FERRY_ERR_NO_RESOURCES;
    }
    curl_multi_setopt(be->multi, CURLMOPT_SOCKETFUNCTION, fy_obj_on_socket);
    curl_multi_setopt(be->multi, CURLMOPT_SOCKETDATA, be);
    curl_multi_setopt(be->multi, CURLMOPT_TIMERFUNCTION, fy_obj_on_timer);
    curl_multi_setopt(be->multi, CURLMOPT_TIMERDATA, be);
    return FERRY_OK;
}

void fy_obj_wake_stop(struct fy_obj *be)
{
    fy_obj_wake_close(be);
}

static void fy_obj_action(struct fy_obj *be, curl_socket_t s, int mask)
{
    int running;

    curl_multi_socket_action(be->multi, s, mask, &running);
}

/* Hands curl the sockets that are ready, then its timeout if due. */
void fy_obj_wake_drive(struct fy_obj *be)
{
    struct epoll_event evs[FY_OBJ_WAKE_EVENTS];
    int n = epoll_wait(be->epfd, evs, FY_OBJ_WAKE_EVENTS, 0);

    for (int i = 0; i < n; i++) {
        uint64_t ticks;
        int fd = evs[i].data.fd;

        if (fd == be->tfd) { /* only wakes us: the due times are checked below */
            ssize_t r = read(be->tfd, &ticks, sizeof(ticks));
            (void)r;
            continue;
        }
        fy_obj_action(be, fd,
                      (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                          (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                          (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0));
    }
    if (be->curl_due_ns && fy_obj_now_ns() >= be->curl_due_ns) {
        be->curl_due_ns = 0;
        fy_obj_action(be, CURL_SOCKET_TIMEOUT, 0);
    }
}

/* Sets the timer to the earlier of curl's timeout and due_ns (UINT64_MAX:
 * none). Returns false when one of them is already due: progress first. */
bool fy_obj_wake_arm(struct fy_obj *be, uint64_t due_ns)
{
    uint64_t now = fy_obj_now_ns(), at = due_ns;
    struct itimerspec its = {0}; /* all zero: disarmed */

    if (be->curl_due_ns && be->curl_due_ns < at)
        at = be->curl_due_ns;
    if (at <= now)
        return false;
    if (at != UINT64_MAX) {
        its.it_value.tv_sec = (time_t)((at - now) / 1000000000u);
        its.it_value.tv_nsec = (long)((at - now) % 1000000000u);
    }
    timerfd_settime(be->tfd, 0, &its, NULL);
    return true;
}
