/* stages.c: stage pointers and their history, the listings of the
 * promotion-side tables (stages, history, promotions log, approvals, image
 * bindings, attestations) and the one key layout of those tables
 * (include/mlreg/promotions.h): mlreg_promotions__key() builds every key.
 */
#include "mlreg/promotions.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/bytes.h"
#include "mlreg/common.h"
#include "mlreg/json_out.h"
#include "mlreg/keyring.h"
#include "mlreg/oci.h"
#include "mlreg/tables.h"
#include "mlreg/text.h"
#include "promotions_internal.h"
#include "registry_internal.h"

#define SEQ_HISTORY "stage_history_seq"

/* ---- keys and small helpers ------------------------------------------------ */

/* Joins the non-NULL strings of @p parts (up to 3) with NUL separators, then
 * appends @p seq as 8 big-endian bytes (after a NUL) when @p with_seq. */
size_t mlreg_promotions__key(char key[PROMOTIONS_KEY_CAP], const char *a, const char *b,
                             const char *c, int with_seq, uint64_t seq)
{
    const char *parts[3] = {a, b, c};
    size_t n = 0;

    for (size_t i = 0; i < 3 && parts[i] != NULL; i++) {
        size_t l = strlen(parts[i]);
        /* validated names bound every part (255 + 128 + 128 bytes) well under
         * PROMOTIONS_KEY_CAP; the guard only keeps the buffer safe */
        if (n + l + 10 > PROMOTIONS_KEY_CAP) break;
        if (i > 0) key[n++] = '\0';
        memcpy(key + n, parts[i], l);
        n += l;
    }
    if (with_seq) {
        key[n++] = '\0';
        mlreg_be64_put(key + n, seq);
        n += 8;
    }
    return n;
}

/* Loads a JSON value stored under @p key; ENOTFOUND (no message) when absent. */
int mlreg_promotions__get_json(json_t **out, mlreg_meta_txn *txn, mlreg_db db, const char *key,
                               size_t klen)
{
    int error = 0;
    void *val = NULL;
    size_t vlen;

    if ((error = mlreg_meta_get(&val, &vlen, txn, db, key, klen)) < 0) {
        if (error == MLREG_ENOTFOUND) mlreg_error_clear();
        return error;
    }
    *out = json_loadb(val, vlen, 0, NULL);
    free(val);
    if (*out == NULL) return mlreg_error_set(MLREG_EIO, "metadata record is corrupt");
    return 0;
}

