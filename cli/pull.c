/* pull.c: `mlreg pull REF -o DIR`, the deploy step.
 *
 * The registry is not trusted: the manifest is fetched and checked by
 * cli_release_fetch (release.c): its bytes hash to the pinned or announced
 * digest, it is a release of the model asked for, and every title follows
 * the title rules (a relative path, no segment empty or starting with '.',
 * mlreg_titles_check on the set), so a hostile registry cannot make us
 * write outside DIR.
 *
 * What DIR holds is not trusted either: a title may have subdirectories
 * ("tokenizer/vocab.json"), and every lstat, open, rename and unlink under
 * DIR goes through DIR's descriptor, one segment at a time (safepath.h:
 * openat(parent, seg, O_NOFOLLOW|O_DIRECTORY) per directory, mkdirat when
 * missing, then *at() on the leaf). A symbolic link or file where a
 * directory must be is in the way: refused before any download, naming
 * it, unless --force (or it is a file of the previous release), when it
 * is removed, never followed, and replaced by a directory right before
 * the renames. A real directory is never removed.
 *
 * With --trusted-key / --keyring the release must also carry a valid
 * signature by a trusted key (release.c, cli_sigs_check). That is checked
 * before DIR is even created: without it nothing is downloaded or written.
 *
 * Files are downloaded into temp files in DIR's top level (same
 * filesystem, so the final renameat() into the title's directory is
 * atomic), hashed while streaming. Nothing is renamed into
 * place until every file is verified, the lock file is written (to a temp
 * file too) and every target has been checked: a target that is a
 * directory, another non-regular file, a read-only file, or another
 * user's entry in a sticky directory stops the pull before the first
 * rename. The directories the titles need are made only then; on any
 * failure every temp file is removed, and so is every directory the pull
 * made that is still empty, so a failed pull changes nothing in DIR. A SIGINT/SIGTERM/SIGHUP during
 * the pull also removes the temp files before the process dies; during the renames themselves those
 * signals are held back until the last one is done, so DIR never holds half a release and the lock
 * file of another.
 *
 * A file with a chunk index (pull_chunks.c) is downloaded in parallel
 * ranges into DIR/.mlreg-pull/<digest>.part instead (through the staging
 * dir's descriptor, opened with O_NOFOLLOW below DIR's), each chunk verified as
 * it lands and the whole file before it is placed; that partial file is
 * kept when the pull fails or dies (signals included), so the next pull
 * resumes from the chunks that verify. A complete pull removes the staging
 * dir. Chunk index layers are never written as files nor listed in the
 * lock file.
 *
 * Pulling into a directory that holds an earlier pull: DIR/mlreg.lock.json
 * says which files are the previous release's. Those the new release does
 * not have are removed, and only after every new file and the new lock are
 * in place: the new lock lists them under "removed", so a crash between the
 * renames and the unlinks leaves a lock that tells the truth (the release
 * and which leftovers are not part of it) and the next pull removes them.
 * A file the new release would replace that no lock lists (the user's, or
 * another tool's) is in the way: the pull is refused before anything is
 * downloaded, unless --force. Files no lock lists and the new release does
 * not have are never touched. A lock that cannot be read as one mlreg wrote
 * is refused the same way (--force: replace, remove nothing). Removing a
 * leftover in a subdirectory also removes the directories that leaves
 * empty (never DIR itself, never one that holds anything).
 *
 * The lock also keeps what `mlreg check` needs to check DIR offline: the
 * manifest text (its digest is the lock's "digest") and, after a pull with
 * --trusted-key, the signatures that verified and their key ids
 * ("verified_by").
 *
 * MODEL:STAGE is resolved to a digest once, first (GET .../stages/STAGE);
 * from then on the pull is a pull of MODEL@DIGEST, so a promotion landing
 * in the middle cannot mix two releases, and the lock file pins that digest
 * (with "stage" saying where it came from).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "files.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/oci.h"
#include "mlreg/text.h"
#include "pull_chunks.h"
#include "ref.h"
#include "release.h"
#include "safepath.h"

#define LOCK_NAME  CLI_LOCK_NAME
#define TMP_PREFIX CLI_TMP_PREFIX

static const char usage_line[] =
    "usage: mlreg pull REF -o DIR [--at TIME] [--registry URL] [--force]\n"
    "                  [--trusted-key PUBFILE]... [--keyring FILE] [--allow-withdrawn]\n"
    "                  [--token-file FILE] [--parallel N] [--limit-rate BYTES[K|M|G]]\n"
    "\n" CLI_REF_HELP "MODEL:STAGE pulls the release the stage holds now (or held at --at TIME):\n"
    "resolved to its digest first, pulled by that digest, and the lock file\n"
    "records both.\n"
    "Downloads every file of the release into temp files in DIR, checks each\n"
    "one's size and SHA-256 against the manifest, and only then moves them into\n"
    "place with DIR/mlreg.lock.json. A file it would replace that is a directory\n"
    "or read-only, or that belongs to another user in a sticky directory (/tmp),\n"
    "stops the pull before anything is moved: a failed pull changes nothing in\n"
    "DIR. A title may have subdirectories (tokenizer/vocab.json): they are made\n"
    "in DIR, reached one at a time and never through a symbolic link; a link or\n"
    "file where one must be is in the way (refused before any download; --force\n"
    "replaces it with a directory, never following it).\n"
    "With --trusted-key (a minisign .pub file, repeatable) or\n"
    "--keyring (the JSON of `mlreg key list --json`), the release must first\n"
    "carry a valid signature by a trusted, unrevoked key whose trusted comment\n"
    "names this model, version and digest; otherwise nothing is downloaded or\n"
    "written and pull exits 1.\n"
    "A withdrawn release (mlreg withdraw) is refused with exit 1, naming the\n"
    "reason, who withdrew it and when; --allow-withdrawn pulls it anyway, with a\n"
    "warning on stderr.\n"
    "A file pushed with a chunk index (files of 64 MiB and more) is fetched in\n"
    "--parallel N byte ranges (default: up to 4), each chunk checked against the\n"
    "signed index as it lands and fetched again if it does not match, into\n"
    "DIR/.mlreg-pull/; an interrupted pull leaves it there and the next pull into\n"
    "DIR keeps every chunk that verifies and fetches only the rest. The whole\n"
    "file is still checked before it is placed; a complete pull removes the dir.\n"
    "--limit-rate caps the download rate (bytes per second, K, M or G suffix).\n"
    "\n"
    "Into a DIR that holds an earlier pull, the files its mlreg.lock.json lists\n"
    "that the new release does not have are removed, after the new release is in\n"
    "place (the new lock lists them under \"removed\"). A file the new release\n"
    "would replace that no lock lists, and that does not already hold the same\n"
    "bytes, is in the way: the pull is refused before anything is downloaded\n"
    "(exit 1), unless --force. Other files in DIR are never\n"
    "touched. The lock keeps the manifest, and after --trusted-key the signatures\n"
    "that verified and their key ids, so `mlreg check DIR` works offline.\n"
    "  -o, --output DIR        e.g. -o /srv/models/clf\n"
    "  --at TIME               with MODEL:STAGE, e.g. --at 2026-11-26T10:00:00Z\n"
    "  --force                 replace files in the way, e.g. a hand-copied config.json\n"
    "                          (a link or file where a directory must be: by a directory)\n"
    "  --trusted-key PUBFILE   e.g. --trusted-key release-ci.pub (repeatable)\n"
    "  --keyring FILE          e.g. --keyring keys.json (from mlreg key list --json)\n"
    "  --allow-withdrawn       pull a withdrawn release anyway, with a warning\n"
    "  --parallel N            e.g. --parallel 8 (1 to 32)\n"
    "  --limit-rate RATE       e.g. --limit-rate 50M\n"
    "  --registry URL          e.g. --registry https://mlreg.example.com (or MLREG_URL)\n"
    "e.g. mlreg pull team/clf:production -o /srv/models/clf --trusted-key release-ci.pub\n";

typedef struct {
    const cli_layer *l; /* points into the fetched release */
    /* temp file: a name in DIR (reached through its descriptor), or, when
     * staged, its name in the staging dir; "" when none exists */
    char tmp[PATH_MAX];
    int fd;
    const cli_layer *index; /* its chunk index layer, or NULL */
    int staged;             /* tmp is a partial file in the staging dir: kept on failure */
    /* a symbolic link or file stands where a directory of the title must
     * be, and is to be replaced by one (--force, or a file of the previous
     * release) */
    int replace_way;
} pull_file;

