/* replay.c: runs one fuzz target (linked in) over files, without libFuzzer,
 * so `make test` replays the seed corpora with the normal compiler (and
 * under SAN=1 with ASan and UBSan). Each argument is a file, or a
 * directory whose files (recursively) are replayed in name order. Prints
 * the number of inputs; exits 1 when an argument cannot be read. A crash or
 * a failed property of the target aborts, as under libFuzzer. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static size_t inputs;

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, got;
    int error = 0;

    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    do {
        if (len == cap) {
            unsigned char *p = realloc(buf, cap = cap ? 2 * cap : 4096);
            if (!p) {
                error = -1;
                goto done;
            }
            buf = p;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    if (ferror(f)) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        error = -1;
        goto done;
    }
    /* an exact-size copy, so ASan catches a read one past the input */
    {
        unsigned char *exact = malloc(len ? len : 1);
        if (!exact) {
            error = -1;
            goto done;
        }
        memcpy(exact, buf, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    inputs++;
done:
    free(buf);
    fclose(f);
    return error;
}

static int replay_path(const char *path)
{
    struct stat st;
    struct dirent **names = NULL;
    int n, error = 0;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: no such file %s\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return replay_file(path);
    if ((n = scandir(path, &names, NULL, alphasort)) < 0) {
        fprintf(stderr, "replay: cannot list %s\n", path);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char sub[4096];
        if (names[i]->d_name[0] != '.' &&
            (size_t)snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name) < sizeof(sub) &&
            replay_path(sub) < 0)
            error = -1;
        free(names[i]);
    }
    free(names);
    return error;
}

int main(int argc, char **argv)
{
    int error = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (replay_path(argv[i]) < 0) error = -1;
    printf("%zu inputs\n", inputs);
    return error < 0 ? 1 : 0;
}
