/* dsse.c: DSSE v1 envelopes, Ed25519 over the pre-authentication encoding.
 *
 * The PAE binds the payload type to the body, so a signature over an
 * in-toto statement cannot be replayed as some other kind of document.
 * The envelope's key id only selects which signatures to try; what is
 * checked is always the Ed25519 signature against the caller's key.
 */
#include "mlreg/dsse.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/canonical_json.h"
#include "mlreg/common.h"
#include "sign_internal.h"

int mlreg_dsse_pae(unsigned char **out, size_t *len_out, const char *payload_type,
                   const void *payload, size_t len)
{
    size_t tlen = strlen(payload_type), cap = 6 + 3 * 21 + tlen + len + 1, n;
    unsigned char *buf = malloc(cap);

    if (buf == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    n = (size_t)snprintf((char *)buf, cap, "DSSEv1 %zu %s %zu ", tlen, payload_type, len);
    if (len > 0) memcpy(buf + n, payload, len);
    buf[n + len] = '\0';
    *out = buf;
    *len_out = n + len;
    return 0;
}

/* Standard padded base64 of @p len bytes, malloc'd. NULL when out of memory. */
static char *b64_encode(const void *data, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(cap);

    if (s != NULL) sodium_bin2base64(s, cap, data, len, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

int mlreg_dsse_sign(char **out, const char *payload_type, const void *payload, size_t len,
                    const mlreg_seckey *sk)
{
    unsigned char *pae = NULL, sig[crypto_sign_BYTES];
    size_t pae_len = 0;
    char keyid[MLREG_KEYID_HEXLEN + 1];
    char *payload64 = NULL, *sig64 = NULL, *text = NULL;
    json_t *env = NULL;
    int error = 0;

    if ((error = mlreg_signing__init()) < 0) goto done;
    if (payload_type[0] == '\0') {
        error = mlreg_error_set(MLREG_EINVALID, "dsse payload type is empty");
        goto done;
    }
    if ((error = mlreg_dsse_pae(&pae, &pae_len, payload_type, payload, len)) < 0) goto done;
    if (crypto_sign_detached(sig, NULL, pae, pae_len, sk->sk) != 0) {
        error = mlreg_error_set(MLREG_EIO, "ed25519 signing failed");
        goto done;
    }
    mlreg_keyid_format(keyid, &sk->id);
    if ((payload64 = b64_encode(payload, len)) == NULL ||
        (sig64 = b64_encode(sig, sizeof(sig))) == NULL ||
        (env = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "payload", payload64, "payloadType",
                         payload_type, "signatures", "keyid", keyid, "sig", sig64)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory building the dsse envelope");
        goto done;
    }
    if ((error = mlreg_canonical_json(&text, NULL, env)) < 0) goto done;
    *out = text;
done:
    json_decref(env);
    free(payload64);
    free(sig64);
    free(pae);
    return error;
}

/* Decodes base64 in any of the four forms DSSE allows into a malloc'd,
 * NUL-terminated buffer. 0, -1 (not base64, no message) or MLREG_ENOMEM. */
static int b64_decode_any(unsigned char **out, size_t *len_out, const char *s, size_t len)
{
    static const int variants[] = {
        sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    unsigned char *buf = malloc(len / 4 * 3 + 3 + 1);
    size_t i, got = 0;
    const char *end = NULL;

    if (buf == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        if (sodium_base642bin(buf, len / 4 * 3 + 3, s, len, NULL, &got, &end, variants[i]) == 0 &&
            end == s + len) {
            buf[got] = '\0';
            *out = buf;
            *len_out = got;
            return 0;
        }
    }
    free(buf);
    return -1;
}

int mlreg_dsse_verify(char **payload_type_out, unsigned char **payload_out, size_t *payload_len_out,
                      const char *envelope, size_t len, const mlreg_pubkey *pk)
{
    json_t *env = NULL, *sigs, *s;
    json_error_t jerr;
    const char *type, *payload64;
    unsigned char *payload = NULL, *pae = NULL, *sig = NULL;
    size_t payload_len = 0, pae_len = 0, sig_len = 0, i;
    char want_id[MLREG_KEYID_HEXLEN + 1];
    char *type_copy = NULL;
    int verified = 0, error = 0;

    if ((error = mlreg_signing__init()) < 0) goto done;
    if ((env = json_loadb(envelope, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
        !json_is_object(env)) {
        error = mlreg_error_set(MLREG_EINVALID, "malformed dsse envelope: not a json object");
        goto done;
    }
    type = json_string_value(json_object_get(env, "payloadType"));
    payload64 = json_string_value(json_object_get(env, "payload"));
    sigs = json_object_get(env, "signatures");
    if (type == NULL || type[0] == '\0' ||
        strlen(type) != json_string_length(json_object_get(env, "payloadType")) ||
        payload64 == NULL || !json_is_array(sigs) || json_array_size(sigs) == 0) {
        error = mlreg_error_set(MLREG_EINVALID,
                                "malformed dsse envelope: needs payloadType, payload, signatures");
        goto done;
    }
    if ((error = b64_decode_any(&payload, &payload_len, payload64,
                                json_string_length(json_object_get(env, "payload")))) != 0) {
        if (error == -1)
            error = mlreg_error_set(MLREG_EINVALID, "malformed dsse envelope: payload not base64");
        goto done;
    }
    if ((error = mlreg_dsse_pae(&pae, &pae_len, type, payload, payload_len)) < 0) goto done;
    mlreg_keyid_format(want_id, &pk->id);
    json_array_foreach(sigs, i, s)
    {
        json_t *kid = json_object_get(s, "keyid"), *sv = json_object_get(s, "sig");

        if (!json_is_object(s) || !json_is_string(sv) || (kid != NULL && !json_is_string(kid))) {
            error = mlreg_error_set(MLREG_EINVALID, "malformed dsse envelope: bad signature");
            goto done;
        }
        if (kid != NULL && json_string_length(kid) > 0 &&
            strcmp(json_string_value(kid), want_id) != 0)
            continue; /* another signer's: not ours to judge */
        free(sig);
        sig = NULL;
        if ((error = b64_decode_any(&sig, &sig_len, json_string_value(sv),
                                    json_string_length(sv))) != 0) {
            if (error == -1)
                error = mlreg_error_set(MLREG_EINVALID, "malformed dsse envelope: sig not base64");
            goto done;
        }
        if (sig_len == crypto_sign_BYTES &&
            crypto_sign_verify_detached(sig, pae, pae_len, pk->pk) == 0) {
            verified = 1;
            break;
        }
    }
    if (!verified) {
        error = mlreg_error_set(MLREG_EMISMATCH, "dsse envelope has no valid signature by key %s",
                                want_id);
        goto done;
    }
    if (payload_type_out != NULL && (type_copy = strdup(type)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        goto done;
    }
    if (payload_type_out != NULL) {
        *payload_type_out = type_copy;
        type_copy = NULL;
    }
    if (payload_out != NULL) {
        *payload_out = payload;
        payload = NULL;
    }
    if (payload_len_out != NULL) *payload_len_out = payload_len;
done:
    free(type_copy);
    free(payload);
    free(pae);
    free(sig);
    json_decref(env);
    return error;
}