/* Temp files to remove if a signal ends the pull (see on_signal); their
 * names are relative to DIR's descriptor sig_dfd. */
static pull_file *volatile sig_files;
static volatile sig_atomic_t sig_nfiles;
static volatile sig_atomic_t sig_dfd = -1;
static char sig_lock_tmp[PATH_MAX];

static void on_signal(int sig)
{
    pull_file *files = sig_files;

    for (sig_atomic_t i = 0; files && i < sig_nfiles; i++)
        if (files[i].tmp[0] && !files[i].staged) unlinkat(sig_dfd, files[i].tmp, 0);
    if (sig_lock_tmp[0]) unlinkat(sig_dfd, sig_lock_tmp, 0);
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int caught[] = {SIGINT, SIGTERM, SIGHUP};
#define NCAUGHT (sizeof(caught) / sizeof(caught[0]))

/* Installs on_signal for the signals that are not ignored (a background job
 * of a shell ignores SIGINT and must keep doing so); @p old receives the
 * dispositions to restore. */
static void signals_catch(struct sigaction old[NCAUGHT])
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NCAUGHT; i++) {
        sigaction(caught[i], NULL, &old[i]);
        if (old[i].sa_handler != SIG_IGN) sigaction(caught[i], &sa, NULL);
    }
}

static void signals_restore(const struct sigaction old[NCAUGHT])
{
    for (size_t i = 0; i < NCAUGHT; i++)
        sigaction(caught[i], &old[i], NULL);
}

static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return mlreg_error_set(MLREG_EINVALID, "bad output directory '%s'", dir);
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0777) < 0 && errno != EEXIST)
            return mlreg_error_set(MLREG_EIO, "mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) < 0 && errno != EEXIST)
        return mlreg_error_set(MLREG_EIO, "mkdir %s: %s", path, strerror(errno));
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "%s is not a directory", dir);
    return 0;
}

/* Creates a temp file in DIR (descriptor @p dfd, path @p dir for messages):
 * O_CREAT|O_EXCL|O_NOFOLLOW, so never someone else's file; @p name
 * receives its name, relative to @p dfd, "" when there is none. */
static int make_temp(int *fd_out, char *name, size_t len, int dfd, const char *dir)
{
    static const char set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char rnd[12];
    size_t p = strlen(TMP_PREFIX);
    int e = EEXIST;

    name[0] = '\0';
    if (len <= p + sizeof(rnd))
        return mlreg_error_set(MLREG_EINVALID, "temp file name buffer too short");
    for (int tries = 0; tries < 16 && e == EEXIST; tries++) {
        randombytes_buf(rnd, sizeof(rnd));
        memcpy(name, TMP_PREFIX, p);
        for (size_t i = 0; i < sizeof(rnd); i++)
            name[p + i] = set[rnd[i] % (sizeof(set) - 1)];
        name[p + sizeof(rnd)] = '\0';
        *fd_out = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (*fd_out >= 0) return 0;
        e = errno;
    }
    name[0] = '\0';
    return mlreg_error_set(MLREG_EIO, "cannot create a file in %s: %s", dir, strerror(e));
}

/* Sets the mode a plain create would have given, fsyncs and closes the temp
 * file that becomes DIR/@p name. */
static int finish(int *fd, const char *dir, const char *name, mode_t mode)
{
    int rc = 0;

    if (fchmod(*fd, mode) < 0 || fsync(*fd) < 0) rc = -1;
    if (close(*fd) < 0) rc = -1;
    *fd = -1;
    if (rc < 0) return mlreg_error_set(MLREG_EIO, "%s/%s: %s", dir, name, strerror(errno));
    return 0;
}