/* Serialises @p j (not consumed) under @p key. */
int mlreg_promotions__put_json(mlreg_meta_txn *txn, mlreg_db db, const char *key, size_t klen,
                               const json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    int error;

    if (text == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory serialising a record");
    error = mlreg_meta_put(txn, db, key, klen, text, strlen(text), 0);
    free(text);
    return error;
}

int mlreg_promotions__check_names(const mlreg_policy *policy, const char *model,
                                  const char *version, const char *stage)
{
    int error;

    if ((error = mlreg_name_validate(model)) < 0) return error;
    if (version != NULL && (error = mlreg_tag_validate(version)) < 0) return error;
    if (stage != NULL && policy != NULL && mlreg_policy_stage_index(policy, stage) < 0)
        return mlreg_error_set(MLREG_EINVALID, "unknown stage '%s'", stage);
    return 0;
}

int mlreg_promotions__check_text(const char *text, const char *what)
{
    if (text == NULL) return 0;
    if (strlen(text) > MLREG_REASON_MAX)
        return mlreg_error_set(MLREG_EINVALID, "%s is longer than %d bytes", what,
                               MLREG_REASON_MAX);
    return mlreg_text_validate(text, what);
}

/* The release record of model@version: ENOTFOUND "release m@v not found";
 * EGONE when it was purged (every change that names a release refuses it). */
int mlreg_promotions__release_get(json_t **out, mlreg_meta_txn *txn, const char *model,
                                  const char *version)
{
    int error = mlreg_registry__release_record_get(out, txn, model, version);

    if (error == MLREG_ENOTFOUND)
        return mlreg_error_set(MLREG_ENOTFOUND, "release %s@%s not found", model, version);
    if (error == 0 && (error = mlreg_registry__refuse_purged(*out)) < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return error;
}

/* The digest hex (64 chars) of a release record's "digest". */
int mlreg_promotions__record_hex(char hex[MLREG_DIGEST_HEXLEN + 1], const json_t *rec)
{
    const char *d = jstr(rec, "digest");

    if (d == NULL || strlen(d) != MLREG_DIGEST_STRLEN || strncmp(d, "sha256:", 7))
        return mlreg_error_set(MLREG_EIO, "release record has a corrupt digest");
    memcpy(hex, d + 7, MLREG_DIGEST_HEXLEN + 1);
    return 0;
}

static int history_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    history_walk *w = payload;
    json_t *e = json_loadb(val, vlen, 0, NULL);
    const char *d = jstr(e, "digest");

    (void)key;
    (void)klen;
    if (e == NULL || d == NULL) {
        json_decref(e);
        return mlreg_error_set(MLREG_EIO, "stage history entry is corrupt");
    }
    if (w->digest != NULL && !strcmp(d, w->digest)) w->found = 1;
    if (w->at_ns >= 0 && json_integer_value(json_object_get(e, "time_ns")) > w->at_ns) {
        json_decref(e);
        return 1; /* entries are in time order: the rest is later still */
    }
    json_decref(w->last);
    w->last = e;
    return 0;
}

/* Walks the history of model/stage; see history_walk. */
int mlreg_promotions__walk_history(history_walk *w, mlreg_meta_txn *txn, const char *model,
                                   const char *stage)
{
    char prefix[PROMOTIONS_KEY_CAP];
    size_t plen = mlreg_promotions__key(prefix, model, stage, "", 0, 0);
    int error = mlreg_meta_iter(txn, MLREG_DB_STAGE_HISTORY, prefix, plen, NULL, 0, history_cb, w);

    return error < 0 ? error : 0;
}

static int last_promotion_cb(const void *key, size_t klen, const void *val, size_t vlen,
                             void *payload)
{
    int64_t *out = payload;
    json_t *e = json_loadb(val, vlen, 0, NULL), *t = json_object_get(e, "time_ns");
    const char *action = jstr(e, "action");

    (void)key;
    (void)klen;
    if (e == NULL || action == NULL || !json_is_integer(t)) {
        json_decref(e);
        return mlreg_error_set(MLREG_EIO, "stage history entry is corrupt");
    }
    if (!strcmp(action, "promote")) *out = (int64_t)json_integer_value(t);
    json_decref(e);
    return 0;
}

/* The last promotion into model/stage: entries are in time order. */
int mlreg_promotions__last_promotion_ns(int64_t *out, mlreg_meta_txn *txn, const char *model,
                                        const char *stage)
{
    char prefix[PROMOTIONS_KEY_CAP];
    size_t plen = mlreg_promotions__key(prefix, model, stage, "", 0, 0);
    int error;

    *out = 0;
    error =
        mlreg_meta_iter(txn, MLREG_DB_STAGE_HISTORY, prefix, plen, NULL, 0, last_promotion_cb, out);
    return error < 0 ? error : 0;
}

/* ---- stage pointers ------------------------------------------------------------ */

/* Moves model/stage to release @p cand and appends the history entry. */
int mlreg_promotions__move_pointer(mlreg_meta_txn *txn, const char *model, const char *stage,
                                   const char *action, const json_t *cand, const json_t *from,
                                   const char *reason, const char *actor, int64_t now,
                                   uint64_t pseq, const json_t *extra)
{
    int error = 0;
    uint64_t hseq;
    char key[PROMOTIONS_KEY_CAP], when[MLREG_TIME_STRLEN];
    json_t *ptr = NULL, *entry = NULL;

    mlreg_time_format(when, now);
    if ((error = mlreg_meta_counter_next(&hseq, txn, SEQ_HISTORY)) < 0) goto done;
    ptr = json_pack("{s:O, s:O, s:s, s:I, s:s, s:I}", "version", json_object_get(cand, "version"),
                    "digest", json_object_get(cand, "digest"), "since", when, "since_ns",
                    (json_int_t)now, "by", actor, "seq", (json_int_t)hseq);
    entry = json_pack("{s:s, s:I, s:s, s:O, s:O, s:O?, s:O?, s:s, s:s?, s:I}", "time", when,
                      "time_ns", (json_int_t)now, "action", action, "version",
                      json_object_get(cand, "version"), "digest", json_object_get(cand, "digest"),
                      "previous_version", from ? json_object_get(from, "version") : NULL,
                      "previous_digest", from ? json_object_get(from, "digest") : NULL, "actor",
                      actor, "reason", reason, "promotion_seq", (json_int_t)pseq);
    if (ptr == NULL || entry == NULL ||
        (extra != NULL && json_object_update(entry, (json_t *)extra) < 0)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory moving a stage");
        goto done;
    }
    if ((error = mlreg_promotions__put_json(txn, MLREG_DB_STAGES, key,
                                            mlreg_promotions__key(key, model, stage, NULL, 0, 0),
                                            ptr)) < 0)
        goto done;
    error =
        mlreg_promotions__put_json(txn, MLREG_DB_STAGE_HISTORY, key,
                                   mlreg_promotions__key(key, model, stage, NULL, 1, hseq), entry);

done:
    json_decref(ptr);
    json_decref(entry);
    return error;
}

/* The stage pointer of model/stage, or *out = NULL when the stage is empty. */
int mlreg_promotions__pointer_get(json_t **out, mlreg_meta_txn *txn, const char *model,
                                  const char *stage)
{
    char key[PROMOTIONS_KEY_CAP];
    int error = mlreg_promotions__get_json(out, txn, MLREG_DB_STAGES, key,
                                           mlreg_promotions__key(key, model, stage, NULL, 0, 0));

    if (error == MLREG_ENOTFOUND) {
        *out = NULL;
        return 0;
    }
    return error;
}

/* Every stage pointer or history entry of one model, with its stage name
 * taken from the key (the entries do not repeat it). */
typedef struct {
    size_t skip; /* bytes of "model\0" before the stage */
    mlreg_promotions__stage_cb cb;
    void *payload;
} stage_walk;

static int stage_walk_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    stage_walk *w = payload;
    const char *stage = (const char *)key + w->skip, *end;
    char name[PROMOTIONS_KEY_CAP];
    size_t slen;
    json_t *rec;
    int error;

    if (klen <= w->skip) return mlreg_error_set(MLREG_EIO, "stage record key is corrupt");
    end = memchr(stage, '\0', klen - w->skip);
    slen = end ? (size_t)(end - stage) : klen - w->skip;
    if (slen == 0 || slen >= sizeof(name))
        return mlreg_error_set(MLREG_EIO, "stage record key is corrupt");
    memcpy(name, stage, slen);
    name[slen] = '\0';
    if ((rec = json_loadb(val, vlen, 0, NULL)) == NULL || jstr(rec, "digest") == NULL) {
        json_decref(rec);
        return mlreg_error_set(MLREG_EIO, "stage record of %s is corrupt", name);
    }
    error = w->cb(name, rec, w->payload);
    json_decref(rec);
    return error;
}

