/* images.c: container image bindings of releases (include/mlreg/promotions.h). */
#include "mlreg/promotions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlreg/audit.h"
#include "mlreg/auth.h"
#include "mlreg/common.h"
#include "mlreg/keyring.h"
#include "mlreg/oci.h"
#include "mlreg/tables.h"
#include "promotions_internal.h"
#include "registry_internal.h"

#define SEQ_IMAGE "image_seq"

/* "REPO:TAG": REPO lowercase [a-z0-9._/:-] without "//" (a registry host
 * may carry a port), TAG the OCI tag grammar after the last ':' that
 * follows the last '/'. */
static int image_validate(const char *image)
{
    const char *slash, *colon;
    size_t n = strlen(image);

    if (n == 0 || n > MLREG_IMAGE_REF_MAX)
        return mlreg_error_set(MLREG_EINVALID, "image reference must be 1 to %d bytes",
                               MLREG_IMAGE_REF_MAX);
    slash = strrchr(image, '/');
    colon = strrchr(slash ? slash : image, ':');
    if (colon == NULL || colon == image || (slash && colon <= slash))
        return mlreg_error_set(MLREG_EINVALID, "image reference '%.*s' is not REPO:TAG",
                               MLREG_IMAGE_REF_MAX, image);
    for (const char *p = image; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._/:-", *p)))
            return mlreg_error_set(MLREG_EINVALID,
                                   "image repository in '%.*s' must be lowercase [a-z0-9._/:-]",
                                   MLREG_IMAGE_REF_MAX, image);
    if (strstr(image, "//") != NULL || image[0] == '/' || colon[-1] == '/')
        return mlreg_error_set(MLREG_EINVALID, "image repository in '%.*s' has an empty path part",
                               MLREG_IMAGE_REF_MAX, image);
    if (mlreg_tag_validate(colon + 1) < 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "image tag '%s' is not in the OCI tag grammar "
                               "([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127})",
                               colon + 1);
    return 0;
}

static json_t *image_view(const json_t *rec)
{
    return json_pack("{s:O, s:O, s:O, s:O}", "image", json_object_get(rec, "image"), "digest",
                     json_object_get(rec, "digest"), "time", json_object_get(rec, "time"), "actor",
                     json_object_get(rec, "actor"));
}

typedef struct {
    const char *image;
    const char *digest;
    json_t *match; /* an identical binding, when one exists */
    json_t *last;  /* the most recent binding: the current one */
    int64_t at_ns; /* < 0: every binding; else only those recorded at or before it */
} image_walk;

static int image_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    image_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    const char *img = jstr(rec, "image"), *d = jstr(rec, "digest");

    (void)key;
    (void)klen;
    if (rec == NULL || img == NULL) {
        json_decref(rec);
        return mlreg_error_set(MLREG_EIO, "image binding is corrupt");
    }
    /* bindings are in seq order, which is the order of their mutation
     * times; a later one is skipped rather than ending the walk, so a clock
     * step back on some node cannot hide an earlier binding */
    if (w->at_ns >= 0 && json_integer_value(json_object_get(rec, "time_ns")) > w->at_ns) {
        json_decref(rec);
        return 0;
    }
    if (w->image != NULL && w->match == NULL && !strcmp(img, w->image) &&
        ((d == NULL && w->digest == NULL) || (d && w->digest && !strcmp(d, w->digest))))
        w->match = json_incref(rec);
    json_decref(w->last);
    w->last = rec;
    return 0;
}

static int walk_images(image_walk *w, mlreg_meta_txn *txn, const char *hex)
{
    char prefix[MLREG_DIGEST_HEXLEN + 1];
    int error;

    memcpy(prefix, hex, MLREG_DIGEST_HEXLEN);
    prefix[MLREG_DIGEST_HEXLEN] = '\0';
    error = mlreg_meta_iter(txn, MLREG_DB_IMAGES, prefix, sizeof(prefix), NULL, 0, image_cb, w);
    return error < 0 ? error : 0;
}

/* 1 when binding record @p rec binds exactly @p image and @p digest (NULL:
 * none). */
