/*
 * ts_ev_int.h -- what the two files of the event layer share beyond
 * ts_ev.h: ts_ev.c keeps the loop-wide output count that ts_ev_conn.c
 * moves.  Nothing else includes this.
 *
 * Locking: none (one thread per loop).  Crash behaviour: nothing
 * persistent.
 */
#ifndef TS_EV_INT_H_INCLUDED
#define TS_EV_INT_H_INCLUDED

#include <stdint.h>

struct ts_ev_s;

/* Output bytes queued on the conns of ev changed by delta. */
void ts_ev_out_add(struct ts_ev_s *ev, int64_t delta);

#endif
