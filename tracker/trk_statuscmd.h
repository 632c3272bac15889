/*
 * trk_statuscmd.h -- `tracker --status`: print a running tracker's STATUS.
 */
#ifndef TRK_STATUSCMD_H_INCLUDED
#define TRK_STATUSCMD_H_INCLUDED

/* ./tracker --status tracker_info.txt <id>: prints STATUS; exit code.
 * TLS; ca_path verifies the tracker; crt_path/key_path (a tracker
 * certificate of the same CA: STATUS is answered only to trackers) are
 * presented as the client certificate. */
int trk_status_cmd(const char *info_path, int id, const char *ca_path,
                   const char *crt_path, const char *key_path);

#endif
