/*
 * ts_clock.h -- the clocks every module reads.
 *
 * Monotonic time (CLOCK_MONOTONIC) for deadlines, timeouts and rates: it
 * never jumps with the wall clock, and it is the same in every process
 * of the machine, so a value stored in shared memory by one process means
 * the same to another.  Wall time (CLOCK_REALTIME) only for what leaves
 * the machine or the process: stamps in records, logs and replies.
 * No state, no locks; safe in any thread and after fork.
 */
#ifndef TS_CLOCK_H_INCLUDED
#define TS_CLOCK_H_INCLUDED

#include <stdint.h>

int64_t ts_now_ms(void);        /* CLOCK_MONOTONIC, milliseconds */
int64_t ts_now_us(void);        /* CLOCK_MONOTONIC, microseconds */
int64_t ts_wall_ms(void);       /* CLOCK_REALTIME, milliseconds since 1970 */

/* The monotonic time timeout_ms from now (a negative timeout counts as
 * 0), for loops that wait in steps against one deadline. */
int64_t ts_deadline_ms(int timeout_ms);
/* Milliseconds left until deadline (0 once it has passed), clamped to
 * what poll(2) takes. */
int     ts_ms_left(int64_t deadline_ms);

#endif
