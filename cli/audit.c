/* audit.c: `mlreg audit log` and `mlreg audit verify` (docs/audit-api.md),
 * and the downloads of the audit log that `mlreg bundle` shares.
 *
 * The registry is not trusted. `audit verify` takes the log key from the
 * user (--log-key) or, saying so, from the registry; fetches the signed
 * checkpoint and every entry it covers; and hands them to the offline
 * checks of mlreg/audit_verify.h, which check each entry, recompute the
 * Merkle root and, when it differs, bisect with consistency proofs fetched
 * here (cli_audit_consistency_get) to name the first entry that differs
 * from the signed log.
 *
 * With --remember FILE the previous checkpoint is kept between runs, so a
 * log that was rewritten from scratch and re-signed with the same key
 * (or truncated) is caught: the new checkpoint must extend the old one.
 *
 * `audit verify --bundle DIR` checks a `mlreg bundle` directory with no
 * network at all (mlreg_audit_verify_bundle).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "files.h"
#include "mlreg/audit.h"
#include "mlreg/audit_verify.h"
#include "mlreg/common.h"
#include "mlreg/digest.h"
#include "mlreg/file.h"
#include "mlreg/registry.h"
#include "mlreg/release_sig.h"
#include "mlreg/text.h"
#include "mlreg/time.h"
#include "release.h"

#define KEY_MAX    4096u
#define PAGE_LIMIT 1000u /* entries per page; the server also ends a page at 4 MiB */

static const char audit_usage[] =
    "usage: mlreg audit log [--model M] [--since TIME] [--all] [--overrides] [--json]\n"
    "                       [--registry URL]\n"
    "       mlreg audit verify [--log-key PUBFILE] [--remember FILE] [--registry URL]\n"
    "       mlreg audit verify --bundle DIR [--log-key PUBFILE]\n"
    "\n"
    "log     prints the audit log under a header line, one line per entry: seq,\n"
    "        time, actor, action, subject, result, reason. blob.link entries (one\n"
    "        per uploaded file) are hidden and counted in a last line; --all shows\n"
    "        them. --model keeps the entries about model M, --since the entries\n"
    "        at or after TIME (RFC 3339); --json prints every matching entry,\n"
    "        blob.link included, as a JSON array. --overrides keeps only the\n"
    "        break-glass entries (`mlreg promote --override`): the promotions that\n"
    "        moved a stage despite failing rules (RESULT ok+override, with the\n"
    "        reason and the approvers of the override), the attempts refused\n"
    "        (refused+override) and the approvals of overrides (approve,\n"
    "        ok+override, with the approver's reason).\n"
    "        e.g. mlreg audit log --model team/clf --since 2026-11-26T00:00:00Z\n"
    "verify  checks the registry's audit log: the signed checkpoint (with the\n"
    "        log key from --log-key, a minisign .pub file, else the key the\n"
    "        registry presents, which is said on stderr), every entry up to the\n"
    "        checkpoint size (canonical, seq, prev chain) and the Merkle root;\n"
    "        names the first entry that differs from the signed log.\n"
    "        --remember FILE keeps the checkpoint between runs and checks that\n"
    "        the log only grew since (consistency proof); FILE is replaced\n"
    "        atomically on success.\n"
    "        --bundle DIR checks a `mlreg bundle` directory offline: checkpoint,\n"
    "        entries against their inclusion proofs, attestations, evaluations\n"
    "        (each envelope against its audit entry and key), SHA256SUMS\n"
    "        (log key from --log-key, else DIR/audit/log.pub, which is said).\n"
    "Exit 0 verified, 1 a mismatch (first bad entry or file named), 2 usage or\n"
    "local I/O, 3 registry unreachable or failing.\n"
    "\n"
    "examples: mlreg audit log --model team/clf --since 2026-11-26T00:00:00Z --all --json\n"
    "          mlreg audit verify --log-key log.pub --remember ~/.mlreg/checkpoint --registry URL\n"
    "          mlreg audit verify --bundle ./bundle --log-key log.pub\n";

/* Copies the current message, so it can be part of a new one; it may quote
 * registry text, so it is held to the text rule (text.h). */
static void last_message(char *buf, size_t len)
{
    mlreg_text_sanitize(buf, len, mlreg_error_last(), strlen(mlreg_error_last()));
}