static int same_binding(const json_t *rec, const char *image, const char *digest)
{
    const char *img = jstr(rec, "image"), *d = jstr(rec, "digest");

    return img != NULL && !strcmp(img, image) &&
           ((d == NULL && digest == NULL) || (d && digest && !strcmp(d, digest)));
}

/* The stages a release holds now or has held, from the stage pointers and
 * the stage history of its model. */
typedef struct {
    const char *digest; /* "sha256:..." of the release */
    size_t skip;        /* bytes of "model\0" before the stage in a key */
    json_t *stages;     /* distinct stage names, in the order first seen */
} held_walk;

static int held_cb(const void *key, size_t klen, const void *val, size_t vlen, void *payload)
{
    held_walk *w = payload;
    json_t *rec = json_loadb(val, vlen, 0, NULL), *s;
    const char *d = jstr(rec, "digest"), *stage = (const char *)key + w->skip, *end;
    size_t i, slen;
    int error = 0, seen = 0;

    if (rec == NULL || d == NULL || klen <= w->skip) {
        error = mlreg_error_set(MLREG_EIO, "stage record is corrupt");
        goto done;
    }
    if (strcmp(d, w->digest)) goto done;
    end = memchr(stage, '\0', klen - w->skip);
    slen = end ? (size_t)(end - stage) : klen - w->skip;
    json_array_foreach(w->stages, i, s)
    {
        if (json_string_length(s) == slen && !memcmp(json_string_value(s), stage, slen)) seen = 1;
    }
    if (!seen && json_array_append_new(w->stages, json_stringn(stage, slen)) < 0)
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory reading stages");

done:
    json_decref(rec);
    return error;
}

/* *out = the names of the stages of @p model that the release with digest
 * @p digest holds now or held at some time (a JSON array, owned by the
 * caller; empty when none), as @p txn sees them. */
static int stages_held(json_t **out, mlreg_meta_txn *txn, const char *model, const char *digest)
{
    char prefix[PROMOTIONS_KEY_CAP];
    size_t plen = mlreg_promotions__key(prefix, model, "", NULL, 0, 0);
    held_walk w = {digest, plen, json_array()};
    int error = 0;

    if (w.stages == NULL) return mlreg_error_set(MLREG_ENOMEM, "out of memory reading stages");
    if ((error = mlreg_meta_iter(txn, MLREG_DB_STAGES, prefix, plen, NULL, 0, held_cb, &w)) < 0 ||
        (error = mlreg_meta_iter(txn, MLREG_DB_STAGE_HISTORY, prefix, plen, NULL, 0, held_cb, &w)) <
            0) {
        json_decref(w.stages);
        return error;
    }
    *out = w.stages;
    return 0;
}

/* Who may bind an image to a release. A stage's image is the most recent
 * binding of the release it holds, so a binding to a release that a stage
 * holds, or has held (a rollback brings it back), decides what that stage
 * deploys: it needs promote:S for every such stage S, like moving S would.
 * A release no stage has held needs push. The stages are read in the
 * binding's own write transaction, so no promotion can slip in between the
 * check and the write. */
static int bind_authorize(const mlreg_identity *who, const char *model, const char *version,
                          const json_t *held)
{
    char stages[1024] = "", roles[1024] = "";
    size_t i, n = 0, sl = 0, rl = 0;
    json_t *s;

    if (json_array_size(held) == 0) return mlreg_auth_check(who, MLREG_ROLE_PUSH, NULL, model);
    json_array_foreach(held, i, s)
    {
        const char *stage = json_string_value(s);
        if (mlreg_auth_check(who, MLREG_ROLE_PROMOTE, stage, model) == 0) continue;
        if (sl < sizeof(stages))
            sl += (size_t)snprintf(stages + sl, sizeof(stages) - sl, "%s%s", n ? ", " : "", stage);
        if (rl < sizeof(roles))
            rl += (size_t)snprintf(roles + rl, sizeof(roles) - rl, "%spromote:%s", n ? ", " : "",
                                   stage);
        n++;
    }
    if (n == 0) return 0;
    return mlreg_error_set(MLREG_EFORBIDDEN,
                           "token '%s' may not bind an image to %s@%s: the release holds or has "
                           "held stage%s %s, so binding needs role%s %s (or admin)",
                           mlreg_identity_name(who), model, version, n == 1 ? "" : "s", stages,
                           n == 1 ? "" : "s", roles);
}

