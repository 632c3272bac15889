/*
 * ts_clock.c -- monotonic and wall clocks (see ts_clock.h).
 *
 * Thin wrappers over clock_gettime(2); nothing is cached, so there is
 * nothing to lock and nothing to lose in a crash.
 */
#include <limits.h>
#include <time.h>

#include "ts_clock.h"

static int64_t
clock_us(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


int64_t
ts_now_ms(void)
{
    return clock_us(CLOCK_MONOTONIC) / 1000;
}


int64_t
ts_now_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}


int64_t
ts_wall_ms(void)
{
    return clock_us(CLOCK_REALTIME) / 1000;
}


int64_t
ts_deadline_ms(int timeout_ms)
{
    return ts_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
}


int
ts_ms_left(int64_t deadline_ms)
{
    int64_t left = deadline_ms - ts_now_ms();

    if (left <= 0) {
        return 0;
    }
    return left > INT_MAX ? INT_MAX : (int) left;
}