/* Pull replaces files in DIR and nothing else: a target that is a
 * directory or another non-regular file, or a file made read-only (no
 * write permission for its owner, or none for us), is refused before the
 * first rename. A symbolic link is replaced, never followed.
 *
 * In a sticky directory (mode 1777, like /tmp) that is not ours, rename()
 * over an entry another user owns fails with EPERM whatever the entry's
 * mode, a symbolic link or a 0666 file included: such a target is refused
 * here too, so the renames never stop half-way. @p pfd is the directory
 * holding the target @p leaf of title @p title (cli_safepath_parent). */
static int target_check(int pfd, const char *dir, const char *title, const char *leaf)
{
    struct stat st, pst;

    /* DIR's own write permission shows when the temp files are made; a
     * subdirectory's would show only at its rename, half-way through */
    if (leaf > title && faccessat(pfd, ".", W_OK | X_OK, AT_EACCESS) < 0)
        return mlreg_error_set(MLREG_EIO, "%s/%.*s: the directory of %s is not writable: %s", dir,
                               (int)(leaf - title - 1), title, title, strerror(errno));
    if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return 0;
        return mlreg_error_set(MLREG_EIO, "%s/%s: %s", dir, title, strerror(errno));
    }
    if (fstat(pfd, &pst) < 0)
        return mlreg_error_set(MLREG_EIO, "%s/%s: %s", dir, title, strerror(errno));
    if ((pst.st_mode & S_ISVTX) && pst.st_uid != geteuid() && st.st_uid != geteuid())
        return mlreg_error_set(MLREG_EIO,
                               "%s/%s belongs to another user in the sticky directory holding "
                               "it; pull replaces only its own files there",
                               dir, title);
    if (S_ISLNK(st.st_mode)) return 0;
    if (S_ISDIR(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "%s/%s exists and is a directory", dir, title);
    if (!S_ISREG(st.st_mode))
        return mlreg_error_set(MLREG_EIO, "%s/%s exists and is not a regular file", dir, title);
    if (!(st.st_mode & S_IWUSR) || faccessat(pfd, leaf, W_OK, AT_EACCESS) < 0)
        return mlreg_error_set(MLREG_EIO, "%s/%s exists and is read-only", dir, title);
    return 0;
}

/* Renames the temp file @p tmp (a name in directory @p tmpfd: DIR, or the
 * staging dir for a partial file) to title @p title, whose directories exist
 * by now (targets_ready), reached one segment at a time. */
static int place(char *tmp, int tmpfd, int dfd, const char *dir, const char *title)
{
    int pfd, error;
    const char *leaf;

    if ((error = cli_safepath_parent(&pfd, &leaf, NULL, dfd, title, 0, NULL)) < 0)
        return cli_error_wrap(error, "%s/%s", dir, title);
    if (renameat(tmpfd, tmp, pfd, leaf) < 0) {
        error = mlreg_error_set(MLREG_EIO, "rename to %s/%s: %s", dir, title, strerror(errno));
    } else {
        tmp[0] = '\0';
        if (strchr(title, '/') && fsync(pfd) < 0)
            error = mlreg_error_set(MLREG_EIO, "fsync %s/%s: %s", dir, title, strerror(errno));
    }
    close(pfd);
    return error;
}

/* The titles the lock DIR/mlreg.lock.json of an earlier pull owns (its
 * "files" and its "removed") into *out, a JSON array of strings (empty when
 * there is no lock, or no DIR: @p dfd -1). A lock that is not one mlreg
 * wrote (unreadable, not JSON, a title that breaks the title rule) is
 * refused, since we could not tell its files from the user's; with
 * @p force it is ignored with a warning (nothing will be removed). */
static int lock_owned(json_t **out, int dfd, const char *dir, int force)
{
    int error = 0, lfd = -1;
    char path[PATH_MAX];
    json_t *lock = NULL, *owned = NULL, *e;
    json_error_t jerr;
    const char *lists[] = {"files", "removed"}, *why = NULL;
    size_t i;
    struct stat st;

    *out = NULL;
    if (!(owned = json_array())) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    snprintf(path, sizeof(path), "%s/%s", dir, LOCK_NAME);
    if (dfd < 0) goto judge; /* no DIR yet (or DIR no directory: mkdir_p says so next) */
    if (fstatat(dfd, LOCK_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT) why = strerror(errno);
        goto judge;
    }
    if (!S_ISREG(st.st_mode)) goto judge; /* target_check() refuses it, as any target */
    if (st.st_size > (off_t)CLI_API_MAX) {
        why = "larger than any lock";
        goto judge;
    }
    if ((lfd = cli_safepath_open_regular(dfd, LOCK_NAME)) < 0) {
        why = strerror(errno);
        goto judge;
    }
    if (!(lock = json_loadfd(lfd, JSON_REJECT_DUPLICATES, &jerr))) {
        why = jerr.text;
        goto judge;
    }
    for (size_t l = 0; l < 2 && !why; l++) {
        json_t *arr = json_object_get(lock, lists[l]);
        if (!arr && l == 1) break;
        if (!json_is_array(arr)) {
            why = l ? "\"removed\" is not a list" : "no \"files\" list";
            break;
        }
        json_array_foreach(arr, i, e)
        {
            const char *t = json_string_value(l ? e : json_object_get(e, "title"));
            if (!t || mlreg_title_validate(t) < 0) {
                why = "a title that breaks the title rule";
                break;
            }
            if (json_array_append_new(owned, json_string(t)) < 0) {
                error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
                goto done;
            }
        }
    }
judge:
    if (why) {
        json_array_clear(owned);
        if (!force) {
            error = mlreg_error_set(MLREG_EDENIED,
                                    "%s: not a lock file mlreg can read (%s), so its files "
                                    "cannot be told from others; nothing in %s was changed (pull "
                                    "with --force to replace files anyway and remove none)",
                                    path, mlreg_text_printable(why), dir);
            goto done;
        }
        fprintf(stderr,
                "mlreg pull: warning: %s is not a lock file mlreg can read (%s); replacing "
                "files because of --force, removing none\n",
                path, mlreg_text_printable(why));
    }
    *out = owned;
    owned = NULL;
done:
    if (lfd >= 0) close(lfd);
    json_decref(owned);
    json_decref(lock);
    return error;
}