/* An image binding; rec is the current binding afterwards, for the reply. */
typedef struct {
    const mlreg_identity *who; /* NULL on a replay: the entry was authorised */
    const char *actor;
    const char *model;
    const char *version;
    const char *image;
    const char *digest;
    json_t *rec;
} bind_change;

static int bind_apply(registry_mutation *mut, mlreg_meta_txn *txn, void *arg)
{
    bind_change *c = arg;
    int error = 0;
    json_t *rel = NULL, *held = NULL, *details = NULL;
    image_walk w;
    char hex[MLREG_DIGEST_HEXLEN + 1], key[PROMOTIONS_KEY_CAP], when[MLREG_TIME_STRLEN];
    char ref[MLREG_IMAGE_REF_MAX + MLREG_DIGEST_STRLEN + 2];
    const char *actor = c->actor;
    uint64_t seq;
    int64_t now = mlreg_registry__mutation_time(mut);
    mlreg_audit_event ev;

    /* the binding of a run thrown away after a lost log seq is not this one */
    json_decref(c->rec);
    c->rec = NULL;
    memset(&w, 0, sizeof(w));
    w.at_ns = -1;
    w.image = c->image;
    w.digest = c->digest;
    if ((error = mlreg_promotions__release_get(&rel, txn, c->model, c->version)) < 0) {
        /* no stage holds a release that does not exist: push decides, and a
         * caller without it does not learn whether the release exists */
        if (error == MLREG_ENOTFOUND && c->who != NULL &&
            mlreg_auth_check(c->who, MLREG_ROLE_PUSH, NULL, c->model) < 0)
            error = MLREG_EFORBIDDEN;
        goto done;
    }
    if ((error = mlreg_promotions__record_hex(hex, rel)) < 0 ||
        (error = stages_held(&held, txn, c->model, jstr(rel, "digest"))) < 0 ||
        (c->who != NULL && (error = bind_authorize(c->who, c->model, c->version, held)) < 0) ||
        (error = walk_images(&w, txn, hex)) < 0)
        goto done;
    if (w.last != NULL && same_binding(w.last, c->image, c->digest)) {
        /* the binding is current already: nothing changes */
        c->rec = json_incref(w.last);
        error = REGISTRY_MUTATE_NOOP;
        goto done;
    }
    /* a new binding, or an earlier one made current again (a re-bind: a new
     * record and its own audit entry, so the change is visible) */
    mlreg_time_format(when, now);
    if ((error = mlreg_meta_counter_next(&seq, txn, SEQ_IMAGE)) < 0) goto done;
    c->rec = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:I, s:s}", "model", c->model, "version",
                       c->version, "image", c->image, "digest", c->digest, "time", when, "time_ns",
                       (json_int_t)now, "actor", actor);
    if (c->rec == NULL ||
        (w.match != NULL && (details = json_pack("{s:b}", "rebind", 1)) == NULL)) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory binding an image");
        goto done;
    }
    if ((error = mlreg_promotions__put_json(txn, MLREG_DB_IMAGES, key,
                                            mlreg_promotions__key(key, hex, NULL, NULL, 1, seq),
                                            c->rec)) < 0)
        goto done;
    /* the image as stages show it: REPO:TAG, with @digest when bound */
    snprintf(ref, sizeof(ref), "%s%s%s", c->image, c->digest ? "@" : "",
             c->digest ? c->digest : "");
    ev = (mlreg_audit_event){.actor = actor,
                             .action = MLREG_AUDIT_IMAGE_BIND,
                             .result = MLREG_AUDIT_OK,
                             .model = c->model,
                             .version = c->version,
                             .digest = jstr(rel, "digest"),
                             .image = ref,
                             .details = details};
    error = mlreg_registry__mutation_record(NULL, mut, &ev);

done:
    json_decref(w.match);
    json_decref(w.last);
    json_decref(rel);
    json_decref(held);
    json_decref(details);
    return error;
}

