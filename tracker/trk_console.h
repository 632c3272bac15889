/*
 * trk_console.h -- the tracker's console (commands on stdin).
 */
#ifndef TRK_CONSOLE_H_INCLUDED
#define TRK_CONSOLE_H_INCLUDED

/* STDIN_FILENO if stdin is open (to be watched), else -1.  Call it
 * before opening anything. */
int trk_console_fd(void);
/* ts_sup's on_watch: reads fd and runs complete lines.  0 go on, 1 quit
 * typed, -1 stop watching (end of input or a read error). */
int trk_console_on_watch(int fd, void *arg);

#endif
