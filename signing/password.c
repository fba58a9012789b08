/* password.c: key passwords from MLREG_KEY_PASSWORD or the terminal.
 *
 * Like OpenBSD's readpassphrase(3): the prompt and the answer go through
 * /dev/tty, not stdin/stdout (which may be a pipe of data), echo is off
 * while the password is typed, and the terminal settings are put back on
 * every way out, including a signal: SIGINT, SIGTERM, SIGHUP and SIGQUIT
 * are caught while the prompt is up, the terminal is restored, and then the
 * signal is raised again with the caller's disposition back in place.
 * The password is read byte by byte with read(2) straight into guarded
 * memory, so no stdio buffer ever holds a copy.
 */
#include "mlreg/sign.h"

#include "mlreg/common.h"
#include "sign_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PASSWORD_BUF (MLREG_PASSWORD_MAX + 1)

static const int trapped_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define N_TRAPPED (sizeof(trapped_signals) / sizeof(trapped_signals[0]))

static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
    caught_signal = sig;
}

static int password_alloc(char **out)
{
    char *pw = sodium_malloc(PASSWORD_BUF);

    if (!pw) return mlreg_error_set(MLREG_ENOMEM, "cannot allocate guarded memory for a password");
    sodium_memzero(pw, PASSWORD_BUF);
    *out = pw;
    return 0;
}

void mlreg_password_free(char *password)
{
    if (!password) return;
    sodium_memzero(password, PASSWORD_BUF);
    sodium_free(password);
}

static int tty_write(int fd, const char *s)
{
    size_t len = strlen(s);

    while (len > 0) {
        ssize_t w = write(fd, s, len);
        if (w < 0 && errno == EINTR && !caught_signal) continue;
        if (w < 0) return -1;
        s += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Shows @p prompt and reads one line (without its '\n') into @p buf. */
static int prompt_once(char *buf, int fd, const char *prompt)
{
    size_t len = 0;
    int too_long = 0, has_nul = 0;
    char c = 0;

    if (tty_write(fd, prompt) < 0 && !caught_signal)
        return mlreg_error_set(MLREG_EIO, "cannot write to the terminal: %s", strerror(errno));
    for (;;) {
        if (caught_signal) return mlreg_error_set(MLREG_EAUTH, "password prompt interrupted");
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return mlreg_error_set(MLREG_EIO, "cannot read the terminal: %s", strerror(errno));
        if (r == 0 || c == '\n') break;
        if (c == '\0') has_nul = 1;
        if (len < MLREG_PASSWORD_MAX)
            buf[len++] = c;
        else
            too_long = 1;
    }
    buf[len] = '\0';
    c = 0;
    if (too_long)
        return mlreg_error_set(MLREG_EINVALID, "password is longer than %d bytes",
                               MLREG_PASSWORD_MAX);
    if (has_nul) return mlreg_error_set(MLREG_EINVALID, "password contains a NUL byte");
    return 0;
}

static int from_environment(char **out, const char *value)
{
    int error = 0;
    size_t len = strlen(value);

    if (len > MLREG_PASSWORD_MAX)
        return mlreg_error_set(MLREG_EINVALID, "%s is longer than %d bytes", MLREG_PASSWORD_ENV,
                               MLREG_PASSWORD_MAX);
    if ((error = password_alloc(out)) < 0) return error;
    memcpy(*out, value, len + 1);
    return 0;
}

int mlreg_password_read(char **out, const char *prompt, unsigned flags)
{
    int error = 0;
    int fd = -1, restore_tty = 0, restore_signals = 0, sig;
    char *pw = NULL, *again = NULL;
    const char *env;
    struct termios saved, noecho;
    struct sigaction sa, old[N_TRAPPED];

    *out = NULL;
    if ((error = mlreg_signing__init()) < 0) return error;
    if ((env = getenv(MLREG_PASSWORD_ENV)) != NULL) return from_environment(out, env);

    if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 || tcgetattr(fd, &saved) < 0) {
        error = mlreg_error_set(MLREG_EAUTH, "no terminal to ask for the key password; set %s",
                                MLREG_PASSWORD_ENV);
        goto done;
    }
    caught_signal = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a signal must interrupt read() */
    for (size_t i = 0; i < N_TRAPPED; i++)
        sigaction(trapped_signals[i], &sa, &old[i]);
    restore_signals = 1;

    noecho = saved;
    noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    noecho.c_lflag |= ECHONL; /* still echo the newline, so the cursor moves on */
    restore_tty = 1;
    if (tcsetattr(fd, TCSAFLUSH, &noecho) < 0) {
        error = mlreg_error_set(MLREG_EIO, "cannot turn terminal echo off: %s", strerror(errno));
        goto done;
    }
    if ((error = password_alloc(&pw)) < 0 ||
        (error = prompt_once(pw, fd, prompt ? prompt : "Password: ")) < 0)
        goto done;
    if (flags & MLREG_PASSWORD_CONFIRM) {
        if ((error = password_alloc(&again)) < 0 ||
            (error = prompt_once(again, fd, "Password (one more time): ")) < 0)
            goto done;
        if (strlen(pw) != strlen(again) || sodium_memcmp(pw, again, strlen(pw)) != 0) {
            error = mlreg_error_set(MLREG_EAUTH, "passwords do not match");
            goto done;
        }
    }
    *out = pw;
    pw = NULL;
done:
    if (restore_tty) tcsetattr(fd, TCSAFLUSH, &saved);
    if (restore_signals)
        for (size_t i = 0; i < N_TRAPPED; i++)
            sigaction(trapped_signals[i], &old[i], NULL);
    if (fd >= 0) close(fd);
    mlreg_password_free(pw);
    mlreg_password_free(again);
    if ((sig = caught_signal) != 0) {
        /* The terminal is sane again: now let the signal do what the
         * caller wanted (by default, end the process). */
        caught_signal = 0;
        raise(sig);
    }
    return error;
}
