/*
 * test_shm_name.c -- segment names from a state directory
 * (shm/ts_shm_name.h): one name per directory however it is spelled
 * (relative, with "..", through a symlink), different directories give
 * different names, the name is the SHA-256 of the real path, and a
 * missing directory or a short buffer is an error, not a wrong name.
 *
 * Locking: none.  Crash behaviour: the temp directory is removed at the
 * end of the test; a killed run leaves it under /tmp (named
 * tsr-shm-name-test.*).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_crypto.h"
#include "ts_shm_name.h"

static void
test_names(void **state)
{
    char     base[] = "/tmp/tsr-shm-name-test.XXXXXX";
    char     a[PATH_MAX], b[PATH_MAX], link[PATH_MAX], odd[PATH_MAX];
    char     n1[64], n2[64], n3[64], n4[64], want[64], cwd[PATH_MAX];
    uint8_t  h[TS_SHA256_B];
    int      i;

    (void) state;
    assert_non_null(mkdtemp(base));
    snprintf(a, sizeof(a), "%s/a", base);
    snprintf(b, sizeof(b), "%s/b", base);
    snprintf(link, sizeof(link), "%s/l", base);
    snprintf(odd, sizeof(odd), "%s/b/../a/.", base);
    assert_int_equal(mkdir(a, 0700), 0);
    assert_int_equal(mkdir(b, 0700), 0);
    assert_int_equal(symlink(a, link), 0);

    assert_int_equal(ts_shm_name_dir(n1, sizeof(n1), "tessera-node", a), 0);
    assert_int_equal(ts_shm_name_dir(n2, sizeof(n2), "tessera-node", link),
                     0);
    assert_int_equal(ts_shm_name_dir(n3, sizeof(n3), "tessera-node", odd),
                     0);
    assert_string_equal(n1, n2);
    assert_string_equal(n1, n3);
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(base), 0);
    assert_int_equal(ts_shm_name_dir(n4, sizeof(n4), "tessera-node", "a"),
                     0);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(n1, n4);

    /* "/tessera-node-" + 16 hex of SHA-256 of the real path */
    assert_int_equal(ts_sha256(a, strlen(a), h), 0);
    i = snprintf(want, sizeof(want), "/tessera-node-");
    for (int k = 0; k < TS_SHM_NAME_HASH_HEX / 2; k++) {
        i += snprintf(want + i, sizeof(want) - (size_t) i, "%02x", h[k]);
    }
    assert_string_equal(n1, want);

    assert_int_equal(ts_shm_name_dir(n2, sizeof(n2), "tessera-node", b), 0);
    assert_string_not_equal(n1, n2);
    assert_int_equal(ts_shm_name_dir(n3, sizeof(n3), "tessera-trk", a), 0);
    assert_string_not_equal(n1, n3);

    /* errors: no such dir, empty, too small a buffer */
    snprintf(odd, sizeof(odd), "%s/missing", base);
    errno = 0;
    assert_int_equal(ts_shm_name_dir(n2, sizeof(n2), "tessera-node", odd),
                     -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(ts_shm_name_dir(n2, sizeof(n2), "tessera-node", ""),
                     -1);
    assert_int_equal(ts_shm_name_dir(n2, 20, "tessera-node", a), -1);
    assert_int_equal(errno, ENAMETOOLONG);

    assert_int_equal(unlink(link), 0);
    assert_int_equal(rmdir(a), 0);
    assert_int_equal(rmdir(b), 0);
    assert_int_equal(rmdir(base), 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
