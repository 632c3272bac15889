/*
 * ts_file.h -- small file helpers shared by the node and the CLI: the
 * SHA1 of an open file, "is this the finished file", and the fsync of a
 * directory that makes a name made, renamed or removed there durable.
 *
 * No state, no locks; safe in any process.  The caller owns every
 * descriptor and buffer it passes in.
 */
#ifndef TS_FILE_H_INCLUDED
#define TS_FILE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/* SHA1 of the first size bytes of fd, read with pread() from offset 0
 * in blocks of at most bufsz through buf.  0, or -1 (the file is
 * shorter, a read failed: errno; out of memory). */
int  ts_file_sha1(int fd, uint64_t size, uint8_t *buf, size_t bufsz,
                  uint8_t md[20]);
/* 1 if fd is exactly size bytes long and its SHA1 is sha1, else 0.
 * buf (bufsz bytes) is the read buffer. */
int  ts_file_is_sha1(int fd, uint64_t size, const uint8_t sha1[20],
                     uint8_t *buf, size_t bufsz);
/* fsync of the directory holding path (errors ignored: best effort). */
void ts_file_fsync_dir(const char *path);

#endif