static void hash_base64(char out[64], const mlreg_merkle_hash *h)
{
    sodium_bin2base64(out, 64, h->raw, sizeof(h->raw), sodium_base64_VARIANT_ORIGINAL);
}
/* ---- talking to the registry ------------------------------------------------------------ */

int cli_audit_key_get(mlreg_pubkey *out, char **text_out, size_t *len_out, cli_client *c)
{
    int error;
    char *text = NULL, msg[512];
    size_t len = 0;

    if (text_out) *text_out = NULL;
    if ((error = cli_get_bytes(&text, &len, c, "/api/v1/audit/key", KEY_MAX,
                               "fetching the audit log key")) < 0)
        return error;
    if ((error = mlreg_pubkey_parse(out, text, len)) < 0) {
        last_message(msg, sizeof(msg));
        free(text);
        return mlreg_error_set(MLREG_ESERVER, "the registry's audit log key: %s", msg);
    }
    if (text_out) {
        *text_out = text;
        *len_out = len;
    } else {
        free(text);
    }
    return 0;
}

int cli_audit_checkpoint_get(char **out, size_t *len_out, cli_client *c)
{
    return cli_get_bytes(out, len_out, c, "/api/v1/audit/checkpoint", MLREG_BUNDLE_CHECKPOINT_MAX,
                         "fetching the audit checkpoint");
}

int cli_audit_entries_get(mlreg_audit_entries *e, cli_client *c, uint64_t want, int stop_at_gap)
{
    int error = 0, single = 0;
    cli_response resp;
    json_t *page = NULL, *arr, *v, *next;
    char path[128], msg[512];

    mlreg_audit_entries_clear(e);
    cli_response_init(&resp);
    while (e->n < want) {
        uint64_t since = e->n, limit = want - e->n < PAGE_LIMIT ? want - e->n : PAGE_LIMIT;
        size_t i;
        if (single) limit = 1;
        json_decref(page);
        page = NULL;
        snprintf(path, sizeof(path), "/api/v1/audit?since=%" PRIu64 "&limit=%" PRIu64, since,
                 limit);
        error = cli_api_expect(&page, &resp, c, "GET", path, NULL, "reading the audit log");
        if (error == MLREG_ESERVER && stop_at_gap) {
            /* An entry the registry cannot read: find which, one at a time,
             * and stop before it; the caller names it as missing. */
            if (!single) {
                single = 1;
                continue;
            }
            last_message(msg, sizeof(msg));
            fprintf(stderr, "mlreg: the registry cannot serve audit entry %" PRIu64 ": %s\n", since,
                    msg);
            mlreg_error_clear();
            error = 0;
            break;
        }
        if (error < 0) goto done;
        arr = json_object_get(page, "entries");
        v = json_object_get(page, "since");
        if (!json_is_array(arr) ||
            (v && (!json_is_integer(v) || (uint64_t)json_integer_value(v) != since))) {
            error = mlreg_error_set(MLREG_ESERVER,
                                    "reading the audit log: registry sent a malformed page");
            goto done;
        }
        json_array_foreach(arr, i, v)
        {
            if (!json_is_string(v)) {
                error = mlreg_error_set(
                    MLREG_ESERVER, "reading the audit log: entry %" PRIu64 " is not a JSON string",
                    since + i);
                goto done;
            }
            if (e->n >= want) break;
            if ((error = mlreg_audit_entries_add(e, json_string_value(v), json_string_length(v))) <
                0)
                goto done;
        }
        next = json_object_get(page, "next");
        if (json_array_size(arr) == 0 || !json_is_integer(next)) break;
    }
done:
    json_decref(page);
    cli_response_clear(&resp);
    return error;
}

int cli_audit_consistency_get(mlreg_merkle_hash *proof, size_t *len_out, void *ctx, uint64_t from,
                              uint64_t to)
{
    cli_client *c = ctx;
    cli_response resp;
    json_t *ans = NULL, *arr, *v;
    char path[128];
    size_t i;
    int error;

    *len_out = 0;
    cli_response_init(&resp);
    snprintf(path, sizeof(path), "/api/v1/audit/proof/consistency?from=%" PRIu64 "&to=%" PRIu64,
             from, to);
    if ((error =
             cli_api_expect(&ans, &resp, c, "GET", path, NULL, "fetching a consistency proof")) < 0)
        goto done;
    arr = json_object_get(ans, "proof");
    if (!json_is_array(arr) || json_array_size(arr) > MLREG_MERKLE_PROOF_MAX) {
        error = mlreg_error_set(
            MLREG_ESERVER,
            "consistency proof %" PRIu64 "..%" PRIu64 ": registry sent no proof array", from, to);
        goto done;
    }
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || mlreg_merkle_hash_from_base64(&proof[i], json_string_value(v),
                                                                json_string_length(v)) < 0) {
            error = mlreg_error_set(MLREG_ESERVER,
                                    "consistency proof %" PRIu64 "..%" PRIu64
                                    ": hash %zu is not base64 of 32 bytes",
                                    from, to, i);
            goto done;
        }
    }
    *len_out = json_array_size(arr);
