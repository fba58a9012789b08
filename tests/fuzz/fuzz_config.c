/* fuzz_config.c: the server's config file (config.h), with the policy
 * (gates.h) and token (auth.h) parsers it calls. mlreg_config_load() only
 * takes a path, so each input is written to config.json in a private
 * mkdtemp directory made on the first call and removed at exit; that
 * directory also holds keys/release.pub (the minisign test key), so
 * trusted_keys entries naming it load. Loading only reads files. The input
 * is also split as a listen address. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "mlreg/config.h"

static const char pubkey_text[] = "untrusted comment: minisign public key 135F655E9F290E69\n"
                                  "RWRpDimfXmVfE2asCOfEJVR+ZzWfAK4k5v5zMcNEFIOGEO8F30hQ9qFT\n";

static char dir[1024], config_path[1100], keys_dir[1100], key_path[1200];

static void cleanup(void)
{
    unlink(config_path);
    unlink(key_path);
    rmdir(keys_dir);
    rmdir(dir);
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f) return -1;
    ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static void init(void)
{
    static int done;
    const char *tmp = getenv("TMPDIR");

    if (done) return;
    if ((size_t)snprintf(dir, sizeof(dir), "%s/mlreg-fuzz-config.XXXXXX",
                         tmp && *tmp ? tmp : "/tmp") >= sizeof(dir) ||
        !mkdtemp(dir))
        abort();
    snprintf(config_path, sizeof(config_path), "%s/config.json", dir);
    snprintf(keys_dir, sizeof(keys_dir), "%s/keys", dir);
    snprintf(key_path, sizeof(key_path), "%s/release.pub", keys_dir);
    atexit(cleanup);
    if (mkdir(keys_dir, 0700) < 0 || write_file(key_path, pubkey_text, strlen(pubkey_text)) < 0)
        abort();
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mlreg_config *cfg = NULL;
    char host[256], *s;
    unsigned int port;

    init();
    if (write_file(config_path, data, size) < 0) abort();
    if (mlreg_config_load(&cfg, config_path) == 0) {
        if (!cfg->listen || !cfg->data_dir || !cfg->storage_backend || !cfg->policy) abort();
        if (mlreg_config_parse_listen(host, sizeof(host), &port, cfg->listen) < 0) abort();
    }
    mlreg_config_free(cfg);

    if ((s = malloc(size + 1))) {
        memcpy(s, data, size);
        s[size] = '\0';
        if (mlreg_config_parse_listen(host, sizeof(host), &port, s) == 0)
            (void)mlreg_config_host_is_loopback(host);
        free(s);
    }
    return 0;
}