/* 1 when @p title is one of the strings of @p titles (as file names on a
 * case-insensitive filesystem compare: mlreg_title_cmp). */
static int title_in(json_t *titles, const char *title)
{
    size_t i;
    json_t *e;

    json_array_foreach(titles, i, e)
    {
        if (!mlreg_title_cmp(json_string_value(e), title)) return 1;
    }
    return 0;
}

/* 1 when the regular file @p leaf of directory @p pfd already holds exactly
 * @p l's bytes (size, then SHA-256): replacing it loses nothing. */
static int same_bytes(int pfd, const char *leaf, const struct stat *st, const cli_layer *l)
{
    mlreg_digest d;
    uint64_t size = 0;
    int fd, same;

    if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size != l->size) return 0;
    if ((fd = cli_safepath_open_regular(pfd, leaf)) < 0) return 0;
    same = mlreg_digest_fd(&d, &size, fd) == 0 && size == l->size &&
           mlreg_digest_equal(&d, &l->digest);
    close(fd);
    return same;
}

/* lstat of @p rel below @p dfd, reached as pull reaches it (no link
 * followed). 0 or -1 (no message kept). */
static int entry_stat(int dfd, const char *rel, struct stat *st)
{
    int pfd, r;
    const char *leaf;

    if (cli_safepath_parent(&pfd, &leaf, NULL, dfd, rel, 0, NULL) < 0) {
        mlreg_error_clear();
        return -1;
    }
    r = fstatat(pfd, leaf, st, AT_SYMLINK_NOFOLLOW);
    close(pfd);
    return r;
}

/* 1 when titles @p a and @p b name one entry below @p dfd: the same title,
 * or titles equal but for ASCII case that the filesystem takes for one
 * existing file (case-insensitive: macOS, SMB, casefold). On a
 * case-sensitive filesystem "Notes.txt" and "notes.txt" are two files, and
 * a lock listing one does not own the other. */