int mlreg_image_bind(json_t **out, int *created_out, mlreg_registry *reg, const mlreg_identity *who,
                     const char *model, const char *version, const char *image, const char *digest)
{
    int error = 0;
    json_t *res = NULL;
    mlreg_digest d;
    char dstr[MLREG_DIGEST_STRLEN + 1];
    bind_change c = {who, mlreg_identity_name(who), model, version, image, NULL, NULL};

    if ((error = mlreg_promotions__check_names(NULL, model, version, NULL)) < 0 ||
        (error = image_validate(image)) < 0)
        goto done;
    if (digest != NULL) {
        if ((error = mlreg_digest_parse(&d, digest)) < 0) goto done;
        mlreg_digest_format(dstr, &d);
        c.digest = dstr;
    }
    if ((error = mlreg_registry__mutate(NULL, mlreg_registry_meta(reg), bind_apply, &c)) < 0)
        goto done;
    if ((res = image_view(c.rec)) == NULL) {
        error = mlreg_error_set(MLREG_ENOMEM, "out of memory answering an image binding");
        goto done;
    }
    *out = res;
    *created_out = error != REGISTRY_MUTATE_NOOP;
    error = 0;

done:
    json_decref(c.rec);
    return error;
}

int mlreg_images_list(json_t **out, mlreg_registry *reg, const char *model, const char *version)
{
    int error;
    mlreg_meta_txn *txn = NULL;
    char hex[MLREG_DIGEST_HEXLEN + 1], prefix[MLREG_DIGEST_HEXLEN + 1];

    if ((error = mlreg_promotions__release_hex_read(hex, &txn, reg, model, version)) < 0) goto done;
    memcpy(prefix, hex, sizeof(prefix));
    error = mlreg_promotions__list_prefix(out, txn, MLREG_DB_IMAGES, prefix, sizeof(prefix),
                                          "images", image_view);

done:
    mlreg_meta_txn_abort(txn);
    return error;
}

/* "REPO:TAG" or "REPO:TAG@sha256:..." of the latest binding of the release
 * with digest @p digest ("sha256:..."), or JSON null: the latest of all
 * (@p at_ns < 0) or the latest recorded at or before @p at_ns. */
int mlreg_promotions__image_of(json_t **out, mlreg_meta_txn *txn, const char *digest, int64_t at_ns)
{
    image_walk w;
    int error;
    const char *img, *d;
    char buf[MLREG_IMAGE_REF_MAX + MLREG_DIGEST_STRLEN + 2];

    memset(&w, 0, sizeof(w));
    w.at_ns = at_ns;
    if (digest == NULL || strlen(digest) != MLREG_DIGEST_STRLEN) {
        *out = json_null();
        return 0;
    }
    if ((error = walk_images(&w, txn, digest + 7)) < 0) goto done;
    if (w.last == NULL) {
        *out = json_null();
        goto done;
    }
    img = jstr(w.last, "image");
    d = jstr(w.last, "digest");
    snprintf(buf, sizeof(buf), "%s%s%s", img, d ? "@" : "", d ? d : "");
    if ((*out = json_string(buf)) == NULL) error = mlreg_error_set(MLREG_ENOMEM, "out of memory");

done:
    json_decref(w.last);
    return error;
}

int mlreg_promotions__replay_bind(mlreg_registry *reg, const json_t *entry, const char *text,
                                  size_t len)
{
    const json_t *subject = json_object_get(entry, "subject");
    /* subject.image is REPO:TAG, with @sha256:... when bound by digest */
    const char *ref = jstr(subject, "image");
    char image[MLREG_IMAGE_REF_MAX + 1];
    const char *at = ref ? strstr(ref, "@sha256:") : NULL;
    size_t ilen = ref ? (at ? (size_t)(at - ref) : strlen(ref)) : 0;
    bind_change c = {NULL,
                     jstr(entry, "actor"),
                     jstr(subject, "model"),
                     jstr(subject, "version"),
                     image,
                     at ? at + 1 : NULL,
                     NULL};
    int error;

    if (ref == NULL || ilen > MLREG_IMAGE_REF_MAX)
        return mlreg_error_set(MLREG_EINVALID, "image.bind entry names no image");
    memcpy(image, ref, ilen);
    image[ilen] = '\0';
    error =
        mlreg_registry__mutate_replay(mlreg_registry_meta(reg), entry, text, len, bind_apply, &c);
    json_decref(c.rec);
    return error;
}
