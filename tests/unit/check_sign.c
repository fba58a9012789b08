/* check_sign.c: minisign-format keys and signatures against the vectors in
 * tests/vectors/minisign (made with minisign 0.11), hostile inputs, key file
 * safety, the password prompt on a real pseudo-terminal, and interop with
 * the stock /usr/bin/minisign as an independent client.
 *
 * The vector files are found under $MLREG_ROOT (tests/run.sh sets it) or
 * the current directory (the repo root, as `make test` runs).
 */
#include "mlreg/common.h"
#include "mlreg/sign.h"

#include "helpers.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MINISIGN "/usr/bin/minisign"

/* Vector values the tests name directly (all also in vectors.json). */
#define VEC_KEYID      "135F655E9F290E69"
#define ENC_KEYID      "7864A0D07EAE4E14"
#define VEC_TRUSTED    "artifact:resnet50@1.0.0 stage:production"
#define VEC_UNTRUSTED  "signature from ml-registry"
#define ENC_PASSWORD   "testpassword"
#define SCRYPT_TIMEOUT 240

static char root[64];

/* The password-encrypted key of the suite: each scrypt derivation at
 * minisign's parameters takes 1 GiB and seconds, so the key is generated
 * and saved (one derivation) once per run of the suite, in shared_dir
 * (made by main), by the first test that asks for it; the tests after it,
 * each in its own forked process, find the files. */
#define SHARED_PASSWORD "correct horse"
static char shared_dir[TH_DIR_MAX];

/* ---- helpers ------------------------------------------------------------ */

static void setup(void)
{
    th_tmpdir(root, sizeof(root), "sign");
    umask(022);
    unsetenv(MLREG_PASSWORD_ENV);
}

static void teardown(void)
{
    th_rm_rf(root);
}

/* root/<name>, in a static rotating buffer (several may be live at once). */
static const char *tmp(const char *name)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];

    snprintf(b, sizeof(bufs[0]), "%s/%s", root, name);
    return b;
}

/* shared_dir/<name>, in a static buffer per name. */
static const char *shared_path(const char *name)
{
    static char key[4096], pub[4096];
    char *b = strcmp(name, "k.key") == 0 ? key : pub;

    snprintf(b, sizeof(key), "%s/%s", shared_dir, name);
    return b;
}

/* The suite's encrypted key: shared_dir/k.key (password SHARED_PASSWORD,
 * saved by mlreg_seckey_save) and shared_dir/k.pub, made on first use. Its
 * public key in @p pub; returns the secret key file's path. */
static const char *shared_encrypted_key(mlreg_pubkey *pub)
{
    mlreg_seckey *sk = NULL;

    ck_assert_msg(shared_dir[0] != '\0', "main() makes shared_dir");
    if (access(shared_path("k.pub"), F_OK) != 0) {
        ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
        mlreg_seckey_pubkey(pub, sk);
        ck_assert_int_eq(mlreg_seckey_save(shared_path("k.key"), sk, SHARED_PASSWORD, NULL), 0);
        /* the public key last: its presence says the secret key is complete */
        ck_assert_int_eq(mlreg_pubkey_save(shared_path("k.pub"), pub, NULL), 0);
        mlreg_seckey_free(sk);
    }
    ck_assert_int_eq(mlreg_pubkey_load(pub, shared_path("k.pub")), 0);
    return shared_path("k.key");
}