static int same_entry(int dfd, const char *a, const char *b)
{
    struct stat sa, sb;

    if (!strcmp(a, b)) return 1;
    if (mlreg_title_cmp(a, b) || dfd < 0) return 0;
    return entry_stat(dfd, a, &sa) == 0 && entry_stat(dfd, b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* 1 when the entry @p title below @p dfd is one the previous lock lists
 * (@p owned), so a file there is the previous release's, not the user's. */
static int owned_entry(json_t *owned, int dfd, const char *title)
{
    size_t i;
    json_t *e;

    json_array_foreach(owned, i, e)
    {
        if (same_entry(dfd, json_string_value(e), title)) return 1;
    }
    return 0;
}

/* 1 when some title of @p files lies below directory @p t ("t/..."). */
static int is_dir_of(const pull_file *files, size_t n, const char *t)
{
    size_t len = strlen(t);

    for (size_t k = 0; k < n; k++)
        if (!mlreg_title_ncmp(files[k].l->title, t, len) && files[k].l->title[len] == '/') return 1;
    return 0;
}

/* A symbolic link or file where title @p files[i] needs a directory: the
 * first @p way bytes of its title name it (cli_safepath_parent). It is the
 * previous release's file (@p owned lists it), which the pull replaces
 * anyway, or, with @p force, replaced with a warning; otherwise the pull
 * is refused before anything is downloaded. */
static int way_judge(pull_file *files, size_t i, size_t way, int dfd, const char *dir,
                     json_t *owned, int force)
{
    char prefix[PATH_MAX];
    pull_file *f = &files[i];

    snprintf(prefix, sizeof(prefix), "%.*s", (int)way, f->l->title);
    /* judged already for an earlier title below the same entry */
    for (size_t k = 0; k < i; k++)
        if (files[k].replace_way && !mlreg_title_ncmp(files[k].l->title, prefix, way) &&
            files[k].l->title[way] == '/') {
            f->replace_way = 1;
            mlreg_error_clear();
            return 0;
        }
    if (!owned_entry(owned, dfd, prefix)) {
        if (!force)
            return mlreg_error_set(MLREG_EDENIED,
                                   "in %s: %s; nothing was changed (move it away, or pull with "
                                   "--force to replace it with a directory)",
                                   dir, mlreg_error_last());
        fprintf(stderr,
                "mlreg pull: warning: %s/%s is no directory; replacing it with one (--force; a "
                "symbolic link is removed, never followed)\n",
                dir, prefix);
    }
    f->replace_way = 1;
    mlreg_error_clear();
    return 0;
}

/* Checks the new release's files against what DIR (@p dfd, -1 when it does
 * not exist yet) holds, each reached one segment at a time: a symbolic
 * link or file where a directory must be is in the way (way_judge); a
 * target pull could not replace stops it (target_check); a file that
 * exists, that @p owned (the earlier lock's titles) does not list and that
 * does not already hold the release's bytes is in the way (refused, or
 * replaced with a warning under @p force). Fills @p stale with the titles
 * @p owned lists, that the new release does not have and that exist in
 * DIR: the files the pull removes once done. */
static int dir_plan(json_t *stale, int dfd, const char *dir, pull_file *files, size_t n,
                    json_t *owned, int force)
{
    char why[1024];
    struct stat st;
    size_t i, way;
    json_t *e;
    int error = 0, pfd = -1;
    const char *leaf;

    if (dfd < 0) return 0;
    /* First what would stop the renames anyway (again before the renames),
     * so that it is the reason given, and before any download. */
    for (i = 0; i <= n; i++) {
        const char *t = i < n ? files[i].l->title : LOCK_NAME;
        error = cli_safepath_parent(&pfd, &leaf, &way, dfd, t, 0, NULL);
        if (error == MLREG_ENOTFOUND) continue; /* its directories are made later */
        if (error == MLREG_EDENIED && i < n) {
            if ((error = way_judge(files, i, way, dfd, dir, owned, force)) < 0) return error;
            continue;
        }
        if (error == 0) {
            error = target_check(pfd, dir, t, leaf);
            close(pfd);
        } else {
            error = cli_error_wrap(error, "%s/%s", dir, t);
        }
        if (error < 0) {
            snprintf(why, sizeof(why), "%s", mlreg_error_last());
            return mlreg_error_set(error, "%s; nothing in %s was changed", why, dir);
        }
    }
    /* Then the files no earlier pull wrote. */
    for (i = 0; i < n; i++) {
        const char *t = files[i].l->title;
        if (files[i].replace_way || cli_safepath_parent(&pfd, &leaf, NULL, dfd, t, 0, NULL) < 0)
            continue;
        error = fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && !owned_entry(owned, dfd, t) &&
                !same_bytes(pfd, leaf, &st, files[i].l);
        close(pfd);
        if (!error) continue;
        if (!force)
            return mlreg_error_set(MLREG_EDENIED,
                                   "%s/%s is in the way: a file of the release would replace it, "
                                   "and no earlier pull into %s wrote it; nothing was changed "
                                   "(move it away, or pull with --force to replace it)",
                                   dir, t, dir);
        fprintf(stderr,
                "mlreg pull: warning: replacing %s/%s, which no earlier pull wrote (--force)\n",
                dir, t);
    }
    json_array_foreach(owned, i, e)
    {
        const char *t = json_string_value(e);
        int in_new = 0;
        for (size_t k = 0; k < n && !in_new; k++)
            in_new = same_entry(dfd, files[k].l->title, t);
        /* a file of the old release where the new one has a directory is
         * replaced by it (way_judge), not removed after */
        if (in_new || title_in(stale, t) || is_dir_of(files, n, t)) continue;
        if (cli_safepath_parent(&pfd, &leaf, NULL, dfd, t, 0, NULL) < 0) continue;
        error = fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW);
        close(pfd);
        if (error < 0) continue;
        if (json_array_append_new(stale, json_string(t)) < 0)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    mlreg_error_clear();
    return 0;
}

/* Right before the renames, with every file downloaded and verified: the
 * checks of dir_plan() again (DIR may have changed meanwhile), then the
 * directories of the titles made, one segment at a time (recorded in
 * @p made, removed again if the pull fails), a link or file in the way
 * replaced where dir_plan() decided so. */
static int targets_ready(int dfd, const char *dir, const pull_file *files, size_t n,
                         cli_safepath_made *made)
{
    char why[1024];
    int error, pfd;
    const char *leaf;

    for (size_t i = 0; i <= n; i++) {
        const char *t = i < n ? files[i].l->title : LOCK_NAME;
        error = cli_safepath_parent(&pfd, &leaf, NULL, dfd, t, 0, NULL);
        if (error == MLREG_ENOTFOUND || (error == MLREG_EDENIED && i < n && files[i].replace_way))
            continue;
        if (error == 0) {
            error = target_check(pfd, dir, t, leaf);
            close(pfd);
        } else {
            error = cli_error_wrap(error, "in %s", dir);
        }
        if (error < 0) {
            snprintf(why, sizeof(why), "%s", mlreg_error_last());
            return mlreg_error_set(error, "%s; nothing in %s was changed", why, dir);
        }
    }
    for (size_t i = 0; i < n; i++) {
        int flags = CLI_SAFEPATH_CREATE | (files[i].replace_way ? CLI_SAFEPATH_FORCE : 0);
        if (!strchr(files[i].l->title, '/')) continue;
        if ((error = cli_safepath_parent(&pfd, &leaf, NULL, dfd, files[i].l->title, flags, made)) <
            0)
            return cli_error_wrap(error, "in %s", dir);
        close(pfd);
    }
    return 0;
}

/* fsyncs the directory holding each directory of @p made, so the new
 * directories survive a crash with the files in them. */
static int made_sync(int dfd, const char *dir, const cli_safepath_made *made)
{
    int pfd, error;
    const char *leaf;

    for (size_t i = 0; i < made->n; i++) {
        if ((error = cli_safepath_parent(&pfd, &leaf, NULL, dfd, made->dirs[i], 0, NULL)) < 0)
            return cli_error_wrap(error, "%s", dir);
        error = fsync(pfd) < 0 ? mlreg_error_set(MLREG_EIO, "fsync %s/%s: %s", dir, made->dirs[i],
                                                 strerror(errno))
                               : 0;
        close(pfd);
        if (error < 0) return error;
    }
    return 0;
}

/* Removes the files @p stale names from DIR, after the new release is in
 * place, each reached one segment at a time, then the directories that
 * leaves empty (never DIR itself, never one holding anything). A leftover
 * that is not a file or a symbolic link (someone made it a directory), or
 * that a link or file now stands in the way of, is left alone with a
 * warning; so is one that cannot be removed: the pull itself is complete,
 * and the lock names them. */
static void stale_remove(int dfd, const char *dir, json_t *stale)
{
    char parent[PATH_MAX];
    struct stat st;
    size_t i;
    json_t *e;
    int pfd, rc;
    const char *leaf, *t;

    json_array_foreach(stale, i, e)
    {
        t = json_string_value(e);
        rc = cli_safepath_parent(&pfd, &leaf, NULL, dfd, t, 0, NULL);
        if (rc == MLREG_ENOTFOUND) continue;
        if (rc < 0) {
            fprintf(stderr, "mlreg pull: warning: %s/%s of the previous release left alone: %s\n",
                    dir, t, mlreg_error_last());
            continue;
        }
        if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            close(pfd);
            continue;
        }
        if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
            fprintf(stderr,
                    "mlreg pull: warning: %s/%s of the previous release is no file now; left "
                    "alone\n",
                    dir, t);
            close(pfd);
            continue;
        }
        rc = unlinkat(pfd, leaf, 0);
        close(pfd);
        if (rc < 0) {
            fprintf(stderr,
                    "mlreg pull: warning: cannot remove %s/%s of the previous release: %s\n", dir,
                    t, strerror(errno));
            continue;
        }
        if (!cli_quiet()) fprintf(stderr, "  removed     %s (not in this release)\n", t);
        if (leaf > t) {
            snprintf(parent, sizeof(parent), "%.*s", (int)(leaf - t - 1), t);
            cli_safepath_prune(dfd, parent);
        }
    }
    mlreg_error_clear();
}

/* The signatures of @p sigs that verified (status VALID), as the lock keeps
 * them: {"key_id", "name", "signature", "public_key", "attached_at"}; and
 * their key ids into @p ids. */
