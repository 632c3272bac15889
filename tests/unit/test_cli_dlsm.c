/*
 * test_cli_dlsm.c -- cmocka tests of the rules of a download's life as
 * the user steers it (client/cli_dlsm.c): every operation from every
 * state (what it becomes, or which failure class refuses it), and the
 * no-source clock (stopped while held, restarted by progress, firing
 * only after the whole timeout of running time).
 *
 * Locking: single-threaded.  Crash behaviour: none.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "node_shm.h"
#include "cli_rec.h"
#include "cli_exit.h"
#include "cli_dlsm.h"


static int
op(uint32_t st, uint32_t nst, cli_dlop_t o, uint32_t *next)
{
    const char  *why = NULL;
    int          cls = cli_dlsm_op(st, nst, o, next, &why);

    /* a refusal always says why; a success never does */
    if (cls != CLI_EXIT_OK) {
        assert_non_null(why);
        assert_true(strlen(why) > 0);
    } else {
        assert_null(why);
    }
    return cls;
}


static void
test_cancel(void **state)
{
    uint32_t  next;

    (void) state;
    /* running, paused, failed: the record goes */
    assert_int_equal(op(CLI_DL_ACTIVE, NODE_DL_ACTIVE, CLI_DLOP_CANCEL, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, 0);
    assert_int_equal(op(CLI_DL_PAUSED, NODE_DL_PAUSED, CLI_DLOP_CANCEL, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, 0);
    assert_int_equal(op(CLI_DL_FAILED, NODE_DL_FAILED, CLI_DLOP_CANCEL, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, 0);
    assert_int_equal(op(CLI_DL_ACTIVE, NODE_DL_FREE, CLI_DLOP_CANCEL, &next),
                     CLI_EXIT_OK);
    /* being renamed into place: not now */
    assert_int_equal(op(CLI_DL_ACTIVE, NODE_DL_FINALIZING, CLI_DLOP_CANCEL,
                        &next), CLI_EXIT_CONFLICT);
    assert_int_equal(next, CLI_DL_ACTIVE);
    assert_int_equal(op(CLI_DL_ACTIVE, NODE_DL_DONE, CLI_DLOP_CANCEL, &next),
                     CLI_EXIT_CONFLICT);
    /* complete: it is a share now, not a download */
    assert_int_equal(op(CLI_DL_DONE, NODE_DL_DONE, CLI_DLOP_CANCEL, &next),
                     CLI_EXIT_EXISTS);
    assert_int_equal(next, CLI_DL_DONE);
}


static void
test_pause_resume(void **state)
{
    uint32_t  next;

    (void) state;
    assert_int_equal(op(CLI_DL_ACTIVE, NODE_DL_ACTIVE, CLI_DLOP_PAUSE, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, CLI_DL_PAUSED);
    /* held by a logout: still pausable (it stays paused after login) */
    assert_int_equal(op(CLI_DL_ACTIVE, NODE_DL_PAUSED, CLI_DLOP_PAUSE, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, CLI_DL_PAUSED);
    /* already paused: nothing to do, no error */
    assert_int_equal(op(CLI_DL_PAUSED, NODE_DL_PAUSED, CLI_DLOP_PAUSE, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, CLI_DL_PAUSED);
    assert_int_equal(op(CLI_DL_ACTIVE, NODE_DL_FINALIZING, CLI_DLOP_PAUSE,
                        &next), CLI_EXIT_CONFLICT);
    assert_int_equal(op(CLI_DL_FAILED, NODE_DL_FAILED, CLI_DLOP_PAUSE, &next),
                     CLI_EXIT_FAILURE);
    assert_int_equal(op(CLI_DL_DONE, NODE_DL_FREE, CLI_DLOP_PAUSE, &next),
                     CLI_EXIT_EXISTS);

    assert_int_equal(op(CLI_DL_PAUSED, NODE_DL_PAUSED, CLI_DLOP_RESUME, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, CLI_DL_ACTIVE);
    /* evicted from the node's table while paused: resumes all the same */
    assert_int_equal(op(CLI_DL_PAUSED, NODE_DL_FREE, CLI_DLOP_RESUME, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, CLI_DL_ACTIVE);
    assert_int_equal(op(CLI_DL_ACTIVE, NODE_DL_ACTIVE, CLI_DLOP_RESUME, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, CLI_DL_ACTIVE);
    assert_int_equal(op(CLI_DL_FAILED, NODE_DL_FAILED, CLI_DLOP_RESUME, &next),
                     CLI_EXIT_FAILURE);
    assert_int_equal(op(CLI_DL_DONE, NODE_DL_DONE, CLI_DLOP_RESUME, &next),
                     CLI_EXIT_EXISTS);
}


static void
test_retry(void **state)
{
    uint32_t  next;

    (void) state;
    assert_int_equal(op(CLI_DL_FAILED, NODE_DL_FAILED, CLI_DLOP_RETRY, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, CLI_DL_ACTIVE);
    assert_int_equal(op(CLI_DL_FAILED, NODE_DL_FREE, CLI_DLOP_RETRY, &next),
                     CLI_EXIT_OK);
    assert_int_equal(next, CLI_DL_ACTIVE);
    assert_int_equal(op(CLI_DL_ACTIVE, NODE_DL_ACTIVE, CLI_DLOP_RETRY, &next),
                     CLI_EXIT_FAILURE);
    assert_int_equal(op(CLI_DL_PAUSED, NODE_DL_PAUSED, CLI_DLOP_RETRY, &next),
                     CLI_EXIT_FAILURE);
    assert_int_equal(op(CLI_DL_DONE, NODE_DL_DONE, CLI_DLOP_RETRY, &next),
                     CLI_EXIT_EXISTS);
    /* a state node.tdb cannot hold, an operation that does not exist */
    assert_int_equal(op(99, NODE_DL_FREE, CLI_DLOP_RETRY, &next),
                     CLI_EXIT_FAILURE);
    assert_int_equal(op(CLI_DL_ACTIVE, NODE_DL_ACTIVE, (cli_dlop_t) 77,
                        &next), CLI_EXIT_USAGE);
}


static void
test_stall_clock(void **state)
{
    int64_t   since = 0;
    uint64_t  seen = 0;

    (void) state;
    /* the first look starts the clock */
    assert_false(cli_dlsm_stalled(&since, &seen, 0, 0, 1000, 5000));
    assert_int_equal(since, 1000);
    assert_false(cli_dlsm_stalled(&since, &seen, 0, 0, 5999, 5000));
    /* progress restarts it */
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 0, 5999, 5000));
    assert_int_equal(since, 5999);
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 0, 10998, 5000));
    assert_true(cli_dlsm_stalled(&since, &seen, 100, 0, 10999, 5000));
    /* held (paused, logged out): the time does not count */
    since = 0;
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 0, 20000, 5000));
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 1, 24000, 5000));
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 1, 90000, 5000));
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 0, 94999, 5000));
    assert_true(cli_dlsm_stalled(&since, &seen, 100, 0, 95000, 5000));
    /* no timeout: never */
    since = 1;
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 0, 1LL << 40, 0));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_stall_clock),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
