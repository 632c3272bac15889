/*
 * we_ctl.c -- the WAN emulator's runtime control: change pairs' delay,
 * loss and jitter while packets flow (cut a pair with loss=100 and heal
 * it later: a partition between two emulated hosts).
 *
 * Protocol: the caller writes the control file (--control FILE), whole,
 * in the config file's syntax but with only the pair options:
 *
 *     link 0-1:loss=100        # cut hosts 0 and 1 (both directions)
 *     link 2>3:delay=80ms      # one direction
 *     delay 25ms | loss 1      # every pair
 *
 * then sends SIGUSR2.  wanemu applies the lines in order and answers on
 * its stdout with one line: "ctl ok N" (N lines applied) or
 * "ctl error LINE: WHY" (that line and the ones after it not applied;
 * the ones before it stay).  Packets already past the loss stage (in
 * the delay heap or a download queue) are delivered; queue limits keep
 * the size the start-up delays gave them.
 *
 * Locking: none; runs in the event loop (signalfd).
 *
 * Crash behaviour: a bad or missing file costs an error line and
 * nothing else; the emulator keeps running (we_die jumps back here).
 */
#include "we.h"

#define WE_CTL_LINE_B   1024    /* longest control line */
#define WE_CTL_LINES_N  256     /* most lines applied per SIGUSR2 */

static int
we_ctl_allowed(const char *name)
{
    return strcmp(name, "link") == 0 || strcmp(name, "delay") == 0
           || strcmp(name, "loss") == 0;
}


/* Applies one "NAME VALUE" line; 0, or -1 with we.ctl_err set. */
static int
we_ctl_line(char *p)
{
    jmp_buf       env;
    char         *val = p + strcspn(p, " \t");

    if (*val != '\0') {
        *val++ = '\0';
        val += strspn(val, " \t");
        val[strcspn(val, " \t")] = '\0';
    }
    if (!we_ctl_allowed(p) || *val == '\0') {
        snprintf(we.ctl_err, sizeof(we.ctl_err),
                 "only link/delay/loss VALUE at run time: %s", p);
        return -1;
    }
    if (setjmp(env) != 0) {
        we.ctl_env = NULL;
        return -1;
    }
    we.ctl_env = &env;
    we_option(p, val);
    we.ctl_env = NULL;
    return 0;
}


void
we_ctl_apply(void)
{
    FILE  *f;
    char   line[WE_CTL_LINE_B], *p, *hash;
    int    n = 0, lineno = 0;

    if (we.control_path == NULL
        || (f = fopen(we.control_path, "r")) == NULL)
    {
        printf("ctl error 0: %s\n", we.control_path == NULL
               ? "no --control file" : strerror(errno));
        fflush(stdout);
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL && n < WE_CTL_LINES_N) {
        lineno++;
        if ((hash = strchr(line, '#')) != NULL)
            *hash = '\0';
        p = line + strspn(line, " \t\r\n");
        p[strcspn(p, "\r\n")] = '\0';
        if (*p == '\0')
            continue;
        if (we_ctl_line(p) != 0) {
            fclose(f);
            printf("ctl error %d: %s\n", lineno, we.ctl_err);
            fflush(stdout);
            return;
        }
        n++;
    }
    fclose(f);
    printf("ctl ok %d\n", n);
    fflush(stdout);
}
