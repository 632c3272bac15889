/*
 * trk_syncops.h -- the TS_MSG_SYNC_* request handlers (the receiving side
 * of replication), registered with trk_ops.
 */
#ifndef TRK_SYNCOPS_H_INCLUDED
#define TRK_SYNCOPS_H_INCLUDED

/* Registers the SYNC_* handlers (also run as a constructor). */
void trk_syncops_init(void);

#endif
