/* sign.c: `mlreg sign REF --key KEYFILE`: a (second) signer signs a release
 * that is already in the registry.
 *
 * The key is loaded first (a wrong password fails before any network
 * traffic). The manifest bytes are fetched and must hash to the pinned
 * digest or the registry's Docker-Content-Digest (cli_release_fetch); those
 * exact bytes are signed, with the release trusted comment naming model,
 * version and their digest, and the secret key is wiped right after. The
 * signature goes to POST .../signatures with the public half of the key.
 * A key that already signed this release is left alone (exit 0): the
 * registry keeps one signature per public key and release (another key
 * that merely carries the same key id does not count as this key).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "mlreg/common.h"
#include "mlreg/sign.h"
#include "ref.h"
#include "release.h"

static const char usage_line[] =
    "usage: mlreg sign REF --key KEYFILE [--registry URL] [--token-file FILE]\n"
    "\n" CLI_REF_HELP "\n"
    "Signs the release's manifest bytes with the secret key KEYFILE (mlreg or\n"
    "minisign format; password from MLREG_KEY_PASSWORD or the terminal when the\n"
    "key is encrypted) and attaches the signature to the release. The trusted\n"
    "comment is 'mlreg release model=M version=V digest=D timestamp=T'.\n"
    "  --key KEYFILE   e.g. --key ~/.mlreg/reviewer.key\n"
    "  --registry URL  e.g. --registry https://mlreg.example.com (or MLREG_URL)\n"
    "e.g. mlreg sign team/clf@1.4 --key reviewer.key\n";

int cmd_sign(int argc, char **argv)
{
    int error = 0, m, created = 0, trusted = 0;
    const char *refstr = NULL, *keyfile = NULL, *registry = NULL;
    cli_release_ref rr;
    cli_client *c = NULL;
    cli_release rel;
    mlreg_seckey *sk = NULL;
    mlreg_pubkey pk;
    json_t *sigs = NULL;
    char *sig = NULL, id[MLREG_KEYID_HEXLEN + 1];

    cli_release_init(&rel);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_line, stdout);
            return CLI_EXIT_OK;
        }
        if ((m = cli_opt(&keyfile, &i, argc, argv, "--key")) != 0 ||
            (m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&refstr, argv[i]) < 0) {
            goto usage;
        }
    }
    if (!refstr) {
        mlreg_error_set(MLREG_EINVALID, "missing REF");
        goto usage;
    }
    if (cli_release_ref_parse(&rr, refstr) < 0) goto usage;
    if (!keyfile || !*keyfile) {
        mlreg_error_set(MLREG_EINVALID, "missing --key KEYFILE");
        goto usage;
    }

    if ((error = cli_seckey_load(&sk, keyfile)) < 0) goto done;
    mlreg_seckey_pubkey(&pk, sk);
    mlreg_keyid_format(id, &pk.id);
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_release_ref_fetch(&rel, c, &rr)) < 0 ||
        (error = cli_sigs_get(&sigs, c, rr.ref.model, rel.version)) < 0)
        goto done;
    if (cli_sigs_signed_by(sigs, &pk, rr.ref.model, rel.version, rel.digest, rel.bytes, rel.len)) {
        mlreg_seckey_free(sk);
        sk = NULL;
        fprintf(stderr, "%s@%s (%s) is already signed by key %s; nothing to do\n", rr.ref.model,
                rel.version, rel.digest, id);
        printf("%s\n", id);
        goto flush;
    }
    error = cli_release_sign(&sig, sk, rr.ref.model, rel.version, rel.digest, rel.bytes, rel.len);
    /* The secret key is not needed any more: wipe it before the upload. */
    mlreg_seckey_free(sk);
    sk = NULL;
    if (error < 0) goto done;
    if ((error = cli_sig_attach(&created, &trusted, c, rr.ref.model, rel.version, sig, &pk)) < 0)
        goto done;
    fprintf(stderr, "signed %s@%s (%s) with key %s: %s, %s\n", rr.ref.model, rel.version,
            rel.digest, id, created ? "attached" : "already attached",
            trusted ? "a trusted release key of the registry"
                    : "not a trusted release key of the registry: the signature does not count");
    printf("%s\n", id);
flush:
    error = cli_flush_stdout();
done:
    mlreg_seckey_free(sk);
    free(sig);
    json_decref(sigs);
    cli_release_clear(&rel);
    cli_client_free(c);
    return error < 0 ? cli_fail("sign", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg sign: %s\n%s", mlreg_error_last(), usage_line);
    return CLI_EXIT_USAGE;
}
