/*
 * ts_http_key.h -- the API key file of an HTTP endpoint: made on first
 * start (TS_HTTP_KEY_B random bytes from the OpenSSL generator, as hex,
 * mode 0600), read on every later one.
 *
 * Locking: none; called once by the process that sets the endpoint up,
 * before any child is forked.
 *
 * Crash behaviour: the file is written under a temporary name, fsynced
 * and renamed, so a crash leaves either no key file or a whole one.
 */
#ifndef TS_HTTP_KEY_H_INCLUDED
#define TS_HTTP_KEY_H_INCLUDED

#include <stddef.h>

/* Reads the key in path into key (keysz >= 2 * TS_HTTP_KEY_B + 1), or
 * creates the file first if there is none.  A file that others than its
 * owner may read, or that holds anything but one hex key, is refused.
 * 0 (*created = 1 if it was made now), or -1 with a reason in err. */
int ts_http_key_load(const char *path, char *key, size_t keysz, int *created,
                     char *err, size_t errsz);

#endif