static void spew(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void hex_to_bin(unsigned char *out, size_t outlen, const char *hex)
{
    size_t got = 0;

    ck_assert_int_eq(sodium_hex2bin(out, outlen, hex, strlen(hex), NULL, &got, NULL), 0);
    ck_assert_uint_eq(got, outlen);
}

/* vectors.json, loaded once per test process. */
static json_t *vectors(void)
{
    static json_t *v;
    json_error_t err;

    if (!v) {
        v = json_load_file(th_vector_path("minisign/vectors.json"), 0, &err);
        ck_assert_msg(v != NULL, "vectors.json: %s", err.text);
    }
    return v;
}

static const char *vstr(const char *obj, const char *key)
{
    json_t *o = obj ? json_object_get(vectors(), obj) : vectors();
    const char *s = json_string_value(json_object_get(o, key));

    ck_assert_msg(s != NULL, "vectors.json lacks %s.%s", obj ? obj : "", key);
    return s;
}

static mlreg_pubkey vector_pubkey(void)
{
    mlreg_pubkey pk;

    ck_assert_int_eq(mlreg_pubkey_load(&pk, th_vector_path("minisign/minisign.pub")), 0);
    return pk;
}

static mlreg_seckey *vector_seckey(void)
{
    mlreg_seckey *sk = NULL;

    ck_assert_int_eq(mlreg_seckey_load(&sk, th_vector_path("minisign/minisign.key"), NULL), 0);
    return sk;
}

/* Line @p n (1-based) of @p text, without its '\n', into @p out. */
static void line_of(char *out, size_t cap, const char *text, int n)
{
    const char *p = text, *nl;

    for (int i = 1; i < n; i++) {
        p = strchr(p, '\n');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    ck_assert_uint_lt(len, cap);
    memcpy(out, p, len);
    out[len] = '\0';
}

/* Replaces line @p n of @p text by @p line: a new malloc'd text. */
static char *with_line(const char *text, int n, const char *line)
{
    const char *p = text, *end;
    char *out;

    for (int i = 1; i < n; i++)
        p = strchr(p, '\n') + 1;
    end = strchr(p, '\n');
    if (!end) end = p + strlen(p);
    out = malloc(strlen(text) + strlen(line) + 1);
    ck_assert_ptr_nonnull(out);
    memcpy(out, text, (size_t)(p - text));
    strcpy(out + (p - text), line);
    strcat(out, end);
    return out;
}

/* Decodes base64 line @p n of @p text, lets @p edit change byte @p at to
 * @p value, re-encodes it canonically: a well-formed line with new content. */
static char *with_edited_base64(const char *text, int n, size_t at, unsigned char value)
{
    char line[512], enc[512];
    unsigned char raw[256];
    size_t len = 0;

    line_of(line, sizeof(line), text, n);
    ck_assert_int_eq(sodium_base642bin(raw, sizeof(raw), line, strlen(line), NULL, &len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    ck_assert_uint_lt(at, len);
    raw[at] = value;
    sodium_bin2base64(enc, sizeof(enc), raw, len, sodium_base64_VARIANT_ORIGINAL);
    return with_line(text, n, enc);
}

static void assert_error(int got, int want, const char *message)
{
    ck_assert_msg(got == want, "returned %d (%s), expected %d; message: %s", got,
                  mlreg_strerror(got), want, mlreg_error_last());
    ck_assert_msg(strstr(mlreg_error_last(), message) != NULL, "message \"%s\" lacks \"%s\"",
                  mlreg_error_last(), message);
}

/* Runs @p argv with @p input on stdin (NULL: /dev/null), stdout and stderr
 * into root/cmd.log. Returns the exit status, or 128 + signal. */
static int run(const char *const argv[], const char *input)
{
    int in[2], status = 0;
    pid_t pid;

    ck_assert_int_eq(pipe(in), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int log = open(tmp("cmd.log"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(in[0], 0);
        dup2(log, 1);
        dup2(log, 2);
        close(in[0]);
        close(in[1]);
        close(log);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    if (input) ck_assert_int_eq(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
    close(in[1]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *cmd_log(void)
{
    static char buf[4096];
    int fd = open(tmp("cmd.log"), O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    buf[n > 0 ? n : 0] = '\0';
    if (fd >= 0) close(fd);
    return buf;
}

/* The decoded secret key line of a key file, for checking its header. */
static void decode_key_file(unsigned char raw[158], const char *path)
{
    char *text = th_slurp(NULL, path), line[512];
    size_t len = 0;

    line_of(line, sizeof(line), text, 2);
    ck_assert_int_eq(sodium_base642bin(raw, 158, line, strlen(line), NULL, &len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    ck_assert_uint_eq(len, 158);
    free(text);
}

static unsigned long long le64(const unsigned char *p)
{
    unsigned long long v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---- key ids and public keys -------------------------------------------- */

START_TEST(test_vector_public_key_file_parses_to_the_decoded_fields)
{
    mlreg_pubkey pk = vector_pubkey();
    unsigned char id[8], key[32];

    ck_assert_str_eq(vstr("public_key_bytes_hex", "sig_alg"), "4564"); /* "Ed" */
    hex_to_bin(id, sizeof(id), vstr("public_key_bytes_hex", "key_id_raw"));
    hex_to_bin(key, sizeof(key), vstr("public_key_bytes_hex", "ed25519_pk"));
    ck_assert_mem_eq(pk.id.raw, id, 8);
    ck_assert_mem_eq(pk.pk, key, 32);
}
END_TEST

START_TEST(test_vector_public_key_parses_from_the_bare_base64_line_too)
{
    const char *file = vstr(NULL, "public_key_file");
    char line[128];
    mlreg_pubkey from_file, from_line;

    ck_assert_int_eq(mlreg_pubkey_parse(&from_file, file, strlen(file)), 0);
    line_of(line, sizeof(line), file, 2);
    ck_assert_int_eq(mlreg_pubkey_parse(&from_line, line, strlen(line)), 0);
    ck_assert(mlreg_pubkey_equal(&from_file, &from_line));
    /* As read from a one-line file, with its newline. */
    strcat(line, "\n");
    ck_assert_int_eq(mlreg_pubkey_parse(&from_line, line, strlen(line)), 0);
    ck_assert(mlreg_pubkey_equal(&from_file, &from_line));
}
END_TEST

START_TEST(test_key_id_prints_as_minisign_prints_it_and_parses_back)
{
    mlreg_pubkey pk = vector_pubkey();
    mlreg_keyid id;
    char hex[MLREG_KEYID_HEXLEN + 1];

    mlreg_keyid_format(hex, &pk.id);
    ck_assert_str_eq(hex, vstr(NULL, "key_id_as_printed"));
    ck_assert_str_eq(hex, VEC_KEYID);
    ck_assert_int_eq(mlreg_keyid_parse(&id, hex, strlen(hex)), 0);
    ck_assert(mlreg_keyid_equal(&id, &pk.id));
    ck_assert_int_eq(mlreg_keyid_parse(&id, "135f655e9f290e69", 16), 0);
    ck_assert(mlreg_keyid_equal(&id, &pk.id));
    assert_error(mlreg_keyid_parse(&id, "135F655E9F290E6", 15), MLREG_EINVALID, "16 hex digits");
    assert_error(mlreg_keyid_parse(&id, "135F655E9F290E6G", 16), MLREG_EINVALID, "16 hex digits");
}
END_TEST

START_TEST(test_public_key_formats_back_to_the_vector_file_byte_for_byte)
{
    mlreg_pubkey pk = vector_pubkey();
    char *text = NULL, b64[MLREG_PUBKEY_B64LEN + 1], line[128];

    ck_assert_int_eq(mlreg_pubkey_format(&text, &pk, "minisign public key " VEC_KEYID), 0);
    ck_assert_str_eq(text, vstr(NULL, "public_key_file"));
    free(text);
    ck_assert_int_eq(mlreg_pubkey_format(&text, &pk, NULL), 0);
    line_of(line, sizeof(line), text, 1);
    ck_assert_str_eq(line, "untrusted comment: mlreg public key " VEC_KEYID);
    free(text);
    mlreg_pubkey_base64(b64, &pk);
    line_of(line, sizeof(line), vstr(NULL, "public_key_file"), 2);
    ck_assert_str_eq(b64, line);
    assert_error(mlreg_pubkey_format(&text, &pk, "two\nlines"), MLREG_EINVALID, "line break");
    ck_assert_ptr_null(text);
}
END_TEST

START_TEST(test_public_key_with_wrong_algorithm_or_length_is_refused)
{
    const char *file = vstr(NULL, "public_key_file");
    mlreg_pubkey pk;
    char *bad = with_edited_base64(file, 2, 1, 'D'); /* "ED" is a signature algorithm */
    char line[128];

    assert_error(mlreg_pubkey_parse(&pk, bad, strlen(bad)), MLREG_EINVALID,
                 "unsupported algorithm 0x4544");
    free(bad);
    line_of(line, sizeof(line), file, 2);
    line[strlen(line) - 4] = '\0';
    assert_error(mlreg_pubkey_parse(&pk, line, strlen(line)), MLREG_EINVALID,
                 "line 1 has 52 base64 characters, expected 56");
    bad = with_line(file, 1, "untrusted comment minisign public key");
    assert_error(mlreg_pubkey_parse(&pk, bad, strlen(bad)), MLREG_EINVALID,
                 "malformed public key: line 1 does not start with \"untrusted comment: \"");
    free(bad);
    assert_error(mlreg_pubkey_parse(&pk, "", 0), MLREG_EINVALID, "malformed public key: empty");
}
END_TEST

START_TEST(test_key_load_of_a_missing_file_or_a_non_file_is_refused)
{
    mlreg_pubkey pk;
    mlreg_seckey *sk = NULL;
    char big[5000];

    assert_error(mlreg_pubkey_load(&pk, tmp("absent.pub")), MLREG_ENOTFOUND, "absent.pub");
    assert_error(mlreg_seckey_load(&sk, tmp("absent.key"), NULL), MLREG_ENOTFOUND, "absent.key");
    /* A FIFO would block a plain open() forever; a directory is no key. */
    ck_assert_int_eq(mkfifo(tmp("fifo"), 0600), 0);
    assert_error(mlreg_seckey_load(&sk, tmp("fifo"), NULL), MLREG_EINVALID,
                 "is not a regular file");
    assert_error(mlreg_pubkey_load(&pk, root), MLREG_EINVALID, "is not a regular file");
    memset(big, 'a', sizeof(big));
    spew(tmp("big.pub"), big, sizeof(big));
    assert_error(mlreg_pubkey_load(&pk, tmp("big.pub")), MLREG_EINVALID, "larger than 4095 bytes");
    ck_assert_ptr_null(sk);
}
END_TEST

/* ---- secret keys -------------------------------------------------------- */

START_TEST(test_unencrypted_vector_secret_key_loads_without_a_password)
{
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pub, want = vector_pubkey();
    int enc = -1;
    unsigned char sk_bytes[64];

    ck_assert_int_eq(mlreg_seckey_needs_password(&enc, th_vector_path("minisign/minisign.key")), 0);
    ck_assert_int_eq(enc, 0);
    sk = vector_seckey();
    mlreg_seckey_pubkey(&pub, sk);
    ck_assert(mlreg_pubkey_equal(&pub, &want));
    /* The key's public half is the second half of the decoded secret key. */
    hex_to_bin(sk_bytes, 64, vstr("secret_key_bytes_hex", "ed25519_sk_seed_then_pk"));
    ck_assert_mem_eq(pub.pk, sk_bytes + 32, 32);
    mlreg_seckey_free(sk);
    /* A password given for an unencrypted key is ignored. */
    ck_assert_int_eq(mlreg_seckey_load(&sk, th_vector_path("minisign/minisign.key"), "whatever"),
                     0);
    mlreg_seckey_free(sk);
    mlreg_seckey_free(NULL);
}
END_TEST

START_TEST(test_unencrypted_save_is_byte_identical_to_minisign_G_W)
{
    mlreg_seckey *sk = vector_seckey();
    size_t len = 0;
    char *written;
    unsigned char raw[158], want[104];

    /* minisign labels even -W keys "encrypted"; given its comment, every
     * other byte must be what it wrote. */
    ck_assert_int_eq(mlreg_seckey_save(tmp("k.key"), sk, NULL, "minisign encrypted secret key"), 0);
    written = th_slurp(&len, tmp("k.key"));
    ck_assert_str_eq(written, vstr(NULL, "secret_key_file_unencrypted_-W"));
    /* And field by field against the decoded vector. */
    decode_key_file(raw, tmp("k.key"));
    ck_assert_str_eq(vstr("secret_key_bytes_hex", "kdf_alg"), "0000");
    ck_assert_mem_eq(raw, "Ed\0\0B2", 6);
    hex_to_bin(want, 32, vstr("secret_key_bytes_hex", "kdf_salt"));
    ck_assert_mem_eq(raw + 6, want, 32);
    hex_to_bin(want, 8, vstr("secret_key_bytes_hex", "kdf_opslimit_le"));
    ck_assert_mem_eq(raw + 38, want, 8);
    hex_to_bin(want, 8, vstr("secret_key_bytes_hex", "kdf_memlimit_le"));
    ck_assert_mem_eq(raw + 46, want, 8);
    hex_to_bin(want, 8, vstr("secret_key_bytes_hex", "key_id_raw"));
    ck_assert_mem_eq(raw + 54, want, 8);
    hex_to_bin(want, 64, vstr("secret_key_bytes_hex", "ed25519_sk_seed_then_pk"));
    ck_assert_mem_eq(raw + 62, want, 64);
    hex_to_bin(want, 32, vstr("secret_key_bytes_hex", "chk"));
    ck_assert_mem_eq(raw + 126, want, 32);
    free(written);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_encrypted_vector_key_opens_with_testpassword_and_signs)
{
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pub, want;
    char *sig = NULL;
    int enc = -1;

    ck_assert_int_eq(mlreg_seckey_needs_password(&enc, th_vector_path("minisign/enc/enc.key")), 0);
    ck_assert_int_eq(enc, 1);
    ck_assert_str_eq(vstr("encrypted_key_example", "password"), ENC_PASSWORD);
    ck_assert_int_eq(mlreg_seckey_load(&sk, th_vector_path("minisign/enc/enc.key"), ENC_PASSWORD),
                     0);
    ck_assert_int_eq(mlreg_pubkey_load(&want, th_vector_path("minisign/enc/enc.pub")), 0);
    mlreg_seckey_pubkey(&pub, sk);
    ck_assert(mlreg_pubkey_equal(&pub, &want));
    ck_assert_int_eq(mlreg_sign(&sig, sk, "x", 1, "enc", NULL), 0);
    ck_assert_int_eq(mlreg_sign_verify(NULL, NULL, sig, strlen(sig), "x", 1, &want), 0);
    free(sig);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_encrypted_vector_key_refuses_a_wrong_password)
{
    mlreg_seckey *sk = NULL;

    assert_error(mlreg_seckey_load(&sk, th_vector_path("minisign/enc/enc.key"), "testpassworD"),
                 MLREG_EAUTH, "wrong password or corrupt key");
    ck_assert_ptr_null(sk);
}
END_TEST

START_TEST(test_encrypted_key_without_a_password_asks_for_one)
{
    mlreg_seckey *sk = NULL;
    size_t len = 0;
    char *text = th_slurp(&len, th_vector_path("minisign/enc/enc.key"));

    assert_error(mlreg_seckey_parse(&sk, text, len, NULL), MLREG_EAUTH,
                 "secret key is encrypted: password required");
    ck_assert_ptr_null(sk);
    free(text);
}
END_TEST

START_TEST(test_secret_key_with_unknown_algorithm_bytes_is_refused)
{
    const char *file = vstr(NULL, "secret_key_file_unencrypted_-W");
    mlreg_seckey *sk = NULL;
    char *bad;

    bad = with_edited_base64(file, 2, 1, 'D');
    assert_error(mlreg_seckey_parse(&sk, bad, strlen(bad), NULL), MLREG_EINVALID,
                 "unsupported algorithm 0x4544");
    free(bad);
    bad = with_edited_base64(file, 2, 2, 'A'); /* kdf "A\0" */
    assert_error(mlreg_seckey_parse(&sk, bad, strlen(bad), NULL), MLREG_EINVALID,
                 "unsupported key derivation 0x4100");
    free(bad);
    bad = with_edited_base64(file, 2, 5, '3'); /* checksum "B3" */
    assert_error(mlreg_seckey_parse(&sk, bad, strlen(bad), NULL), MLREG_EINVALID,
                 "unsupported checksum algorithm 0x4233");
    free(bad);
    ck_assert_ptr_null(sk);
}
END_TEST

START_TEST(test_unencrypted_key_whose_public_half_was_damaged_is_refused)
{
    const char *file = vstr(NULL, "secret_key_file_unencrypted_-W");
    mlreg_seckey *sk = NULL;
    char *bad = with_edited_base64(file, 2, 54 + 8 + 32, 0x00); /* first public key byte */

    assert_error(mlreg_seckey_parse(&sk, bad, strlen(bad), NULL), MLREG_EINVALID,
                 "corrupt secret key");
    ck_assert_ptr_null(sk);
    free(bad);
}
END_TEST

START_TEST(test_generated_key_round_trips_unencrypted)
{
    mlreg_seckey *sk = NULL, *back = NULL;
    mlreg_pubkey pub, pub_back, pub_file;
    char *sig = NULL;
    int enc = -1;

    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    mlreg_seckey_pubkey(&pub, sk);
    ck_assert_int_eq(mlreg_seckey_save(tmp("k.key"), sk, NULL, NULL), 0);
    ck_assert_int_eq(mlreg_pubkey_save(tmp("k.pub"), &pub, NULL), 0);
    ck_assert_int_eq(mlreg_seckey_needs_password(&enc, tmp("k.key")), 0);
    ck_assert_int_eq(enc, 0);
    ck_assert_int_eq(mlreg_seckey_load(&back, tmp("k.key"), NULL), 0);
    mlreg_seckey_pubkey(&pub_back, back);
    ck_assert_int_eq(mlreg_pubkey_load(&pub_file, tmp("k.pub")), 0);
    ck_assert(mlreg_pubkey_equal(&pub, &pub_back));
    ck_assert(mlreg_pubkey_equal(&pub, &pub_file));
    ck_assert_int_eq(mlreg_sign(&sig, back, "data", 4, "round trip", NULL), 0);
    ck_assert_int_eq(mlreg_sign_verify(NULL, NULL, sig, strlen(sig), "data", 4, &pub_file), 0);
    free(sig);
    mlreg_seckey_free(back);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_generated_key_round_trips_encrypted_with_minisign_parameters)
{
    mlreg_seckey *back = NULL;
    mlreg_pubkey pub, pub_back;
    unsigned char raw[158], zero[32] = {0};
    int enc = -1;
    /* generated and saved with SHARED_PASSWORD by mlreg_seckey_save */
    const char *key = shared_encrypted_key(&pub);

    ck_assert_int_eq(mlreg_seckey_needs_password(&enc, key), 0);
    ck_assert_int_eq(enc, 1);
    decode_key_file(raw, key);
    ck_assert_mem_eq(raw, "EdScB2", 6);
    ck_assert_mem_ne(raw + 6, zero, 32); /* random salt */
    ck_assert_uint_eq(le64(raw + 38), 33554432ULL);
    ck_assert_uint_eq(le64(raw + 46), 1073741824ULL);
    /* The key id sits in the encrypted part, as in minisign's files. */
    ck_assert_mem_ne(raw + 54, pub.id.raw, 8);

    assert_error(mlreg_seckey_load(&back, key, "correct horsE"), MLREG_EAUTH,
                 "wrong password or corrupt key");
    ck_assert_int_eq(mlreg_seckey_load(&back, key, SHARED_PASSWORD), 0);
    mlreg_seckey_pubkey(&pub_back, back);
    ck_assert(mlreg_pubkey_equal(&pub, &pub_back));
    mlreg_seckey_free(back);
}
END_TEST

/* ---- key files ---------------------------------------------------------- */

START_TEST(test_key_files_are_created_0600_for_secret_and_0644_for_public)
{
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pub;
    struct stat st;

    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    mlreg_seckey_pubkey(&pub, sk);
    ck_assert_int_eq(mlreg_seckey_save(tmp("k.key"), sk, NULL, NULL), 0);
    ck_assert_int_eq(mlreg_pubkey_save(tmp("k.pub"), &pub, NULL), 0);
    ck_assert_int_eq(stat(tmp("k.key"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(stat(tmp("k.pub"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0644);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_existing_key_files_are_never_overwritten)
{
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pub;
    char *after;

    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    mlreg_seckey_pubkey(&pub, sk);
    spew(tmp("k.key"), "precious", 8);
    spew(tmp("k.pub"), "precious", 8);
    assert_error(mlreg_seckey_save(tmp("k.key"), sk, NULL, NULL), MLREG_EEXISTS, "already exists");
    /* Refused before any scrypt work, and the file is left alone. */
    assert_error(mlreg_seckey_save(tmp("k.key"), sk, "pw", NULL), MLREG_EEXISTS, "already exists");
    assert_error(mlreg_pubkey_save(tmp("k.pub"), &pub, NULL), MLREG_EEXISTS, "already exists");
    after = th_slurp(NULL, tmp("k.key"));
    ck_assert_str_eq(after, "precious");
    free(after);
    after = th_slurp(NULL, tmp("k.pub"));
    ck_assert_str_eq(after, "precious");
    free(after);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_symlink_at_a_key_path_is_refused_and_not_followed)
{
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pub;
    struct stat st;
    char *after;

    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    mlreg_seckey_pubkey(&pub, sk);
    /* Dangling: following it would create the target. */
    ck_assert_int_eq(symlink(tmp("planted"), tmp("k.key")), 0);
    assert_error(mlreg_seckey_save(tmp("k.key"), sk, NULL, NULL), MLREG_EEXISTS, "already exists");
    ck_assert_int_eq(lstat(tmp("planted"), &st), -1);
    ck_assert_int_eq(lstat(tmp("k.key"), &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    /* Pointing at an existing file: following it would overwrite it. */
    spew(tmp("victim"), "victim", 6);
    ck_assert_int_eq(symlink(tmp("victim"), tmp("k.pub")), 0);
    assert_error(mlreg_pubkey_save(tmp("k.pub"), &pub, NULL), MLREG_EEXISTS, "already exists");
    after = th_slurp(NULL, tmp("victim"));
    ck_assert_str_eq(after, "victim");
    free(after);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_key_save_into_a_missing_directory_fails_cleanly)
{
    mlreg_seckey *sk = NULL;

    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    assert_error(mlreg_seckey_save(tmp("no/such/dir/k.key"), sk, NULL, NULL), MLREG_ENOTFOUND,
                 "cannot create");
    assert_error(mlreg_seckey_save(tmp("k.key"), sk, NULL, "bad\ncomment"), MLREG_EINVALID,
                 "line break");
    ck_assert_int_eq(access(tmp("k.key"), F_OK), -1);
    mlreg_seckey_free(sk);
}
END_TEST

/* ---- prehash ------------------------------------------------------------ */

START_TEST(test_prehash_is_blake2b_512_in_one_shot_streamed_and_from_a_file)
{
    unsigned char want[64], got[64];
    size_t len = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/message.txt"));
    mlreg_prehash *h = NULL;
    int fd;

    hex_to_bin(want, 64, vstr(NULL, "message_blake2b512_hex"));
    ck_assert_int_eq(mlreg_prehash_buffer(got, msg, len), 0);
    ck_assert_mem_eq(got, want, 64);

    ck_assert_int_eq(mlreg_prehash_new(&h), 0);
    for (size_t i = 0; i < len; i += 7)
        ck_assert_int_eq(mlreg_prehash_update(h, msg + i, len - i < 7 ? len - i : 7), 0);
    ck_assert_int_eq(mlreg_prehash_final(got, h), 0);
    mlreg_prehash_free(h);
    ck_assert_mem_eq(got, want, 64);

    fd = open(th_vector_path("minisign/message.txt"), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    memset(got, 0, sizeof(got));
    ck_assert_int_eq(mlreg_prehash_fd(got, fd), 0);
    close(fd);
    ck_assert_mem_eq(got, want, 64);

    /* BLAKE2b-512("") from RFC 7693's reference implementation. */
    hex_to_bin(want, 64,
               "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419"
               "d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce");
    ck_assert_int_eq(mlreg_prehash_buffer(got, NULL, 0), 0);
    ck_assert_mem_eq(got, want, 64);
    mlreg_prehash_free(NULL);
    free(msg);
}
END_TEST

/* ---- signing ------------------------------------------------------------ */

START_TEST(test_signing_the_vector_message_reproduces_the_reference_minisig)
{
    mlreg_seckey *sk = vector_seckey();
    size_t len = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/message.txt")),
         *ref = th_slurp(NULL, th_vector_path("minisign/message.txt.minisig"));
    char *sig = NULL;

    ck_assert_str_eq(vstr("prehashed", "trusted_comment"), VEC_TRUSTED);
    ck_assert_int_eq(mlreg_sign(&sig, sk, msg, len, VEC_TRUSTED, VEC_UNTRUSTED), 0);
    ck_assert_str_eq(sig, ref);
    ck_assert_str_eq(sig, vstr(NULL, "prehashed_signature_file"));
    free(sig);
    free(msg);
    free(ref);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_signing_like_minisign_reproduces_its_default_signature_with_tabs)
{
    mlreg_seckey *sk = vector_seckey();
    size_t len = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/default.txt")),
         *ref = th_slurp(NULL, th_vector_path("minisign/default.txt.minisig"));
    char *sig = NULL;

    /* minisign's own default comments; the trusted one holds tabs. */
    ck_assert_int_eq(mlreg_sign(&sig, sk, msg, len,
                                "timestamp:1795659256\tfile:default.txt\thashed",
                                "signature from minisign secret key"),
                     0);
    ck_assert_str_eq(sig, ref);
    free(sig);
    free(msg);
    free(ref);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_signing_by_default_names_mlreg_in_the_untrusted_comment)
{
    mlreg_seckey *sk = vector_seckey();
    size_t len = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/message.txt")),
         *ref = th_slurp(NULL, th_vector_path("minisign/message.txt.minisig"));
    char *sig = NULL, *sig2 = NULL, a[256], b[256];
    unsigned char prehash[64];

    ck_assert_int_eq(mlreg_sign(&sig, sk, msg, len, VEC_TRUSTED, NULL), 0);
    line_of(a, sizeof(a), sig, 1);
    ck_assert_str_eq(a, "untrusted comment: " MLREG_SIGN_DEFAULT_COMMENT);
    ck_assert_str_eq(a, "untrusted comment: signature from mlreg secret key");
    for (int n = 2; n <= 4; n++) {
        line_of(a, sizeof(a), sig, n);
        line_of(b, sizeof(b), ref, n);
        ck_assert_str_eq(a, b);
    }
    /* The streaming form signs the same bytes. */
    ck_assert_int_eq(mlreg_prehash_buffer(prehash, msg, len), 0);
    ck_assert_int_eq(mlreg_sign_prehash(&sig2, sk, prehash, VEC_TRUSTED, NULL), 0);
    ck_assert_str_eq(sig, sig2);
    free(sig);
    free(sig2);
    free(msg);
    free(ref);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_signing_refuses_comments_minisign_could_not_read)
{
    mlreg_seckey *sk = vector_seckey();
    mlreg_pubkey pk = vector_pubkey();
    char *sig = NULL, *tc = malloc(MLREG_SIGN_TRUSTED_COMMENT_MAX + 2);
    char *uc = malloc(MLREG_SIGN_UNTRUSTED_COMMENT_MAX + 2), *got = NULL;

    memset(tc, 't', MLREG_SIGN_TRUSTED_COMMENT_MAX + 1);
    tc[MLREG_SIGN_TRUSTED_COMMENT_MAX + 1] = '\0';
    memset(uc, 'u', MLREG_SIGN_UNTRUSTED_COMMENT_MAX + 1);
    uc[MLREG_SIGN_UNTRUSTED_COMMENT_MAX + 1] = '\0';
    assert_error(mlreg_sign(&sig, sk, "x", 1, tc, NULL), MLREG_EINVALID,
                 "trusted comment is longer than 8173 bytes");
    assert_error(mlreg_sign(&sig, sk, "x", 1, "ok", uc), MLREG_EINVALID,
                 "untrusted comment is longer than 1003 bytes");
    assert_error(mlreg_sign(&sig, sk, "x", 1, "two\nlines", NULL), MLREG_EINVALID, "line break");
    assert_error(mlreg_sign(&sig, sk, "x", 1, "cr\r", NULL), MLREG_EINVALID, "line break");
    assert_error(mlreg_sign(&sig, sk, "x", 1, NULL, NULL), MLREG_EINVALID,
                 "trusted comment is missing");
    ck_assert_ptr_null(sig);
    /* At the limits exactly, it signs and verifies. */
    tc[MLREG_SIGN_TRUSTED_COMMENT_MAX] = '\0';
    uc[MLREG_SIGN_UNTRUSTED_COMMENT_MAX] = '\0';
    ck_assert_int_eq(mlreg_sign(&sig, sk, "x", 1, tc, uc), 0);
    ck_assert_int_eq(mlreg_sign_verify(&got, NULL, sig, strlen(sig), "x", 1, &pk), 0);
    ck_assert_str_eq(got, tc);
    /* An empty trusted comment is allowed, as in minisign. */
    free(sig);
    ck_assert_int_eq(mlreg_sign(&sig, sk, "x", 1, "", NULL), 0);
    free(got);
    ck_assert_int_eq(mlreg_sign_verify(&got, NULL, sig, strlen(sig), "x", 1, &pk), 0);
    ck_assert_str_eq(got, "");
    free(got);
    free(sig);
    free(tc);
    free(uc);
    mlreg_seckey_free(sk);
}
END_TEST

/* ---- verification ------------------------------------------------------- */

START_TEST(test_sig_check_data_tells_a_data_mismatch_by_its_code)
{
    mlreg_seckey *sk = NULL, *other_sk = NULL;
    mlreg_pubkey pk, other;
    mlreg_sig *parsed = NULL;
    char *sig = NULL;

    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    ck_assert_int_eq(mlreg_seckey_generate(&other_sk), 0);
    mlreg_seckey_pubkey(&pk, sk);
    mlreg_seckey_pubkey(&other, other_sk);
    ck_assert_int_eq(mlreg_sign(&sig, sk, "weights", 7, "t", NULL), 0);
    ck_assert_int_eq(mlreg_sig_parse(&parsed, sig, strlen(sig)), 0);
    ck_assert_int_eq(mlreg_sig_check_data(parsed, &pk, "weights", 7), 0);
    /* other bytes: its own code, and EMISMATCH from the public verifier */
    assert_error(mlreg_sig_check_data(parsed, &pk, "weightz", 7), MLREG_ESIGNATURE,
                 "signature does not match the data");
    assert_error(mlreg_sig_verify(parsed, &pk, "weightz", 7), MLREG_EMISMATCH,
                 "signature does not match the data");
    /* another key id stays EMISMATCH */
    assert_error(mlreg_sig_check_data(parsed, &other, "weights", 7), MLREG_EMISMATCH,
                 "signature made by key ID");
    /* same key id, other key: the signature itself fails */
    other.id = pk.id;
    assert_error(mlreg_sig_check_data(parsed, &other, "weights", 7), MLREG_ESIGNATURE,
                 "signature does not match the data");
    mlreg_sig_free(parsed);
    free(sig);
    mlreg_seckey_free(sk);
    mlreg_seckey_free(other_sk);
}
END_TEST

START_TEST(test_prehashed_vector_signature_verifies_and_returns_comment_and_key_id)
{
    mlreg_pubkey pk = vector_pubkey();
    size_t len = 0, slen = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/message.txt")),
         *sig = th_slurp(&slen, th_vector_path("minisign/message.txt.minisig"));
    char *tc = NULL;
    mlreg_keyid id;
    mlreg_sig *parsed = NULL;
    unsigned char prehash[64], want[64];

    ck_assert_int_eq(mlreg_sign_verify(&tc, &id, sig, slen, msg, len, &pk), 0);
    ck_assert_str_eq(tc, VEC_TRUSTED);
    ck_assert(mlreg_keyid_equal(&id, &pk.id));
    free(tc);

    /* The parsed fields are the decoded ones. */
    ck_assert_int_eq(mlreg_sig_parse(&parsed, sig, slen), 0);
    ck_assert_int_eq(mlreg_sig_is_prehashed(parsed), 1);
    ck_assert_str_eq(vstr("prehashed", "sig_alg"), "ED");
    ck_assert_str_eq(mlreg_sig_trusted_comment(parsed), vstr("prehashed", "trusted_comment"));
    ck_assert_str_eq(mlreg_sig_untrusted_comment(parsed), VEC_UNTRUSTED);
    hex_to_bin(want, 8, vstr("prehashed", "key_id_raw"));
    ck_assert_mem_eq(mlreg_sig_key_id(parsed)->raw, want, 8);
    hex_to_bin(want, 64, vstr("prehashed", "signature_over_blake2b512"));
    ck_assert_int_eq(crypto_sign_verify_detached(want, (const unsigned char *)"", 0, pk.pk), -1);
    ck_assert_int_eq(mlreg_prehash_buffer(prehash, msg, len), 0);
    ck_assert_int_eq(crypto_sign_verify_detached(want, prehash, 64, pk.pk), 0);
    ck_assert_int_eq(mlreg_sig_verify(parsed, &pk, msg, len), 0);

    /* Streaming: the same signature against the prehash alone. */
    ck_assert_int_eq(mlreg_sig_verify_prehash(parsed, &pk, prehash), 0);
    ck_assert_int_eq(mlreg_sign_verify_prehash(&tc, &id, sig, slen, prehash, &pk), 0);
    ck_assert_str_eq(tc, VEC_TRUSTED);
    free(tc);
    mlreg_sig_free(parsed);
    mlreg_sig_free(NULL);
    free(msg);
    free(sig);
}
END_TEST

START_TEST(test_minisign_default_signature_with_tabs_in_its_comment_verifies)
{
    mlreg_pubkey pk = vector_pubkey();
    size_t len = 0, slen = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/default.txt")),
         *sig = th_slurp(&slen, th_vector_path("minisign/default.txt.minisig"));
    char *tc = NULL;

    ck_assert_int_eq(mlreg_sign_verify(&tc, NULL, sig, slen, msg, len, &pk), 0);
    ck_assert_str_eq(tc, "timestamp:1795659256\tfile:default.txt\thashed");
    free(tc);
    free(msg);
    free(sig);
}
END_TEST

START_TEST(test_legacy_vector_signature_verifies_but_not_from_a_prehash)
{
    mlreg_pubkey pk = vector_pubkey();
    size_t len = 0, slen = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/message.txt"));
    char *sig = th_slurp(&slen, th_vector_path("minisign/message.txt.legacy.minisig")), *tc = NULL;
    mlreg_sig *parsed = NULL;
    unsigned char prehash[64];

    ck_assert_str_eq(sig, vstr(NULL, "legacy_signature_file"));
    ck_assert_int_eq(mlreg_sign_verify(&tc, NULL, sig, slen, msg, len, &pk), 0);
    ck_assert_str_eq(tc, vstr("legacy", "trusted_comment"));
    free(tc);
    ck_assert_int_eq(mlreg_sig_parse(&parsed, sig, slen), 0);
    ck_assert_int_eq(mlreg_sig_is_prehashed(parsed), 0);
    ck_assert_int_eq(mlreg_prehash_buffer(prehash, msg, len), 0);
    assert_error(mlreg_sig_verify_prehash(parsed, &pk, prehash), MLREG_EUNSUPPORTED, "legacy");
    msg[0] ^= 1;
    assert_error(mlreg_sig_verify(parsed, &pk, msg, len), MLREG_EMISMATCH,
                 "signature does not match the data");
    mlreg_sig_free(parsed);
    free(msg);
    free(sig);
}
END_TEST

START_TEST(test_tampered_trusted_comment_fails_as_altered)
{
    mlreg_pubkey pk = vector_pubkey();
    size_t len = 0, slen = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/message.txt"));
    char *sig = th_slurp(&slen, th_vector_path("minisign/tampered_comment.minisig")), *tc = NULL;
    mlreg_keyid id = {{0}};

    assert_error(mlreg_sign_verify(&tc, &id, sig, slen, msg, len, &pk), MLREG_EMISMATCH,
                 "trusted comment was altered");
    ck_assert_ptr_null(tc);
    free(sig);
    /* A damaged global signature reads the same way. */
    sig = th_slurp(&slen, th_vector_path("minisign/message.txt.minisig"));
    char *bad = with_edited_base64(sig, 4, 10, 0x55);
    assert_error(mlreg_sign_verify(NULL, NULL, bad, strlen(bad), msg, len, &pk), MLREG_EMISMATCH,
                 "trusted comment was altered");
    free(bad);
    free(sig);
    free(msg);
}
END_TEST

START_TEST(test_one_byte_change_of_the_message_fails)
{
    mlreg_pubkey pk = vector_pubkey();
    size_t len = 0, slen = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/message.txt")),
         *sig = th_slurp(&slen, th_vector_path("minisign/message.txt.minisig"));

    ck_assert_int_eq(mlreg_sign_verify(NULL, NULL, sig, slen, msg, len, &pk), 0);
    msg[len - 2] ^= 0x01;
    assert_error(mlreg_sign_verify(NULL, NULL, sig, slen, msg, len, &pk), MLREG_EMISMATCH,
                 "signature does not match the data");
    msg[len - 2] ^= 0x01;
    assert_error(mlreg_sign_verify(NULL, NULL, sig, slen, msg, len - 1, &pk), MLREG_EMISMATCH,
                 "signature does not match the data");
    free(msg);
    free(sig);
}
END_TEST

START_TEST(test_signature_by_another_key_names_both_key_ids)
{
    mlreg_pubkey other;
    size_t len = 0, slen = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/message.txt")),
         *sig = th_slurp(&slen, th_vector_path("minisign/message.txt.minisig"));
    mlreg_sig *parsed = NULL;
    char hex[MLREG_KEYID_HEXLEN + 1];

    ck_assert_int_eq(mlreg_pubkey_load(&other, th_vector_path("minisign/enc/enc.pub")), 0);
    assert_error(mlreg_sign_verify(NULL, NULL, sig, slen, msg, len, &other), MLREG_EMISMATCH,
                 "signature made by key ID " VEC_KEYID ", not " ENC_KEYID);
    /* A keyring can look the signer up before verifying. */
    ck_assert_int_eq(mlreg_sig_parse(&parsed, sig, slen), 0);
    mlreg_keyid_format(hex, mlreg_sig_key_id(parsed));
    ck_assert_str_eq(hex, VEC_KEYID);
    /* Same key id, other key: the signature itself must fail. */
    other.id = *mlreg_sig_key_id(parsed);
    assert_error(mlreg_sig_verify(parsed, &other, msg, len), MLREG_EMISMATCH,
                 "signature does not match the data");
    mlreg_sig_free(parsed);
    free(msg);
    free(sig);
}
END_TEST

START_TEST(test_truncated_base64_is_a_malformed_signature)
{
    size_t slen = 0;
    char *sig = th_slurp(&slen, th_vector_path("minisign/message.txt.minisig")), line[256], *bad;
    mlreg_sig *parsed = NULL;

    line_of(line, sizeof(line), sig, 2);
    line[strlen(line) - 4] = '\0';
    bad = with_line(sig, 2, line);
    assert_error(mlreg_sig_parse(&parsed, bad, strlen(bad)), MLREG_EINVALID,
                 "malformed signature: line 2 has 96 base64 characters, expected 100");
    free(bad);
    line_of(line, sizeof(line), sig, 4);
    line[strlen(line) - 1] = '\0';
    bad = with_line(sig, 4, line);
    assert_error(mlreg_sig_parse(&parsed, bad, strlen(bad)), MLREG_EINVALID,
                 "malformed signature: line 4 has 87 base64 characters, expected 88");
    free(bad);
    /* A file cut after its second line. */
    assert_error(
        mlreg_sig_parse(&parsed, sig, (size_t)(strstr(sig, "\ntrusted comment:") + 1 - sig)),
        MLREG_EINVALID, "malformed signature: 2 lines, expected 4");
    /* Right length, but a character outside the alphabet or non-zero unused
     * bits (a second encoding of the same bytes) is refused. */
    line_of(line, sizeof(line), sig, 2);
    line[10] = '*';
    bad = with_line(sig, 2, line);
    assert_error(mlreg_sig_parse(&parsed, bad, strlen(bad)), MLREG_EINVALID,
                 "line 2 is not valid base64");
    free(bad);
    line_of(line, sizeof(line), sig, 2);
    ck_assert_int_eq(line[98], 'Q');
    line[98] = 'R';
    bad = with_line(sig, 2, line);
    assert_error(mlreg_sig_parse(&parsed, bad, strlen(bad)), MLREG_EINVALID,
                 "line 2 is not valid base64");
    free(bad);
    ck_assert_ptr_null(parsed);
    free(sig);
}
END_TEST

START_TEST(test_wrong_algorithm_bytes_are_a_malformed_signature)
{
    mlreg_pubkey pk = vector_pubkey();
    size_t len = 0, slen = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/message.txt")),
         *sig = th_slurp(&slen, th_vector_path("minisign/message.txt.minisig"));
    char *bad = with_edited_base64(sig, 2, 1, 'X');

    assert_error(mlreg_sign_verify(NULL, NULL, bad, strlen(bad), msg, len, &pk), MLREG_EINVALID,
                 "malformed signature: unsupported algorithm 0x4558");
    free(bad);
    /* "Ed" instead of "ED": parsed as legacy, which this signature is not. */
    bad = with_edited_base64(sig, 2, 1, 'd');
    assert_error(mlreg_sign_verify(NULL, NULL, bad, strlen(bad), msg, len, &pk), MLREG_EMISMATCH,
                 "signature does not match the data");
    free(bad);
    free(msg);
    free(sig);
}
END_TEST

START_TEST(test_signature_line_structure_is_strict)
{
    mlreg_pubkey pk = vector_pubkey();
    size_t len = 0, slen = 0;
    char *msg = th_slurp(&len, th_vector_path("minisign/message.txt")),
         *sig = th_slurp(&slen, th_vector_path("minisign/message.txt.minisig"));
    char *bad, buf[1024], *long_tc;
    mlreg_sig *parsed = NULL;

    /* The last newline may be missing (signatures travel in JSON) ... */
    ck_assert_int_eq(mlreg_sign_verify(NULL, NULL, sig, slen - 1, msg, len, &pk), 0);
    /* ... but nothing may follow the fourth line. */
    snprintf(buf, sizeof(buf), "%s\n", sig);
    assert_error(mlreg_sig_parse(&parsed, buf, strlen(buf)), MLREG_EINVALID,
                 "unexpected data after line 4");
    snprintf(buf, sizeof(buf), "%sextra\n", sig);
    assert_error(mlreg_sig_parse(&parsed, buf, strlen(buf)), MLREG_EINVALID,
                 "unexpected data after line 4");
    /* CRLF line endings. */
    bad = with_line(sig, 1, "untrusted comment: " VEC_UNTRUSTED "\r");
    assert_error(mlreg_sig_parse(&parsed, bad, strlen(bad)), MLREG_EINVALID,
                 "carriage return in line 1");
    free(bad);
    /* Trailing whitespace after base64. */
    line_of(buf, sizeof(buf), sig, 2);
    strcat(buf, " ");
    bad = with_line(sig, 2, buf);
    assert_error(mlreg_sig_parse(&parsed, bad, strlen(bad)), MLREG_EINVALID,
                 "line 2 has 101 base64 characters");
    free(bad);
    /* Missing or misspelt prefixes. */
    bad = with_line(sig, 3, "trusted-comment: " VEC_TRUSTED);
    assert_error(mlreg_sig_parse(&parsed, bad, strlen(bad)), MLREG_EINVALID,
                 "line 3 does not start with \"trusted comment: \"");
    free(bad);
    bad = with_line(sig, 1, "comment: x");
    assert_error(mlreg_sig_parse(&parsed, bad, strlen(bad)), MLREG_EINVALID,
                 "line 1 does not start with \"untrusted comment: \"");
    free(bad);
    /* A NUL inside the trusted comment (C strings would cut it short). */
    memcpy(buf, sig, slen);
    *(strstr(buf, "resnet50")) = '\0';
    assert_error(mlreg_sig_parse(&parsed, buf, slen), MLREG_EINVALID, "NUL byte in line 3");
    /* A trusted comment over minisign's limit is refused before any crypto. */
    long_tc = malloc(MLREG_SIGN_TRUSTED_COMMENT_MAX + 32);
    strcpy(long_tc, "trusted comment: ");
    memset(long_tc + 17, 'a', MLREG_SIGN_TRUSTED_COMMENT_MAX + 1);
    long_tc[17 + MLREG_SIGN_TRUSTED_COMMENT_MAX + 1] = '\0';
    bad = with_line(sig, 3, long_tc);
    assert_error(mlreg_sig_parse(&parsed, bad, strlen(bad)), MLREG_EINVALID,
                 "comment in line 3 is longer than 8173 bytes");
    free(bad);
    free(long_tc);
    assert_error(mlreg_sig_parse(&parsed, "", 0), MLREG_EINVALID, "malformed signature: empty");
    ck_assert_ptr_null(parsed);
    free(msg);
    free(sig);
}
END_TEST

/* ---- password prompt on a pseudo-terminal -------------------------------- */

/* A child process on a fresh pseudo-terminal. The session leader ("holder")
 * makes the pty its controlling terminal and keeps the session alive until
 * released: when a session leader exits, Linux hangs up its terminal and
 * every descriptor on it, and the test could no longer look at the
 * terminal's settings. The holder ignores SIGINT; its child ("reader"),
 * in the same foreground process group, runs mlreg_password_read(). */
typedef struct {
    int master;
    int slave;      /* the test's own handle, to look at the terminal's settings */
    int status_fd;  /* the holder writes the reader's wait status here */
    int release_fd; /* closing it lets the holder exit */
    pid_t holder;
    char out[4096]; /* everything written to the terminal */
    size_t out_len;
} pty_child;

/* Reads the terminal's output until it contains @p needle. */
static int pty_wait_for(pty_child *c, const char *needle)
{
    for (int waited = 0; waited < 10000; waited += 50) {
        struct pollfd p = {c->master, POLLIN, 0};
        c->out[c->out_len] = '\0';
        if (strstr(c->out, needle)) return 1;
        if (poll(&p, 1, 50) > 0 && (p.revents & POLLIN)) {
            ssize_t n = read(c->master, c->out + c->out_len, sizeof(c->out) - 1 - c->out_len);
            if (n > 0) c->out_len += (size_t)n;
        }
    }
    return 0;
}

static int pty_echo_on(const pty_child *c)
{
    struct termios t;

    ck_assert_int_eq(tcgetattr(c->slave, &t), 0);
    return (t.c_lflag & ECHO) != 0;
}

/* Reader: reads a password on the controlling terminal and compares it
 * with @p expect (NULL: expects error @p want_error); also checks that
 * echo is back on by the time the call returns. */
static void pty_reader(int tty, unsigned flags, const char *expect, int want_error)
{
    char *pw = NULL;
    struct termios t;
    int rc;

    signal(SIGINT, SIG_DFL);
    unsetenv(MLREG_PASSWORD_ENV);
    rc = mlreg_password_read(&pw, "Test password: ", flags);
    if (tcgetattr(tty, &t) < 0 || !(t.c_lflag & ECHO)) _exit(11);
    if (expect) {
        if (rc != 0) _exit(12);
        if (strcmp(pw, expect) != 0) _exit(10);
    } else if (rc != want_error) {
        _exit(13);
    }
    mlreg_password_free(pw);
    _exit(0);
}

static void pty_holder(const char *slave_name, int status_fd, int release_fd, unsigned flags,
                       const char *expect, int want_error)
{
    int tty, status = -1;
    char b;
    pid_t reader;

    setsid();
    if ((tty = open(slave_name, O_RDWR)) < 0) _exit(20); /* the controlling terminal now */
    signal(SIGINT, SIG_IGN);
    if ((reader = fork()) == 0) pty_reader(tty, flags, expect, want_error);
    if (reader < 0 || waitpid(reader, &status, 0) != reader) _exit(21);
    if (write(status_fd, &status, sizeof(status)) != (ssize_t)sizeof(status)) _exit(22);
    while (read(release_fd, &b, 1) > 0)
        ;
    _exit(0);
}

static void pty_start(pty_child *c, unsigned flags, const char *expect, int want_error)
{
    char name[256];
    int status_pipe[2], release_pipe[2];

    memset(c, 0, sizeof(*c));
    c->master = posix_openpt(O_RDWR | O_NOCTTY);
    ck_assert_int_ge(c->master, 0);
    ck_assert_int_eq(grantpt(c->master), 0);
    ck_assert_int_eq(unlockpt(c->master), 0);
    ck_assert_int_eq(ptsname_r(c->master, name, sizeof(name)), 0);
    c->slave = open(name, O_RDWR | O_NOCTTY);
    ck_assert_int_ge(c->slave, 0);
    ck_assert(pty_echo_on(c));
    ck_assert_int_eq(pipe(status_pipe), 0);
    ck_assert_int_eq(pipe(release_pipe), 0);
    c->holder = fork();
    ck_assert_int_ge(c->holder, 0);
    if (c->holder == 0) {
        close(c->master);
        close(c->slave);
        close(status_pipe[0]);
        close(release_pipe[1]);
        pty_holder(name, status_pipe[1], release_pipe[0], flags, expect, want_error);
    }
    close(status_pipe[1]);
    close(release_pipe[0]);
    c->status_fd = status_pipe[0];
    c->release_fd = release_pipe[1];
}

/* Waits for the reader to end and returns its wait status. */
static int pty_reader_status(pty_child *c)
{
    int status = -1;

    ck_assert_int_eq(read(c->status_fd, &status, sizeof(status)), (ssize_t)sizeof(status));
    return status;
}

static void pty_end(pty_child *c)
{
    int status = 0;

    close(c->release_fd);
    close(c->status_fd);
    ck_assert_int_eq(waitpid(c->holder, &status, 0), c->holder);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "holder status %d", status);
    close(c->slave);
    close(c->master);
}

static void pty_type(pty_child *c, const char *text)
{
    ck_assert_int_eq(write(c->master, text, strlen(text)), (ssize_t)strlen(text));
}

START_TEST(test_password_prompt_reads_the_terminal_with_echo_off_and_restores_it)
{
    pty_child c;
    int status;

    pty_start(&c, MLREG_PASSWORD_CONFIRM, "hunter2", 0);
    ck_assert_msg(pty_wait_for(&c, "Test password: "), "no prompt; got \"%s\"", c.out);
    ck_assert(!pty_echo_on(&c));
    pty_type(&c, "hunter2\n");
    ck_assert_msg(pty_wait_for(&c, "Password (one more time): "), "no second prompt: \"%s\"",
                  c.out);
    ck_assert(!pty_echo_on(&c));
    pty_type(&c, "hunter2\n");
    status = pty_reader_status(&c);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader status %d", status);
    ck_assert(pty_echo_on(&c));
    pty_wait_for(&c, "\x01never"); /* collect the rest of the output, briefly */
    ck_assert_msg(strstr(c.out, "hunter2") == NULL, "password echoed: \"%s\"", c.out);
    pty_end(&c);
}
END_TEST

START_TEST(test_password_prompt_restores_the_terminal_when_interrupted)
{
    pty_child c;
    int status;

    pty_start(&c, 0, "never typed", 0);
    ck_assert_msg(pty_wait_for(&c, "Test password: "), "no prompt; got \"%s\"", c.out);
    ck_assert(!pty_echo_on(&c));
    pty_type(&c, "hunt\x03"); /* Ctrl-C half-way through */
    status = pty_reader_status(&c);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "reader status %d", status);
    ck_assert(pty_echo_on(&c));
    pty_end(&c);
}
END_TEST

START_TEST(test_password_prompt_refuses_two_different_entries)
{
    pty_child c;
    int status;

    pty_start(&c, MLREG_PASSWORD_CONFIRM, NULL, MLREG_EAUTH);
    ck_assert(pty_wait_for(&c, "Test password: "));
    pty_type(&c, "one\n");
    ck_assert(pty_wait_for(&c, "Password (one more time): "));
    pty_type(&c, "two\n");
    status = pty_reader_status(&c);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader status %d", status);
    ck_assert(pty_echo_on(&c));
    pty_end(&c);
}
END_TEST

START_TEST(test_password_comes_from_the_environment_without_a_terminal)
{
    char *pw = NULL, *big;
    pid_t pid;
    int status = 0;

    ck_assert_int_eq(setenv(MLREG_PASSWORD_ENV, "from env", 1), 0);
    ck_assert_int_eq(mlreg_password_read(&pw, NULL, MLREG_PASSWORD_CONFIRM), 0);
    ck_assert_str_eq(pw, "from env");
    mlreg_password_free(pw);
    big = malloc(MLREG_PASSWORD_MAX + 2);
    memset(big, 'p', MLREG_PASSWORD_MAX + 1);
    big[MLREG_PASSWORD_MAX + 1] = '\0';
    ck_assert_int_eq(setenv(MLREG_PASSWORD_ENV, big, 1), 0);
    assert_error(mlreg_password_read(&pw, NULL, 0), MLREG_EINVALID, "longer than 1022 bytes");
    ck_assert_ptr_null(pw);
    free(big);
    unsetenv(MLREG_PASSWORD_ENV);
    /* No variable and no controlling terminal: a clear refusal. */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setsid();
        int rc = mlreg_password_read(&pw, NULL, 0);
        _exit(rc == MLREG_EAUTH && strstr(mlreg_error_last(), MLREG_PASSWORD_ENV) ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

/* ---- interop with the stock minisign ------------------------------------ */

START_TEST(test_minisign_verifies_a_signature_made_with_an_mlreg_key)
{
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pub;
    char *sig = NULL;
    const char data[] = "{\"schemaVersion\":2}\n";
    const char *argv[] = {
        MINISIGN, "-V", "-H", "-p", tmp("k.pub"), "-m", tmp("data"), "-x", tmp("data.minisig"),
        NULL};

    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    mlreg_seckey_pubkey(&pub, sk);
    ck_assert_int_eq(mlreg_pubkey_save(tmp("k.pub"), &pub, NULL), 0);
    spew(tmp("data"), data, strlen(data));
    ck_assert_int_eq(mlreg_sign(&sig, sk, data, strlen(data), "release m@1 sha256:ab", NULL), 0);
    spew(tmp("data.minisig"), sig, strlen(sig));
    ck_assert_msg(run(argv, NULL) == 0, "minisign -V refused: %s", cmd_log());
    ck_assert_msg(strstr(cmd_log(), "release m@1 sha256:ab") != NULL, "%s", cmd_log());
    /* The same check fails on a changed file, so it is really checking. */
    spew(tmp("data"), "{\"schemaVersion\":3}\n", strlen(data));
    ck_assert_int_ne(run(argv, NULL), 0);
    free(sig);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_minisign_verifies_mlreg_signatures_at_the_comment_limits)
{
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pub;
    char *sig = NULL, *tc = malloc(MLREG_SIGN_TRUSTED_COMMENT_MAX + 1);
    char uc[MLREG_SIGN_UNTRUSTED_COMMENT_MAX + 1];
    const char *argv[] = {
        MINISIGN, "-V", "-q", "-p", tmp("k.pub"), "-m", tmp("data"), "-x", tmp("data.minisig"),
        NULL};

    memset(tc, 't', MLREG_SIGN_TRUSTED_COMMENT_MAX);
    tc[MLREG_SIGN_TRUSTED_COMMENT_MAX] = '\0';
    memset(uc, 'u', MLREG_SIGN_UNTRUSTED_COMMENT_MAX);
    uc[MLREG_SIGN_UNTRUSTED_COMMENT_MAX] = '\0';
    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    mlreg_seckey_pubkey(&pub, sk);
    ck_assert_int_eq(mlreg_pubkey_save(tmp("k.pub"), &pub, uc), 0);
    spew(tmp("data"), "data", 4);
    ck_assert_int_eq(mlreg_sign(&sig, sk, "data", 4, tc, uc), 0);
    spew(tmp("data.minisig"), sig, strlen(sig));
    ck_assert_msg(run(argv, NULL) == 0, "minisign refused limits: %s", cmd_log());
    free(sig);
    free(tc);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_mlreg_verifies_keys_and_signatures_made_by_minisign)
{
    const char *gen[] = {MINISIGN, "-G", "-W", "-p", tmp("m.pub"), "-s", tmp("m.key"), NULL};
    const char *sign[] = {MINISIGN,           "-S", "-s", tmp("m.key"), "-m", tmp("data"), "-t",
                          "made by minisign", NULL};
    const char *legacy[] = {MINISIGN,
                            "-S",
                            "-l",
                            "-s",
                            tmp("m.key"),
                            "-m",
                            tmp("data"),
                            "-x",
                            tmp("legacy.minisig"),
                            "-t",
                            "legacy by minisign",
                            NULL};
    mlreg_pubkey pub, pub_from_sk;
    mlreg_seckey *sk = NULL;
    mlreg_sig *parsed = NULL;
    size_t slen = 0;
    char *sig, *tc = NULL, *mine = NULL;

    ck_assert_msg(run(gen, NULL) == 0, "minisign -G: %s", cmd_log());
    spew(tmp("data"), "weights\0and\0more", 16);
    ck_assert_msg(run(sign, NULL) == 0, "minisign -S: %s", cmd_log());
    ck_assert_int_eq(mlreg_pubkey_load(&pub, tmp("m.pub")), 0);
    sig = th_slurp(&slen, tmp("data.minisig"));
    ck_assert_int_eq(mlreg_sign_verify(&tc, NULL, sig, slen, "weights\0and\0more", 16, &pub), 0);
    ck_assert_str_eq(tc, "made by minisign");
    free(tc);
    /* minisign 0.11 prehashes by default. */
    ck_assert_int_eq(mlreg_sig_parse(&parsed, sig, slen), 0);
    ck_assert_int_eq(mlreg_sig_is_prehashed(parsed), 1);
    mlreg_sig_free(parsed);
    assert_error(mlreg_sign_verify(NULL, NULL, sig, slen, "weights\0and\0mord", 16, &pub),
                 MLREG_EMISMATCH, "signature does not match the data");

    /* mlreg reads minisign's secret key and signs exactly as minisign did. */
    ck_assert_int_eq(mlreg_seckey_load(&sk, tmp("m.key"), NULL), 0);
    mlreg_seckey_pubkey(&pub_from_sk, sk);
    ck_assert(mlreg_pubkey_equal(&pub, &pub_from_sk));
    ck_assert_int_eq(mlreg_sign(&mine, sk, "weights\0and\0more", 16, "made by minisign",
                                "signature from minisign secret key"),
                     0);
    ck_assert_str_eq(mine, sig);
    free(mine);
    free(sig);

    ck_assert_msg(run(legacy, NULL) == 0, "minisign -S -l: %s", cmd_log());
    sig = th_slurp(&slen, tmp("legacy.minisig"));
    ck_assert_int_eq(mlreg_sig_parse(&parsed, sig, slen), 0);
    ck_assert_int_eq(mlreg_sig_is_prehashed(parsed), 0);
    ck_assert_int_eq(mlreg_sig_verify(parsed, &pub, "weights\0and\0more", 16), 0);
    mlreg_sig_free(parsed);
    free(sig);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_minisign_signs_with_an_unencrypted_key_saved_by_mlreg)
{
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pub;
    size_t slen = 0;
    char *sig, *tc = NULL;
    const char *sign[] = {MINISIGN, "-S",        "-s", tmp("k.key"),
                          "-m",     tmp("data"), "-t", "by minisign with an mlreg key",
                          NULL};

    ck_assert_int_eq(mlreg_seckey_generate(&sk), 0);
    mlreg_seckey_pubkey(&pub, sk);
    ck_assert_int_eq(mlreg_seckey_save(tmp("k.key"), sk, NULL, NULL), 0);
    spew(tmp("data"), "data", 4);
    ck_assert_msg(run(sign, NULL) == 0, "minisign -S: %s", cmd_log());
    sig = th_slurp(&slen, tmp("data.minisig"));
    ck_assert_int_eq(mlreg_sign_verify(&tc, NULL, sig, slen, "data", 4, &pub), 0);
    ck_assert_str_eq(tc, "by minisign with an mlreg key");
    free(tc);
    free(sig);
    mlreg_seckey_free(sk);
}
END_TEST

START_TEST(test_minisign_opens_an_encrypted_key_saved_by_mlreg)
{
    mlreg_pubkey pub;
    size_t slen = 0;
    char *sig;
    /* the suite's key, saved by mlreg_seckey_save with SHARED_PASSWORD */
    const char *key = shared_encrypted_key(&pub);
    const char *sign[] = {MINISIGN, "-S", "-s", key, "-m", tmp("data"), "-t", "encrypted by mlreg",
                          NULL};

    spew(tmp("data"), "data", 4);
    /* minisign 0.11 reads the password from stdin when it is not a tty. */
    ck_assert_int_ne(run(sign, "correct horsE\n"), 0);
    ck_assert_msg(strstr(cmd_log(), "Wrong password") != NULL, "%s", cmd_log());
    ck_assert_msg(run(sign, SHARED_PASSWORD "\n") == 0, "minisign -S: %s", cmd_log());
    sig = th_slurp(&slen, tmp("data.minisig"));
    ck_assert_int_eq(mlreg_sign_verify(NULL, NULL, sig, slen, "data", 4, &pub), 0);
    free(sig);
}
END_TEST

static Suite *sign_suite(int with_minisign)
{
    Suite *s = suite_create("sign");
    TCase *keys = tcase_create("keys");
    TCase *kdf = tcase_create("kdf");
    TCase *files = tcase_create("key_files");
    TCase *sigs = tcase_create("signatures");
    TCase *pw = tcase_create("password");

    tcase_add_checked_fixture(keys, setup, teardown);
    tcase_add_test(keys, test_vector_public_key_file_parses_to_the_decoded_fields);
    tcase_add_test(keys, test_vector_public_key_parses_from_the_bare_base64_line_too);
    tcase_add_test(keys, test_key_id_prints_as_minisign_prints_it_and_parses_back);
    tcase_add_test(keys, test_public_key_formats_back_to_the_vector_file_byte_for_byte);
    tcase_add_test(keys, test_public_key_with_wrong_algorithm_or_length_is_refused);
    tcase_add_test(keys, test_key_load_of_a_missing_file_or_a_non_file_is_refused);
    tcase_add_test(keys, test_unencrypted_vector_secret_key_loads_without_a_password);
    tcase_add_test(keys, test_unencrypted_save_is_byte_identical_to_minisign_G_W);
    tcase_add_test(keys, test_encrypted_key_without_a_password_asks_for_one);
    tcase_add_test(keys, test_secret_key_with_unknown_algorithm_bytes_is_refused);
    tcase_add_test(keys, test_unencrypted_key_whose_public_half_was_damaged_is_refused);
    tcase_add_test(keys, test_generated_key_round_trips_unencrypted);
    suite_add_tcase(s, keys);

    /* Each scrypt derivation takes minisign's 1 GiB and a few seconds. */
    tcase_add_checked_fixture(kdf, setup, teardown);
    tcase_set_timeout(kdf, SCRYPT_TIMEOUT);
    tcase_add_test(kdf, test_encrypted_vector_key_opens_with_testpassword_and_signs);
    tcase_add_test(kdf, test_encrypted_vector_key_refuses_a_wrong_password);
    tcase_add_test(kdf, test_generated_key_round_trips_encrypted_with_minisign_parameters);
    suite_add_tcase(s, kdf);

    tcase_add_checked_fixture(files, setup, teardown);
    tcase_set_timeout(files, SCRYPT_TIMEOUT);
    tcase_add_test(files, test_key_files_are_created_0600_for_secret_and_0644_for_public);
    tcase_add_test(files, test_existing_key_files_are_never_overwritten);
    tcase_add_test(files, test_symlink_at_a_key_path_is_refused_and_not_followed);
    tcase_add_test(files, test_key_save_into_a_missing_directory_fails_cleanly);
    suite_add_tcase(s, files);

    tcase_add_checked_fixture(sigs, setup, teardown);
    tcase_add_test(sigs, test_prehash_is_blake2b_512_in_one_shot_streamed_and_from_a_file);
    tcase_add_test(sigs, test_signing_the_vector_message_reproduces_the_reference_minisig);
    tcase_add_test(sigs, test_signing_like_minisign_reproduces_its_default_signature_with_tabs);
    tcase_add_test(sigs, test_signing_by_default_names_mlreg_in_the_untrusted_comment);
    tcase_add_test(sigs, test_signing_refuses_comments_minisign_could_not_read);
    tcase_add_test(sigs, test_prehashed_vector_signature_verifies_and_returns_comment_and_key_id);
    tcase_add_test(sigs, test_sig_check_data_tells_a_data_mismatch_by_its_code);
    tcase_add_test(sigs, test_minisign_default_signature_with_tabs_in_its_comment_verifies);
    tcase_add_test(sigs, test_legacy_vector_signature_verifies_but_not_from_a_prehash);
    tcase_add_test(sigs, test_tampered_trusted_comment_fails_as_altered);
    tcase_add_test(sigs, test_one_byte_change_of_the_message_fails);
    tcase_add_test(sigs, test_signature_by_another_key_names_both_key_ids);
    tcase_add_test(sigs, test_truncated_base64_is_a_malformed_signature);
    tcase_add_test(sigs, test_wrong_algorithm_bytes_are_a_malformed_signature);
    tcase_add_test(sigs, test_signature_line_structure_is_strict);
    suite_add_tcase(s, sigs);

    tcase_add_checked_fixture(pw, setup, teardown);
    tcase_set_timeout(pw, 30);
    tcase_add_test(pw, test_password_prompt_reads_the_terminal_with_echo_off_and_restores_it);
    tcase_add_test(pw, test_password_prompt_restores_the_terminal_when_interrupted);
    tcase_add_test(pw, test_password_prompt_refuses_two_different_entries);
    tcase_add_test(pw, test_password_comes_from_the_environment_without_a_terminal);
    suite_add_tcase(s, pw);

    if (with_minisign) {
        TCase *interop = tcase_create("minisign_interop");
        tcase_add_checked_fixture(interop, setup, teardown);
        tcase_set_timeout(interop, SCRYPT_TIMEOUT);
        tcase_add_test(interop, test_minisign_verifies_a_signature_made_with_an_mlreg_key);
        tcase_add_test(interop, test_minisign_verifies_mlreg_signatures_at_the_comment_limits);
        tcase_add_test(interop, test_mlreg_verifies_keys_and_signatures_made_by_minisign);
        tcase_add_test(interop, test_minisign_signs_with_an_unencrypted_key_saved_by_mlreg);
        tcase_add_test(interop, test_minisign_opens_an_encrypted_key_saved_by_mlreg);
        suite_add_tcase(s, interop);
    }
    return s;
}

int main(void)
{
    int with_minisign = access(MINISIGN, X_OK) == 0;
    SRunner *sr;
    int failed;

    if (!with_minisign)
        fprintf(stderr,
                "check_sign: SKIPPING the minisign interop tests: %s is not installed "
                "(make deps installs it)\n",
                MINISIGN);
    /* (not th_tmpdir: its ck_assert works inside a test only) */
    snprintf(shared_dir, sizeof(shared_dir), "/tmp/mlreg-check-sign-shared-XXXXXX");
    if (!mkdtemp(shared_dir)) {
        fprintf(stderr, "check_sign: mkdtemp %s: %s\n", shared_dir, strerror(errno));
        return EXIT_FAILURE;
    }
    sr = srunner_create(sign_suite(with_minisign));
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    th_rm_rf(shared_dir);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