static int lock_sigs(json_t *arr, json_t *ids, const cli_sigreport *sigs)
{
    json_t *list = json_object_get(sigs->list, "signatures");

    for (size_t i = 0; i < sigs->n; i++) {
        json_t *e = json_array_get(list, i), *o;
        const char *text = json_string_value(json_object_get(e, "signature"));
        const char *pk = json_string_value(json_object_get(e, "public_key"));
        const char *at = json_string_value(json_object_get(e, "attached_at"));
        if (sigs->checks[i].status != MLREG_SIGCHECK_VALID || !text) continue;
        if (!(o = json_pack("{s:s, s:s, s:s}", "key_id", sigs->checks[i].key_id, "name",
                            sigs->checks[i].name ? sigs->checks[i].name : "", "signature", text)) ||
            (pk && json_object_set_new(o, "public_key", json_string(pk)) < 0) ||
            (at && json_object_set_new(o, "attached_at", json_string(at)) < 0) ||
            json_array_append_new(arr, o) < 0 ||
            (!title_in(ids, sigs->checks[i].key_id) &&
             json_array_append_new(ids, json_string(sigs->checks[i].key_id)) < 0))
            return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    }
    return 0;
}

/* Writes the lock file into a temp file in DIR (path in @p tmp), ready to
 * be renamed into place: the release, its files, the leftovers this pull
 * removes (@p stale), the manifest text, and with @p sigs the signatures
 * that verified. */
