/*
 * ts_shm_name.h -- the name of a program's shm segment, derived from the
 * directory that holds its durable state (a node's state dir, a
 * tracker's data dir).
 *
 * Locking: none (pure function of the path).
 *
 * Crash behaviour: nothing is created here.
 */
#ifndef TS_SHM_NAME_H
#define TS_SHM_NAME_H

#include <stddef.h>

/* Hex digits of SHA-256 kept in the name (64 bits). */
#define TS_SHM_NAME_HASH_HEX  16

/* out = "/<prefix>-<first 16 hex digits of SHA-256(realpath(dir))>".
 * 0, or -1 (errno set: dir cannot be resolved, name too long). */
int ts_shm_name_dir(char *out, size_t outsz, const char *prefix,
                    const char *dir);

#endif /* TS_SHM_NAME_H */
