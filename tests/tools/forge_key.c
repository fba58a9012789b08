/* forge_key.c: the attacker of the signature slot tests. A minisign key id
 * is 8 bytes stored next to the key, not derived from it, so anyone can
 * make a key pair of their own that carries a real signer's key id. This
 * tool does exactly that, with libsodium and nothing of libmlreg:
 *
 *   forge_key REAL.pub OUT    writes OUT.pub and OUT.key: a fresh Ed25519
 *                             key pair whose key id is REAL.pub's
 *
 * OUT.key is an unencrypted secret key in minisign's format (as
 * `minisign -G -W` writes it: kdf bytes 0000, zero salt, limits and
 * checksum), so `mlreg sign --key OUT.key`, `mlreg push --sign-key OUT.key`
 * and `minisign -S -s OUT.key` sign with it. Neither file may exist yet.
 * Exit 0 done, 1 failure (unreadable or malformed REAL.pub, a file that
 * exists, I/O), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEYID_BYTES 8
/* "Ed" ‖ key id ‖ public key */
#define PUB_RAW (2 + KEYID_BYTES + crypto_sign_PUBLICKEYBYTES)
/* "Ed" ‖ kdf (2) ‖ "B2" ‖ salt (32) ‖ opslimit (8) ‖ memlimit (8) ‖ key id ‖
 * secret key (64) ‖ checksum (32) */
#define SK_OFF_KEYID (2 + 2 + 2 + 32 + 8 + 8)
#define SK_RAW       (SK_OFF_KEYID + KEYID_BYTES + crypto_sign_SECRETKEYBYTES + 32)

static int fail(const char *what, const char *path)
{
    fprintf(stderr, "forge_key: %s %s%s%s\n", what, path, errno ? ": " : "",
            errno ? strerror(errno) : "");
    return 1;
}

/* Reads the key id out of the second line of the .pub file at @p path. */
static int read_keyid(unsigned char id[KEYID_BYTES], const char *path)
{
    char buf[4096], *line2, *nl;
    unsigned char raw[PUB_RAW];
    size_t n, rawlen = 0;
    FILE *f = fopen(path, "r");

    if (!f) return fail("cannot open", path);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    errno = 0;
    if (!(line2 = strchr(buf, '\n'))) return fail("not a minisign public key:", path);
    line2++;
    nl = strchr(line2, '\n');
    if (sodium_base642bin(raw, sizeof(raw), line2, nl ? (size_t)(nl - line2) : strlen(line2), NULL,
                          &rawlen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        rawlen != PUB_RAW || raw[0] != 'E' || raw[1] != 'd')
        return fail("not a minisign public key:", path);
    memcpy(id, raw + 2, KEYID_BYTES);
    return 0;
}

/* Writes "untrusted comment: COMMENT\n<base64 of raw>\n" to a new file. */
static int write_key_file(const char *path, int mode, const char *comment, const unsigned char *raw,
                          size_t len)
{
    char b64[512], text[1024];
    int fd, n, rc = 0;

    sodium_bin2base64(b64, sizeof(b64), raw, len, sodium_base64_VARIANT_ORIGINAL);
    n = snprintf(text, sizeof(text), "untrusted comment: %s\n%s\n", comment, b64);
    sodium_memzero(b64, sizeof(b64));
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    if (fd < 0) {
        rc = fail("cannot create", path);
    } else {
        if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) rc = fail("cannot write", path);
        if (close(fd) != 0 && rc == 0) rc = fail("cannot close", path);
    }
    sodium_memzero(text, sizeof(text));
    return rc;
}

int main(int argc, char **argv)
{
    unsigned char id[KEYID_BYTES] = {0}, pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    unsigned char pub[PUB_RAW], sec[SK_RAW];
    char path[4096];
    int rc;

    if (argc != 3) {
        fputs("usage: forge_key REAL.pub OUT   (writes OUT.pub and OUT.key)\n", stderr);
        return 2;
    }
    if (sodium_init() < 0) return fail("cannot initialise", "libsodium");
    if (read_keyid(id, argv[1]) != 0) return 1;
    crypto_sign_keypair(pk, sk);

    memcpy(pub, "Ed", 2);
    memcpy(pub + 2, id, KEYID_BYTES);
    memcpy(pub + 2 + KEYID_BYTES, pk, sizeof(pk));
    memset(sec, 0, sizeof(sec));
    memcpy(sec, "Ed", 2);
    memcpy(sec + 4, "B2", 2);
    memcpy(sec + SK_OFF_KEYID, id, KEYID_BYTES);
    memcpy(sec + SK_OFF_KEYID + KEYID_BYTES, sk, sizeof(sk));
    sodium_memzero(sk, sizeof(sk));

    snprintf(path, sizeof(path), "%s.pub", argv[2]);
    rc = write_key_file(path, 0644, "forged public key", pub, sizeof(pub));
    snprintf(path, sizeof(path), "%s.key", argv[2]);
    if (rc == 0) rc = write_key_file(path, 0600, "forged secret key", sec, sizeof(sec));
    sodium_memzero(sec, sizeof(sec));
    return rc;
}