static int write_lock(char *tmp, size_t tmplen, int dfd, const char *dir, const cli_ref *ref,
                      const cli_release *rel, const char *stage, const char *at,
                      const pull_file *files, size_t n, json_t *stale, const cli_sigreport *sigs,
                      mode_t mode)
{
    int error = 0, fd = -1;
    json_t *lock = NULL, *arr;
    char *text = NULL;
    const char *version = rel->version, *digest = rel->digest;

    lock = json_pack("{s:s, s:s, s:s, s:[]}", "model", ref->model, "version", version, "digest",
                     digest, "files");
    if (!lock) goto nomem;
    if (stage && json_object_set_new(lock, "stage", json_string(stage)) < 0) goto nomem;
    if (at && json_object_set_new(lock, "at", json_string(at)) < 0) goto nomem;
    arr = json_object_get(lock, "files");
    for (size_t i = 0; i < n; i++) {
        json_t *f =
            json_pack("{s:s, s:s, s:s, s:I}", "title", files[i].l->title, "kind", files[i].l->kind,
                      "digest", files[i].l->digest_str, "size", (json_int_t)files[i].l->size);
        if (!f || json_array_append_new(arr, f) < 0) goto nomem;
    }
    if (json_array_size(stale) && json_object_set(lock, "removed", stale) < 0) goto nomem;
    if (json_object_set_new(lock, "manifest", json_stringn(rel->bytes, rel->len)) < 0) goto nomem;
    if (sigs) {
        json_t *sarr = json_array(), *ids = json_array();
        if (json_object_set_new(lock, "verified_by", ids) < 0 ||
            json_object_set_new(lock, "signatures", sarr) < 0)
            goto nomem;
        if ((error = lock_sigs(sarr, ids, sigs)) < 0) goto done;
    }
    if (!(text = json_dumps(lock, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) goto nomem;
    if ((error = make_temp(&fd, tmp, tmplen, dfd, dir)) < 0 ||
        (error = cli_write_all(fd, text, strlen(text), LOCK_NAME)) < 0 ||
        (error = cli_write_all(fd, "\n", 1, LOCK_NAME)) < 0 ||
        (error = finish(&fd, dir, LOCK_NAME, mode)) < 0)
        goto done;
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    if (fd >= 0) close(fd);
    free(text);
    json_decref(lock);
    return error;
}

/* Whether the registry lists release @p model@@p version (whose manifest
 * hashes to @p digest) as withdrawn: 0 when not, or when the registry has
 * no release API for it (404: a plain OCI registry); MLREG_EDENIED naming
 * the reason, who and when, unless @p allow, which only warns. */
static int withdrawn_check(cli_client *c, const char *model, const char *version,
                           const char *digest, int allow)
{
    cli_response resp;
    json_t *j = NULL, *w;
    char path[600];
    const char *by, *when, *why;
    int error;

    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/api/v1/models/%s/versions/%s", model, version);
    if ((error = cli_api_do(&j, &resp, c, "GET", path, NULL)) < 0) goto done;
    if (resp.status == 404) goto done;
    if (resp.status != 200 || j == NULL) {
        error = resp.status == 200
                    ? mlreg_error_set(MLREG_ESERVER, "reading the release: registry sent invalid "
                                                     "JSON")
                    : cli_http_error(&resp, "reading the release");
        goto done;
    }
    w = json_object_get(j, "withdrawn");
    if (!json_is_object(w) || !json_is_string(json_object_get(j, "digest")) ||
        strcmp(json_string_value(json_object_get(j, "digest")), digest))
        goto done;
    by = mlreg_text_printable(json_string_value(json_object_get(w, "by")));
    when = mlreg_text_printable(json_string_value(json_object_get(w, "time")));
    why = mlreg_text_printable(json_string_value(json_object_get(w, "reason")));
    if (allow) {
        fprintf(stderr,
                "mlreg pull: warning: %s@%s was withdrawn by %s at %s: %s (pulling it because "
                "of --allow-withdrawn)\n",
                model, version, by, when, why);
        goto done;
    }
    error = mlreg_error_set(MLREG_EDENIED,
                            "%s@%s was withdrawn by %s at %s: %s; nothing written (pull it "
                            "anyway with --allow-withdrawn)",
                            model, version, by, when, why);

done:
    json_decref(j);
    cli_response_clear(&resp);
    return error;
}

/* Fills @p files with the release's files, chunk index layers left out, each
 * paired with its index: the file's MLREG_ANN_CHUNK_INDEX names the index
 * layer's digest and the index's MLREG_ANN_CHUNKS_OF the file's. A reference
 * without its other half, either way, is a release we cannot trust. */
static int files_collect(pull_file *files, size_t *n_out, const cli_release *rel)
{
    size_t n = 0;

    *n_out = 0;
    for (size_t i = 0; i < rel->nlayers; i++) {
        const cli_layer *l = &rel->layers[i], *ix = NULL;
        int paired = 0;
        if (l->is_chunk_index) {
            for (size_t j = 0; j < rel->nlayers && !paired; j++)
                paired = !rel->layers[j].is_chunk_index && rel->layers[j].chunk_index &&
                         l->chunks_of && !strcmp(rel->layers[j].chunk_index, l->digest_str) &&
                         !strcmp(rel->layers[j].digest_str, l->chunks_of);
            if (!paired)
                return mlreg_error_set(MLREG_EMISMATCH,
                                       "%s: a chunk index of no file of the release; refusing "
                                       "the release",
                                       l->title);
            continue;
        }
        if (l->chunk_index) {
            for (size_t j = 0; j < rel->nlayers && !ix; j++)
                if (rel->layers[j].is_chunk_index && rel->layers[j].chunks_of &&
                    !strcmp(rel->layers[j].digest_str, l->chunk_index) &&
                    !strcmp(rel->layers[j].chunks_of, l->digest_str))
                    ix = &rel->layers[j];
            if (!ix)
                return mlreg_error_set(MLREG_EMISMATCH,
                                       "%s: names a chunk index the release does not list for "
                                       "it; refusing the release",
                                       l->title);
        }
        files[n].l = l;
        files[n].index = ix;
        files[n].fd = -1;
        n++;
    }
    *n_out = n;
    return 0;
}

/* Downloads one file: ranged into the staging dir when it has a chunk
 * index, else streamed into a temp file in DIR. */
static int fetch_file(pull_file *f, cli_client *c, const char *model, int dfd, const char *dir,
                      int sfd, const char *stage, unsigned parallel, uint64_t rate, char *note,
                      size_t notelen)
{
    cli_pull_chunked_stats st;
    int error;

    note[0] = '\0';
    if (!f->index) {
        if ((error = make_temp(&f->fd, f->tmp, sizeof(f->tmp), dfd, dir)) < 0) return error;
        return cli_blob_fetch(c, model, f->l, f->fd);
    }
    cli_pull_chunked_opts o = {.c = c,
                               .model = model,
                               .file = f->l,
                               .index = f->index,
                               .stage_fd = sfd,
                               .stage_dir = stage,
                               .parallel = parallel,
                               .rate = rate};
    f->staged = 1;
    if ((error = cli_pull_chunked(&f->fd, &st, f->tmp, sizeof(f->tmp), &o)) < 0) return error;
    snprintf(note, notelen,
             " (%zu chunks: %zu fetched, %zu kept from an earlier pull, %zu "
             "fetched again)",
             st.nchunks, st.fetched, st.kept, st.refetch);
    return 0;
}

int cmd_pull(int argc, char **argv)
{
    int error = 0, m;
    cli_release_ref rr;
    const char *refstr = NULL, *dir = NULL, *registry = NULL, *version = NULL, *v, *at = NULL;
    const char *digest;
    char size_str[32];
    cli_client *c = NULL;
    cli_release rel;
    cli_trust_opts trust;
    mlreg_trustset *ts = NULL;
    cli_sigreport sigs = {0};
    pull_file *files = NULL;
    size_t nfiles = 0;
    uint64_t total = 0;
    mode_t mask, mode;
    struct sigaction old_actions[NCAUGHT];
    sigset_t held, old_mask;
    int caught_set = 0, mask_set = 0, allow_withdrawn = 0, staging = 0, force = 0, dfd = -1,
        sfd = -1;
    cli_safepath_made made = {0};
    json_t *owned = NULL, *stale = NULL;
    unsigned parallel = 0;
    uint64_t rate = 0;
    char stage[PATH_MAX], note[160];

    sig_lock_tmp[0] = '\0';
    cli_release_init(&rel);
    cli_trust_opts_init(&trust);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_line, stdout);
            cli_trust_opts_clear(&trust);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--allow-withdrawn")) {
            allow_withdrawn = 1;
        } else if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else if ((m = cli_opt(&v, &i, argc, argv, "--parallel")) != 0) {
            char *end;
            long p;
            if (m < 0) goto usage;
            errno = 0;
            p = strtol(v, &end, 10);
            if (errno || *end || p < 1 || p > (long)CLI_PULL_PARALLEL_MAX) {
                mlreg_error_set(MLREG_EINVALID, "--parallel wants a number from 1 to %u",
                                CLI_PULL_PARALLEL_MAX);
                goto usage;
            }
            parallel = (unsigned)p;
        } else if ((m = cli_opt(&v, &i, argc, argv, "--limit-rate")) != 0) {
            if (m < 0 || cli_rate_parse(&rate, v, "--limit-rate") < 0) goto usage;
        } else if ((m = cli_trust_opt(&trust, &i, argc, argv)) != 0) {
            if (m < 0) goto usage;
        } else if ((m = cli_opt(&v, &i, argc, argv, "-o")) != 0 ||
                   (m = cli_opt(&v, &i, argc, argv, "--output")) != 0) {
            if (m < 0) goto usage;
            dir = v;
        } else if ((m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0 ||
                   (m = cli_opt(&at, &i, argc, argv, "--at")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&refstr, argv[i]) < 0) {
            goto usage;
        }
    }
    if (!refstr) {
        mlreg_error_set(MLREG_EINVALID, "missing REF");
        goto usage;
    }
    if (cli_release_ref_parse(&rr, refstr) < 0 || (at && cli_release_ref_at(&rr, at) < 0))
        goto usage;
    if (!dir || !*dir) {
        mlreg_error_set(MLREG_EINVALID, "missing -o DIR");
        goto usage;
    }

    mask = umask(0);
    umask(mask);
    mode = 0666 & ~mask;

    if (cli_trust_opts_given(&trust) && (error = cli_trust_load(&ts, &trust)) < 0) goto done;
    if ((error = cli_client_new(&c, registry)) < 0) goto done;
    if (rate) cli_client_limit_rate(c, rate);
    if ((error = cli_release_ref_fetch(&rel, c, &rr)) < 0) goto done;
    digest = rel.digest;
    version = rel.version;
    if ((error = withdrawn_check(c, rr.ref.model, version, digest, allow_withdrawn)) < 0) goto done;
    if (ts) {
        if ((error = cli_sigs_check(&sigs, c, rr.ref.model, &rel, ts)) < 0) goto done;
        for (size_t i = 0; i < sigs.n; i++)
            fprintf(stderr, "  signature   %-16s %-20s %s\n",
                    sigs.checks[i].key_id[0] ? sigs.checks[i].key_id : "?",
                    mlreg_text_printable(sigs.checks[i].name),
                    mlreg_text_printable(sigs.checks[i].reason));
        if ((error = cli_sigreport_verdict(&sigs)) < 0) {
            error = cli_error_wrap(error, "nothing written: %s@%s", rr.ref.model, version);
            goto done;
        }
    }
    if (rel.nlayers && !(files = calloc(rel.nlayers, sizeof(*files)))) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = files_collect(files, &nfiles, &rel)) < 0) goto done;
    /* Before anything is downloaded: what an earlier pull left, and what
     * would be in the way. */
    if (!(stale = json_array())) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* -1: no DIR yet, nothing to plan */
    if ((error = lock_owned(&owned, dfd, dir, force)) < 0 ||
        (error = dir_plan(stale, dfd, dir, files, nfiles, owned, force)) < 0)
        goto done;
    for (size_t i = 0; i < nfiles; i++)
        staging |= files[i].index != NULL;
    if ((error = mkdir_p(dir)) < 0) goto done;
    if (dfd < 0 && (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        error = mlreg_error_set(MLREG_EIO, "%s: %s", dir, strerror(errno));
        goto done;
    }
    sig_dfd = dfd;
    snprintf(stage, sizeof(stage), "%s/%s", dir, CLI_PULL_STAGE_DIR);
    if (staging && (error = cli_pull_stage_open(&sfd, dfd, dir)) < 0) goto done;

    sig_files = files;
    sig_nfiles = (sig_atomic_t)nfiles;
    signals_catch(old_actions);
    caught_set = 1;
    for (size_t i = 0; i < nfiles; i++) {
        pull_file *f = &files[i];
        if ((error = fetch_file(f, c, rr.ref.model, dfd, dir, sfd, stage, parallel, rate, note,
                                sizeof(note))) < 0)
            goto done;
        cli_format_size(size_str, sizeof(size_str), f->l->size);
        if (!cli_quiet())
            fprintf(stderr, "  %-11s %-30s %10s  verified%s\n", f->l->kind, f->l->title, size_str,
                    note);
        total += f->l->size;
    }
    /* Every file is verified. Write the lock file, check every target, and
     * only then rename: up to here DIR has gained temp files only. */
    for (size_t i = 0; i < nfiles; i++)
        if ((error = finish(&files[i].fd, dir, files[i].l->title, mode)) < 0) goto done;
    if ((error = write_lock(sig_lock_tmp, sizeof(sig_lock_tmp), dfd, dir, &rr.ref, &rel,
                            rr.by_stage ? rr.sref.stage : NULL, rr.at, files, nfiles, stale,
                            ts ? &sigs : NULL, mode)) < 0)
        goto done;
    sigemptyset(&held);
    for (size_t i = 0; i < NCAUGHT; i++)
        sigaddset(&held, caught[i]);
    sigprocmask(SIG_BLOCK, &held, &old_mask);
    mask_set = 1;
    if ((error = targets_ready(dfd, dir, files, nfiles, &made)) < 0) goto done;
    /* Only a change to DIR by someone else since the checks can make a
     * rename fail now; say so rather than claim nothing changed. */
    for (size_t i = 0; i <= nfiles; i++)
        if ((error = place(i < nfiles ? files[i].tmp : sig_lock_tmp,
                           i < nfiles && files[i].staged ? sfd : dfd, dfd, dir,
                           i < nfiles ? files[i].l->title : LOCK_NAME)) < 0) {
            if (i > 0)
                error = mlreg_error_set(error, "%s, after %zu of %zu files were replaced",
                                        mlreg_error_last(), i, nfiles + 1);
            goto done;
        }
    if ((error = made_sync(dfd, dir, &made)) < 0 || (error = cli_sync_dir(dir)) < 0) goto done;
    /* The new release and its lock are in place: only now the leftovers of
     * the previous one go (the lock names them under "removed"). */
    if (json_array_size(stale)) {
        stale_remove(dfd, dir, stale);
        if ((error = cli_sync_dir(dir)) < 0) goto done;
    }
    if (sfd >= 0) close(sfd);
    sfd = -1;
    cli_pull_stage_remove(dfd);
    cli_format_size(size_str, sizeof(size_str), total);
    if (!cli_quiet())
        fprintf(stderr, "pulled %s@%s (%s) into %s: %zu file%s, %s, all verified%s\n", rr.ref.model,
                version, digest, dir, nfiles, nfiles == 1 ? "" : "s", size_str,
                ts ? ", signed by a trusted key" : "");
    printf("%s\n", digest);
    error = cli_flush_stdout();
done:
    for (size_t i = 0; i < nfiles; i++) {
        if (files[i].fd >= 0) close(files[i].fd);
        if (files[i].tmp[0] && !files[i].staged) unlinkat(dfd, files[i].tmp, 0);
    }
    if (sig_lock_tmp[0]) unlinkat(dfd, sig_lock_tmp, 0);
    /* the directories this pull made and left empty (none after a success) */
    if (error < 0 && dfd >= 0) cli_safepath_made_undo(dfd, &made);
    cli_safepath_made_free(&made);
    if (sfd >= 0) close(sfd);
    if (dfd >= 0) close(dfd);
    sig_dfd = -1;
    if (mask_set) sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (caught_set) signals_restore(old_actions);
    sig_nfiles = 0;
    sig_files = NULL;
    free(files);
    json_decref(owned);
    json_decref(stale);
    cli_sigreport_free(&sigs);
    mlreg_trustset_free(ts);
    cli_release_clear(&rel);
    cli_client_free(c);
    cli_trust_opts_clear(&trust);
    return error < 0 ? cli_fail("pull", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg pull: %s\n%s", mlreg_error_last(), usage_line);
    cli_trust_opts_clear(&trust);
    return CLI_EXIT_USAGE;
}