int mlreg_promotions__stages_foreach(mlreg_meta_txn *txn, const char *model, int history,
                                     mlreg_promotions__stage_cb cb, void *payload)
{
    char prefix[PROMOTIONS_KEY_CAP];
    stage_walk w;
    int error;

    w.skip = mlreg_promotions__key(prefix, model, "", NULL, 0, 0);
    w.cb = cb;
    w.payload = payload;
    error = mlreg_meta_iter(txn, history ? MLREG_DB_STAGE_HISTORY : MLREG_DB_STAGES, prefix, w.skip,
                            NULL, 0, stage_walk_cb, &w);
    return error < 0 ? error : 0;
}

/* ---- listings ------------------------------------------------------------------ */

typedef struct {
    json_t *list;
    json_t *(*view)(const json_t *rec);
} list_walk;

static int list_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    list_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL), *v;

    (void)key;
    (void)klen;
    if (rec == NULL) return mlreg_error_set(MLREG_EIO, "metadata record is corrupt");
    v = w->view ? w->view(rec) : json_incref(rec);
    json_decref(rec);
    if (v == NULL || json_array_append_new(w->list, v) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing");
    return 0;
}

/* Lists the records under @p prefix of @p db as {field: [view(rec)...]}. */
int mlreg_promotions__list_prefix(json_t **out, mlreg_meta_txn *txn, mlreg_db db,
                                  const char *prefix, size_t plen, const char *field,
                                  json_t *(*view)(const json_t *))
{
    list_walk w = {json_array(), view};
    int error = 0;

    if (w.list == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing");
    if ((error = mlreg_meta_iter(txn, db, prefix, plen, NULL, 0, list_cb, &w)) < 0) goto done;
    error = 0;
    if ((*out = json_pack("{s:O}", field, w.list)) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing");

done:
    json_decref(w.list);
    return error;
}

/* A page of a log whose keys are prefix ‖ be64 seq (the promotions log, a
 * stage history): the records with seq >= since in seq order, at most
 * `limit` of them, ending early once the stored records reach
 * MLREG_PAGE_BYTES (a page always holds one). The cursor is the seq, never
 * an offset: records appended meanwhile get larger seqs, so a walk that
 * follows "next" sees every record exactly once, in order. */
typedef struct {
    json_t *list;
    json_t *(*view)(const json_t *rec, uint64_t seq);
    size_t plen;
    size_t limit, count;
    uint64_t bytes;
    int has_next;
    uint64_t next; /* seq of the first record not in the page */
} page_walk;

static int page_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    page_walk *w = payload;
    const unsigned char *k = key;
    uint64_t seq = 0;
    json_t *rec, *v;

    if (klen != w->plen + 8) return mlreg_error_set(MLREG_EIO, "metadata record key is corrupt");
    seq = mlreg_be64_get(k + w->plen);
    if (w->count >= w->limit || w->bytes >= MLREG_PAGE_BYTES) {
        w->has_next = 1;
        w->next = seq;
        return 1;
    }
    if ((rec = json_loadb(val, vlen, 0, NULL)) == NULL)
        return mlreg_error_set(MLREG_EIO, "metadata record %llu is corrupt",
                               (unsigned long long)seq);
    v = w->view(rec, seq);
    json_decref(rec);
    if (v == NULL || json_array_append_new(w->list, v) < 0)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing");
    w->count++;
    w->bytes += vlen;
    return 0;
}

/* *out = {field: [view(rec, seq)...], "next": seq|null}; see page_walk.
 * @p limit 0 is MLREG_PAGE_LIMIT_DEFAULT, more than MLREG_PAGE_LIMIT_MAX
 * is that. @p what names the log in messages. */
int mlreg_promotions__list_page(json_t **out, mlreg_meta_txn *txn, mlreg_db db, const char *prefix,
                                size_t plen, uint64_t since, size_t limit, const char *field,
                                json_t *(*view)(const json_t *, uint64_t), const char *what)
{
    page_walk w;
    char start[PROMOTIONS_KEY_CAP];
    int error = 0;

    memset(&w, 0, sizeof(w));
    if (since > INT64_MAX)
        return mlreg_error_set(MLREG_EINVALID, "%s since %llu is out of range", what,
                               (unsigned long long)since);
    if (plen + 8 > sizeof(start)) return mlreg_error_set(MLREG_EINVALID, "%s key too long", what);
    w.view = view;
    w.plen = plen;
    w.limit = limit == 0 ? MLREG_PAGE_LIMIT_DEFAULT
                         : (limit > MLREG_PAGE_LIMIT_MAX ? MLREG_PAGE_LIMIT_MAX : limit);
    if ((w.list = json_array()) == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    memcpy(start, prefix, plen);
    mlreg_be64_put(start + plen, since);
    if ((error = mlreg_meta_iter(txn, db, prefix, plen, start, plen + 8, page_cb, &w)) < 0)
        goto done;
    error = 0;
    if ((*out = json_pack("{s:O, s:o}", field, w.list, "next",
                          w.has_next ? json_integer((json_int_t)w.next) : json_null())) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing %s", what);

done:
    json_decref(w.list);
    return error;
}

/* Opens a read txn and finds the release digest hex of model@version. */
int mlreg_promotions__release_hex_read(char hex[MLREG_DIGEST_HEXLEN + 1], mlreg_meta_txn **txn_out,
                                       mlreg_registry *reg, const char *model, const char *version)
{
    int error;
    json_t *rel = NULL;

    if ((error = mlreg_promotions__check_names(NULL, model, version, NULL)) < 0) return error;
    if ((error = mlreg_meta_txn_begin(txn_out, mlreg_registry_meta(reg), 0)) < 0) return error;
    /* the listings it serves (approvals, attestations, images) stay
     * readable for a purged release: they are its audit trail */
    error = mlreg_registry__release_record_get(&rel, *txn_out, model, version);
    if (error == MLREG_ENOTFOUND)
        error = mlreg_error_set(MLREG_ENOTFOUND, "release %s@%s not found", model, version);
    if (error < 0) goto done;
    error = mlreg_promotions__record_hex(hex, rel);

done:
    json_decref(rel);
    return error;
}

/* ---- stages ------------------------------------------------------------------------ */

/* {"model","stage","version","digest","since","by","image","withdrawn"}
 * from a pointer or history entry (@p e; NULL for an empty stage: nulls).
 * "withdrawn" is the release record's (withdraw.c), or null. "image" is
 * the release's latest binding, or with @p at_ns >= 0 (an answer about a
 * past time) the latest one recorded by then: a binding made later did not
 * decide what was deployed at that time. */
static int stage_view(json_t **out, mlreg_meta_txn *txn, const char *model, const char *stage,
                      const json_t *e, int is_history, int64_t at_ns)
{
    json_t *img = NULL, *rel = NULL, *w;
    const char *v = jstr(e, "version");
    int error;

    if (e == NULL) {
        *out = json_pack("{s:s, s:s, s:n, s:n, s:n, s:n, s:n, s:n}", "model", model, "stage", stage,
                         "version", "digest", "since", "by", "image", "withdrawn");
    } else {
        if ((error = mlreg_promotions__image_of(&img, txn, jstr(e, "digest"), at_ns)) < 0)
            return error;
        if (v != NULL && (error = mlreg_registry__release_record_get(&rel, txn, model, v)) < 0 &&
            error != MLREG_ENOTFOUND) {
            json_decref(img);
            return error;
        }
        w = json_object_get(rel, "withdrawn");
        *out = json_pack("{s:s, s:s, s:O, s:O, s:O, s:O, s:o, s:O}", "model", model, "stage", stage,
                         "version", json_object_get(e, "version"), "digest",
                         json_object_get(e, "digest"), "since",
                         json_object_get(e, is_history ? "time" : "since"), "by",
                         json_object_get(e, is_history ? "actor" : "by"), "image", img, "withdrawn",
                         w ? w : json_null());
        json_decref(rel);
    }
    if (*out == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");
    return 0;
}

int mlreg_stages_list(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                      const char *model)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *list = json_array(), *ptr = NULL, *v = NULL;
    const char *const *stages = mlreg_policy_stages(policy);
    const mlreg_rule *rules = NULL;
    size_t nrules = 0;

    if (list == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");
    if ((error = mlreg_promotions__check_names(NULL, model, NULL, NULL)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    for (size_t i = 0; i < mlreg_policy_stage_count(policy); i++) {
        if ((error = mlreg_promotions__pointer_get(&ptr, txn, model, stages[i])) < 0) goto done;
        if ((error = stage_view(&v, txn, model, stages[i], ptr, 0, -1)) < 0) goto done;
        json_object_del(v, "model");
        json_decref(ptr);
        ptr = NULL;
        if ((error = mlreg_policy_rules(&rules, &nrules, policy, model, stages[i])) < 0 ||
            json_object_set_new(v, "gates", mlreg_rules_json(rules, nrules)) < 0) {
            json_decref(v);
            if (error == 0) error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");
            goto done;
        }
        if (json_array_append_new(list, v) < 0) {
            error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");
            goto done;
        }
    }
    if ((*out = json_pack("{s:s, s:O}", "model", model, "stages", list)) == NULL)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");

done:
    mlreg_meta_txn_abort(txn);
    json_decref(ptr);
    json_decref(list);
    return error;
}

static int stage_get_once(json_t **out, uint64_t *gen_out, mlreg_registry *reg,
                          const mlreg_policy *policy, const char *model, const char *stage,
                          int64_t at_ns);

/* stage_get_once(), again after catching up with the shared log when the
 * stage was empty: promoted through another node a moment ago? */
static int stage_get_fresh(json_t **out, uint64_t *gen_out, mlreg_registry *reg,
                           const mlreg_policy *policy, const char *model, const char *stage,
                           int64_t at_ns)
{
    int error = stage_get_once(out, gen_out, reg, policy, model, stage, at_ns);
    mlreg_cluster *cl = mlreg_registry__cluster(reg);

    if (error == MLREG_ENOTFOUND && cl != NULL && mlreg_cluster__refresh(cl, 0) > 0)
        error = stage_get_once(out, gen_out, reg, policy, model, stage, at_ns);
    return error;
}

int mlreg_stage_get(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                    const char *model, const char *stage, int64_t at_ns)
{
    uint64_t gen;

    return stage_get_fresh(out, &gen, reg, policy, model, stage, at_ns);
}

/* ---- the rendered answers of mlreg_stage_get_text() --------------------------
 * STAGE_CACHE_SLOTS answers, each in the slot its model and stage hash to
 * (a collision replaces the older), each valid for the metadata generation
 * it was read at. One lock: a lookup holds it for a compare and a copy of a
 * few hundred bytes. */
#define STAGE_CACHE_SLOTS 64
#define STAGE_KEY_MAX     400 /* a model name (255 bytes at most), a stage (a tag: 128) */

typedef struct {
    char key[STAGE_KEY_MAX]; /* model NUL stage; key[0] == 0: empty */
    size_t klen;
    uint64_t gen;
    char *text;
    size_t len;
} stage_slot;

struct mlreg_stage_cache {
    pthread_mutex_t lock;
    stage_slot slots[STAGE_CACHE_SLOTS];
};

int mlreg_registry__stage_cache_new(mlreg_stage_cache **out)
{
    mlreg_stage_cache *c = calloc(1, sizeof(*c));

    if (c == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

void mlreg_registry__stage_cache_free(mlreg_stage_cache *c)
{
    if (c == NULL) return;
    for (size_t i = 0; i < STAGE_CACHE_SLOTS; i++)
        free(c->slots[i].text);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The key of @p model's @p stage in @p key (model NUL stage); its length,
 * or 0 when the names are too long to be kept (they are refused before). */
static size_t stage_key(char key[STAGE_KEY_MAX], const char *model, const char *stage)
{
    size_t m = strlen(model), n = strlen(stage);

    if (m + n + 2 > STAGE_KEY_MAX) return 0;
    memcpy(key, model, m + 1);
    memcpy(key + m + 1, stage, n + 1);
    return m + n + 2;
}

static stage_slot *stage_slot_of(mlreg_stage_cache *c, const char *key, size_t klen)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */

    for (size_t i = 0; i < klen; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    return &c->slots[h % STAGE_CACHE_SLOTS];
}

/* A copy of the answer kept for @p key at generation @p gen: 1, 0 (none),
 * or MLREG_ENOMEM. */
static int stage_cache_get(char **text_out, size_t *len_out, mlreg_stage_cache *c, const char *key,
                           size_t klen, uint64_t gen)
{
    stage_slot *sl = stage_slot_of(c, key, klen);
    int found = 0;

    pthread_mutex_lock(&c->lock);
    if (sl->text != NULL && sl->gen == gen && sl->klen == klen && !memcmp(sl->key, key, klen)) {
        if ((*text_out = malloc(sl->len + 1)) != NULL) {
            memcpy(*text_out, sl->text, sl->len + 1);
            *len_out = sl->len;
            found = 1;
        } else {
            found = mlreg_error_set(MLREG_ENOMEM, "out of memory");
        }
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

/* Keeps a copy of @p text for @p key at @p gen, unless the slot holds a
 * newer answer; out of memory keeps nothing. */
static void stage_cache_put(mlreg_stage_cache *c, const char *key, size_t klen, uint64_t gen,
                            const char *text, size_t len)
{
    stage_slot *sl = stage_slot_of(c, key, klen);
    char *copy = malloc(len + 1);

    if (copy == NULL) return;
    memcpy(copy, text, len + 1);
    pthread_mutex_lock(&c->lock);
    if (sl->text != NULL && sl->gen > gen) {
        pthread_mutex_unlock(&c->lock);
        free(copy);
        return;
    }
    free(sl->text);
    memcpy(sl->key, key, klen);
    sl->klen = klen;
    sl->gen = gen;
    sl->text = copy;
    sl->len = len;
    pthread_mutex_unlock(&c->lock);
}

int mlreg_stage_get_text(char **text_out, size_t *len_out, mlreg_registry *reg,
                         const mlreg_policy *policy, const char *model, const char *stage)
{
    mlreg_stage_cache *c = mlreg_registry__stage_cache(reg);
    char key[STAGE_KEY_MAX];
    size_t klen;
    uint64_t gen;
    json_t *j = NULL;
    int error;

    *text_out = NULL;
    *len_out = 0;
    /* the names against the policy in force (a reload may drop a stage) */
    if ((error = mlreg_promotions__check_names(policy, model, NULL, stage)) < 0) return error;
    klen = stage_key(key, model, stage);
    gen = mlreg_meta_generation(mlreg_registry_meta(reg));
    if (klen > 0 && gen > 0 && (error = stage_cache_get(text_out, len_out, c, key, klen, gen)) != 0)
        return error < 0 ? error : 0;
    if ((error = stage_get_fresh(&j, &gen, reg, policy, model, stage, -1)) < 0) return error;
    *text_out = mlreg_json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (*text_out == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory");
    *len_out = strlen(*text_out);
    if (klen > 0 && gen > 0) stage_cache_put(c, key, klen, gen, *text_out, *len_out);
    return 0;
}

static int stage_get_once(json_t **out, uint64_t *gen_out, mlreg_registry *reg,
                          const mlreg_policy *policy, const char *model, const char *stage,
                          int64_t at_ns)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *ptr = NULL;
    history_walk hw;
    char when[MLREG_TIME_STRLEN];

    memset(&hw, 0, sizeof(hw));
    if ((error = mlreg_promotions__check_names(policy, model, NULL, stage)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    *gen_out = mlreg_meta_txn_generation(txn);
    if (at_ns < 0) {
        if ((error = mlreg_promotions__pointer_get(&ptr, txn, model, stage)) < 0) goto done;
        if (ptr == NULL) {
            error = mlreg_error_set(MLREG_ENOTFOUND, "stage %s of %s is empty", stage, model);
            goto done;
        }
        error = stage_view(out, txn, model, stage, ptr, 0, -1);
        goto done;
    }
    hw.at_ns = at_ns;
    if ((error = mlreg_promotions__walk_history(&hw, txn, model, stage)) < 0) goto done;
    if (hw.last == NULL) {
        mlreg_time_format(when, at_ns);
        error =
            mlreg_error_set(MLREG_ENOTFOUND, "stage %s of %s was empty at %s", stage, model, when);
        goto done;
    }
    error = stage_view(out, txn, model, stage, hw.last, 1, at_ns);

done:
    mlreg_meta_txn_abort(txn);
    json_decref(hw.last);
    json_decref(ptr);
    return error;
}

int mlreg_stage_digest(mlreg_digest *out, mlreg_registry *reg, const mlreg_policy *policy,
                       const char *model, const char *stage)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    json_t *ptr = NULL;
    const char *d;

    if ((error = mlreg_promotions__check_names(policy, model, NULL, stage)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    if ((error = mlreg_promotions__pointer_get(&ptr, txn, model, stage)) < 0) goto done;
    if (ptr == NULL) {
        error = mlreg_error_set(MLREG_ENOTFOUND, "stage %s of %s is empty", stage, model);
        goto done;
    }
    d = jstr(ptr, "digest");
    if (d == NULL || mlreg_digest_parse(out, d) < 0)
        error = mlreg_error_set(MLREG_EIO, "stage pointer %s:%s is corrupt", model, stage);

done:
    mlreg_meta_txn_abort(txn);
    json_decref(ptr);
    return error;
}

/* A history entry as listed; "seq" (the key's sequence number) is the
 * cursor a client pages with. */
/* Adds "override" (false unless the record says true) to view @p v, and the
 * reason and approvers of a break-glass move; NULL (v freed) when out of memory. */
static json_t *with_override(json_t *v, const json_t *rec)
{
    static const char *const members[] = {"override_reason", "override_approvers"};
    int ov = json_is_true(json_object_get(rec, "override"));

    if (v == NULL) return NULL;
    if (json_object_set_new(v, "override", json_boolean(ov)) < 0) goto fail;
    for (size_t i = 0; ov && i < sizeof(members) / sizeof(members[0]); i++) {
        json_t *m = json_object_get(rec, members[i]);
        if (json_object_set(v, members[i], m ? m : json_null()) < 0) goto fail;
    }
    return v;

fail:
    json_decref(v);
    return NULL;
}

static json_t *history_view(const json_t *e, uint64_t seq)
{
    return with_override(
        json_pack("{s:I, s:O, s:O, s:O, s:O, s:O?, s:O, s:O?}", "seq", (json_int_t)seq, "time",
                  json_object_get(e, "time"), "action", json_object_get(e, "action"), "version",
                  json_object_get(e, "version"), "digest", json_object_get(e, "digest"),
                  "previous_version", json_object_get(e, "previous_version"), "actor",
                  json_object_get(e, "actor"), "reason", json_object_get(e, "reason")),
        e);
}

int mlreg_stage_history(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                        const char *model, const char *stage, uint64_t since, size_t limit)
{
    int error;
    mlreg_meta_txn *txn = NULL;
    char prefix[PROMOTIONS_KEY_CAP];

    if ((error = mlreg_promotions__check_names(policy, model, NULL, stage)) < 0) return error;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) return error;
    error = mlreg_promotions__list_page(out, txn, MLREG_DB_STAGE_HISTORY, prefix,
                                        mlreg_promotions__key(prefix, model, stage, "", 0, 0),
                                        since, limit, "history", history_view, "stage history");
    mlreg_meta_txn_abort(txn);
    return error;
}

/* A promotions-log record as listed: its "seq" is the key's. */
static json_t *promotion_view(const json_t *rec, uint64_t seq)
{
    json_t *v = json_deep_copy(rec);

    (void)seq;
    if (v == NULL) return NULL;
    json_object_del(v, "time_ns");
    json_object_del(v, "baseline");
    return with_override(v, rec);
}

int mlreg_promotions_list(json_t **out, mlreg_registry *reg, const char *model, uint64_t since,
                          size_t limit)
{
    int error;
    mlreg_meta_txn *txn = NULL;
    char prefix[PROMOTIONS_KEY_CAP];

    if ((error = mlreg_promotions__check_names(NULL, model, NULL, NULL)) < 0) return error;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) return error;
    error = mlreg_promotions__list_page(out, txn, MLREG_DB_PROMOTIONS, prefix,
                                        mlreg_promotions__key(prefix, model, "", NULL, 0, 0), since,
                                        limit, "promotions", promotion_view, "promotions");
    mlreg_meta_txn_abort(txn);
    return error;
}