done:
    json_decref(ans);
    cli_response_clear(&resp);
    return error;
}

/* ---- audit log ---------------------------------------------------------------------------- */

/* The text listing is read by people: a push records one blob.link entry
 * per file it uploads (about ten for a sharded model), which buries the
 * changes that matter, so those rows are hidden unless --all and their
 * number is said in a last line. --json stays every matching entry: a
 * script that reads it must not lose entries depending on a flag it never
 * asked for. */
#define AUDIT_LOG_ROW "%-6s %-30s  %-12s  %-16s  %-40s  %s%s%s\n"

/* A break-glass promotion's entry: 2 moved by an override, 1 an override
 * asked for and refused, 0 neither (the details of attestations.c). */
static int override_kind(const json_t *entry)
{
    const json_t *d = json_object_get(entry, "details");

    if (json_is_true(json_object_get(d, "override"))) return 2;
    return json_is_true(json_object_get(d, "override_requested")) ? 1 : 0;
}

/* "model@version stage=S" and the like, for one line of `audit log`. */
static void format_subject(char *buf, size_t len, json_t *subject)
{
    static const char *const extra[] = {"stage", "tag", "key_id", "image"};
    const char *model = json_string_value(json_object_get(subject, "model"));
    const char *version = json_string_value(json_object_get(subject, "version"));
    const char *digest = json_string_value(json_object_get(subject, "digest"));
    size_t off = 0;

    buf[0] = '\0';
#define APPEND(...)                                                                                \
    do {                                                                                           \
        int w_ = snprintf(buf + off, len - off, __VA_ARGS__);                                      \
        if (w_ > 0) off = off + (size_t)w_ < len ? off + (size_t)w_ : len - 1;                     \
    } while (0)
    if (model) APPEND("%s", mlreg_text_printable(model));
    if (version)
        APPEND("@%s", mlreg_text_printable(version));
    else if (digest)
        APPEND("%s%.19s", model ? "@" : "", mlreg_text_printable(digest));
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        const char *v = json_string_value(json_object_get(subject, extra[i]));
        if (v) APPEND("%s%s=%s", off ? " " : "", extra[i], mlreg_text_printable(v));
    }
    if (!off) APPEND("-");
#undef APPEND
}

static int audit_log(int argc, char **argv)
{
    int error = 0, m, as_json = 0, all = 0, overrides = 0;
    const char *model = NULL, *since = NULL, *registry = NULL, *pos = NULL;
    uint64_t hidden = 0;
    int64_t since_sec = 0;
    int32_t since_nsec = 0;
    cli_client *c = NULL;
    mlreg_audit_entries e;
    json_t *out = NULL, *entry = NULL;
    char *text = NULL, subject[400];

    mlreg_audit_entries_init(&e);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(audit_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if (!strcmp(argv[i], "--all")) {
            all = 1;
        } else if (!strcmp(argv[i], "--overrides")) {
            overrides = 1;
        } else if ((m = cli_opt(&model, &i, argc, argv, "--model")) != 0 ||
                   (m = cli_opt(&since, &i, argc, argv, "--since")) != 0 ||
                   (m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&pos, argv[i]) < 0) {
            goto usage;
        } else {
            mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", pos);
            goto usage;
        }
    }
    if (model && mlreg_name_validate(model) < 0) {
        mlreg_error_set(MLREG_EINVALID, "--model '%s' is not a model name", model);
        goto usage;
    }
    if (since && mlreg_time_parse(&since_sec, &since_nsec, since) < 0) {
        mlreg_error_set(MLREG_EINVALID,
                        "--since '%s' is not an RFC 3339 time (e.g. 2026-11-26T10:00:00Z)", since);
        goto usage;
    }
    if ((error = cli_client_new(&c, registry)) < 0 ||
        (error = cli_audit_entries_get(&e, c, UINT64_MAX, 0)) < 0)
        goto done;
    if (as_json && !(out = json_array())) goto nomem;
    if (!as_json)
        printf(AUDIT_LOG_ROW, "SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "RESULT", "  ",
               "REASON");
    for (uint64_t i = 0; i < e.n; i++) {
        json_t *subj, *who;
        const char *t, *reason, *action;
        char seq[24], result[64], approvers[600];
        int ov;
        json_decref(entry);
        if (!(entry = json_loadb(e.text[i], e.len[i], 0, NULL)) || !json_is_object(entry)) {
            error = mlreg_error_set(
                MLREG_ESERVER,
                "audit entry %" PRIu64 " is not a JSON object (run mlreg audit verify)", i);
            goto done;
        }
        subj = json_object_get(entry, "subject");
        t = json_string_value(json_object_get(entry, "time"));
        if (model && (!json_string_value(json_object_get(subj, "model")) ||
                      strcmp(json_string_value(json_object_get(subj, "model")), model)))
            continue;
        if (since) {
            int64_t sec;
            int32_t nsec;
            if (!t || mlreg_time_parse(&sec, &nsec, t) < 0) {
                mlreg_error_clear();
            } else if (sec < since_sec || (sec == since_sec && nsec < since_nsec)) {
                continue;
            }
        }
        ov = override_kind(entry);
        if (overrides && !ov) continue;
        if (as_json) {
            if (json_array_append(out, entry) < 0) goto nomem;
            continue;
        }
        action = json_string_value(json_object_get(entry, "action"));
        if (!all && action && !strcmp(action, MLREG_AUDIT_BLOB_LINK)) {
            hidden++;
            continue;
        }
        format_subject(subject, sizeof(subject), subj);
        reason = json_string_value(json_object_get(entry, "reason"));
        if (reason == NULL && ov) /* an approval of an override: its own reason */
            reason =
                json_string_value(json_object_get(json_object_get(entry, "details"), "reason"));
        snprintf(seq, sizeof(seq), "%" PRIu64, i);
        /* the flag is in the RESULT column, so that no listing hides it */
        snprintf(result, sizeof(result), "%s%s",
                 mlreg_text_printable(json_string_value(json_object_get(entry, "result"))),
                 ov ? "+override" : "");
        approvers[0] = '\0';
        who = json_object_get(json_object_get(entry, "details"), "override_approvers");
        for (size_t k = 0; ov == 2 && k < json_array_size(who); k++) {
            size_t off = strlen(approvers);
            snprintf(approvers + off, sizeof(approvers) - off, "%s%s",
                     k ? ", " : " [override approved by ",
                     mlreg_text_printable(json_string_value(json_array_get(who, k))));
        }
        if (approvers[0] && strlen(approvers) + 2 <= sizeof(approvers)) strcat(approvers, "]");
        printf(AUDIT_LOG_ROW, seq, mlreg_text_printable(t),
               mlreg_text_printable(json_string_value(json_object_get(entry, "actor"))),
               mlreg_text_printable(action), subject, result, reason ? "  " : "",
               reason ? mlreg_text_printable(reason) : "");
        if (approvers[0]) printf("%-6s%s\n", "", approvers);
    }
    if (hidden > 0)
        printf("%" PRIu64 " " MLREG_AUDIT_BLOB_LINK " row%s hidden; --all shows %s\n", hidden,
               hidden == 1 ? "" : "s", hidden == 1 ? "it" : "them");
    if (as_json) {
        if (!(text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) goto nomem;
        cli_print_json(text, strlen(text));
    }
    error = cli_flush_stdout();
    goto done;
nomem:
    error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
done:
    free(text);
    json_decref(entry);
    json_decref(out);
    mlreg_audit_entries_clear(&e);
    cli_client_free(c);
    return error < 0 ? cli_fail("audit log", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg audit log: %s\n%s", mlreg_error_last(), audit_usage);
    return CLI_EXIT_USAGE;
}

/* ---- audit verify ------------------------------------------------------------------------- */

/* The log key from --log-key (a local file: missing is exit 2). */
static int load_log_key(mlreg_pubkey *out, const char *path)
{
    int error = mlreg_pubkey_load(out, path);
    if (error == MLREG_ENOTFOUND || error == MLREG_EINVALID)
        return cli_error_wrap(MLREG_EIO, "--log-key %s", path);
    return error;
}

static int verify_bundle(const char *dir, const char *key_path)
{
    int error = 0;
    mlreg_pubkey pk;
    char path[PATH_MAX], id[MLREG_KEYID_HEXLEN + 1], root[64];
    mlreg_bundle_report rep;

    if (key_path) {
        if ((error = load_log_key(&pk, key_path)) < 0) goto done;
    } else {
        if ((error = cli_path_join(path, sizeof(path), dir, MLREG_BUNDLE_LOG_KEY)) < 0) goto done;
        if ((error = mlreg_pubkey_load(&pk, path)) < 0) {
            if (error == MLREG_ENOTFOUND || error == MLREG_EINVALID)
                error = cli_error_wrap(MLREG_EMISMATCH, "the bundle's log key");
            goto done;
        }
        mlreg_keyid_format(id, &pk.id);
        fprintf(stderr,
                "mlreg audit verify: trusting the log key in the bundle (%s, %s); pass "
                "--log-key to pin it\n",
                path, id);
    }
    if ((error = mlreg_audit_verify_bundle(&rep, dir, &pk)) < 0) goto done;
    hash_base64(root, &rep.cp.root);
    printf("bundle %s verified: manifest.json %s, %zu SHA256SUMS line%s, %zu audit entr%s in the "
           "signed log of %" PRIu64 " entries (root %s, checkpoint signed by %s), "
           "%zu attestation%s\n",
           dir, rep.digest, rep.sums, rep.sums == 1 ? "" : "s", rep.entries,
           rep.entries == 1 ? "y" : "ies", rep.cp.size, root, rep.origin, rep.attestations,
           rep.attestations == 1 ? "" : "s");
    if (rep.evaluations)
        printf("%zu evaluation%s in evaluations/: each the envelope its evaluation.attest entry "
               "names, signed by the key that entry names, about manifest.json\n",
               rep.evaluations, rep.evaluations == 1 ? "" : "s");
    if (rep.withdrawn)
        printf("the release is WITHDRAWN: audit entry %" PRIu64 " by %s at %s: %s\n",
               rep.withdrawn_seq, rep.withdrawn_by, rep.withdrawn_time, rep.withdrawn_reason);
    if (rep.overrides)
        printf("the release was PROMOTED BY OVERRIDE (break-glass, gate rules failed) %zu time%s; "
               "the last: audit entry %" PRIu64 " into %s by %s: %s\n",
               rep.overrides, rep.overrides == 1 ? "" : "s", rep.override_seq, rep.override_stage,
               rep.override_by, rep.override_reason);
    if (rep.purged)
        printf("the release is PURGED: audit entry %" PRIu64 " by %s at %s: %s; %zu of its files "
               "were deleted and are not in the bundle\n",
               rep.purged_seq, rep.purged_by, rep.purged_time, rep.purged_reason, rep.purged_files);
    error = cli_flush_stdout();
done:
    return error < 0 ? cli_fail("audit verify", error) : CLI_EXIT_OK;
}

/* cli_audit_proof_fn over the local, verified leaves (@p ctx a
 * mlreg_merkle_leaves): once every entry of the current checkpoint is
 * checked, whether the remembered tree is a prefix of it is a fact we can
 * compute, not something to ask the registry for, which could refuse to
 * answer (exit 3) instead of admitting a rewrite (exit 1). The subtrees of
 * one consistency proof are disjoint, so this hashes at most n leaves. */
static int local_consistency(mlreg_merkle_hash *proof, size_t *len_out, void *ctx, uint64_t from,
                             uint64_t to)
{
    return mlreg_merkle_prove_consistency(proof, len_out, from, to, mlreg_merkle_leaves_subtree,
                                          ctx);
}

static int audit_verify(int argc, char **argv)
{
    int error = 0, m, have_old = 0;
    const char *key_path = NULL, *remember = NULL, *bundle = NULL, *registry = NULL, *pos = NULL;
    cli_client *c = NULL;
    mlreg_pubkey pk;
    char *cp_text = NULL, *old_text = NULL, origin[MLREG_CHECKPOINT_ORIGIN_MAX + 1];
    char id[MLREG_KEYID_HEXLEN + 1], root[64];
    size_t cp_len = 0, old_len = 0;
    mlreg_checkpoint cp = {0}, old = {0};
    mlreg_merkle_hash *leaves = NULL;
    mlreg_merkle_leaves tree = {0};
    mlreg_audit_entries e;

    mlreg_audit_entries_init(&e);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(audit_usage, stdout);
            return CLI_EXIT_OK;
        }
        if ((m = cli_opt(&key_path, &i, argc, argv, "--log-key")) != 0 ||
            (m = cli_opt(&remember, &i, argc, argv, "--remember")) != 0 ||
            (m = cli_opt(&bundle, &i, argc, argv, "--bundle")) != 0 ||
            (m = cli_opt(&registry, &i, argc, argv, "--registry")) != 0) {
            if (m < 0) goto usage;
        } else if (cli_positional(&pos, argv[i]) < 0) {
            goto usage;
        } else {
            mlreg_error_set(MLREG_EINVALID, "unexpected argument '%s'", pos);
            goto usage;
        }
    }
    if (bundle && (remember || registry)) {
        mlreg_error_set(MLREG_EINVALID, "--bundle works offline: no --remember or --registry");
        goto usage;
    }
    if (bundle) return verify_bundle(bundle, key_path);

    if (key_path && (error = load_log_key(&pk, key_path)) < 0) goto done;
    if (remember) {
        error = mlreg_file_read(&old_text, &old_len, remember, MLREG_BUNDLE_CHECKPOINT_MAX);
        if (error == MLREG_ENOTFOUND) {
            mlreg_error_clear();
            error = 0;
        } else if (error < 0) {
            goto done;
        } else {
            have_old = 1;
        }
    }
    if ((error = cli_client_new(&c, registry)) < 0) goto done;
    if (!key_path) {
        if ((error = cli_audit_key_get(&pk, NULL, NULL, c)) < 0) goto done;
        mlreg_keyid_format(id, &pk.id);
        fprintf(stderr,
                "mlreg audit verify: trusting the log key the server presents (%s); pass "
                "--log-key to pin it\n",
                id);
    }
    if ((error = cli_audit_checkpoint_get(&cp_text, &cp_len, c)) < 0 ||
        (error = mlreg_audit_verify_checkpoint(&cp, origin, cp_text, cp_len, &pk)) < 0 ||
        (error = cli_audit_entries_get(&e, c, cp.size, 1)) < 0 ||
        (error = mlreg_audit_verify_log(&e, &cp, cli_audit_consistency_get, c)) < 0)
        goto done;
    if (have_old) {
        if (!(tree.leaves = leaves = calloc(e.n ? (size_t)e.n : 1, sizeof(*leaves)))) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory");
            goto done;
        }
        tree.count = e.n;
        for (uint64_t i = 0; i < e.n; i++)
            if ((error = mlreg_merkle_leaf_hash(&leaves[i], e.text[i], e.len[i])) < 0) goto done;
        if ((error = mlreg_audit_verify_remembered(&old, old_text, old_len, origin, &pk, &cp,
                                                   local_consistency, &tree)) < 0) {
            if (error == MLREG_EINVALID)
                error = cli_error_wrap(MLREG_EIO, "--remember %s", remember);
            goto done;
        }
    }
    if (remember && (error = cli_file_write_atomic(remember, cp_text, cp_len)) < 0) goto done;
    if (remember && !have_old)
        fprintf(stderr, "mlreg audit verify: remembered the checkpoint of size %" PRIu64 " in %s\n",
                cp.size, remember);
    hash_base64(root, &cp.root);
    printf("audit log verified: %" PRIu64 " entries, root %s, checkpoint signed by %s", cp.size,
           root, origin);
    if (have_old) printf("; consistent with the remembered checkpoint of size %" PRIu64, old.size);
    printf("\n");
    error = cli_flush_stdout();
done:
    free(leaves);
    mlreg_audit_entries_clear(&e);
    free(cp_text);
    free(old_text);
    cli_client_free(c);
    return error < 0 ? cli_fail("audit verify", error) : CLI_EXIT_OK;
usage:
    fprintf(stderr, "mlreg audit verify: %s\n%s", mlreg_error_last(), audit_usage);
    return CLI_EXIT_USAGE;
}

int cmd_audit(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "mlreg audit: missing subcommand (log or verify)\n%s", audit_usage);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(audit_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "log")) return audit_log(argc - 1, argv + 1);
    if (!strcmp(argv[1], "verify")) return audit_verify(argc - 1, argv + 1);
    fprintf(stderr, "mlreg audit: unknown subcommand '%s'\n%s", argv[1], audit_usage);
    return CLI_EXIT_USAGE;
}
