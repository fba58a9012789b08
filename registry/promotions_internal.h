/* promotions_internal.h: what promotions.c, stages.c, approvals.c,
 * images.c and attestations.c share (include/mlreg/promotions.h is the
 * module's contract). stages.c owns the key layout of the promotion-side
 * tables: every key is built by mlreg_promotions__key(). No other module includes
 * it. Functions return 0 or a negative MLREG_E* code with the message set,
 * unless said otherwise; those taking a txn run inside the caller's.
 */
#ifndef MLREG_PROMOTIONS_INTERNAL_H
#define MLREG_PROMOTIONS_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mlreg/digest.h"
#include "mlreg/gates.h"
#include "mlreg/meta.h"
#include "mlreg/promotions.h"
#include "mlreg/registry.h"
#include "registry_internal.h"

/* model (255) \0 stage (128) \0 be64, or hex (64) \0 stage \0 approver (128); LMDB keys are at most
 * 511 bytes */
#define PROMOTIONS_KEY_CAP 600

/** The string member @p key of @p obj, or NULL. */
static inline const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* ---- keys and records (stages.c) ---------------------------------------------- */

/**
 * Joins the non-NULL strings @p a, @p b, @p c with NUL separators into
 * @p key, then appends @p seq as 8 big-endian bytes (after a NUL) when
 * @p with_seq; returns the key's length.
 */
size_t mlreg_promotions__key(char key[PROMOTIONS_KEY_CAP], const char *a, const char *b,
                             const char *c, int with_seq, uint64_t seq);

/** The JSON value under @p key (*out owned by the caller); MLREG_ENOTFOUND without a message. */
int mlreg_promotions__get_json(json_t **out, mlreg_meta_txn *txn, mlreg_db db, const char *key,
                               size_t klen);

/** Stores @p j (not consumed) serialised under @p key. */
int mlreg_promotions__put_json(mlreg_meta_txn *txn, mlreg_db db, const char *key, size_t klen,
                               const json_t *j);

/** Checks the grammar of the names given (NULL ones skipped) and that @p stage is configured. */
int mlreg_promotions__check_names(const mlreg_policy *policy, const char *model,
                                  const char *version, const char *stage);

/** Writes release record @p rec of @p model@@p version back and records
 *  the change's entry @p action by @p actor with @p reason and @p details
 *  (borrowed; may be NULL): withdraw.c and purge.c. */
int mlreg_promotions__release_change_record(registry_mutation *mut, mlreg_meta_txn *txn,
                                            const char *actor, const char *reason,
                                            const char *model, const char *version,
                                            const json_t *rec, const char *action,
                                            const json_t *details);

/** The required reason of a withdrawal, its undoing or a purge: present, not
 *  blank, text, bounded (withdraw.c). 0 or MLREG_EINVALID. */
int mlreg_promotions__reason_check(const char *reason);

/** Checks an optional free text (reason, comment): length and characters. */
int mlreg_promotions__check_text(const char *text, const char *what);

/** The release record of @p model@@p version (*out owned by the caller);
 *  MLREG_ENOTFOUND, or MLREG_EGONE when it was purged. */
int mlreg_promotions__release_get(json_t **out, mlreg_meta_txn *txn, const char *model,
                                  const char *version);

/** The configured stages of @p model whose pointer names @p digest now, as a
 *  JSON array of names (*out owned by the caller); withdraw.c. */
int mlreg_promotions__stages_holding(json_t **out, mlreg_meta_txn *txn, const mlreg_policy *policy,
                                     const char *model, const char *digest);

/** "a, b, c" of the strings of @p list, each with @p prefix, into @p buf. */
void mlreg_promotions__join_names(char *buf, size_t cap, const json_t *list, const char *prefix);

/** The digest hex of release record @p rec into @p hex; MLREG_EIO when corrupt. */
int mlreg_promotions__record_hex(char hex[MLREG_DIGEST_HEXLEN + 1], const json_t *rec);

/* ---- stage pointers and history (stages.c) -------------------------------------- */

/** A walk over the history of one stage. */
typedef struct {
    const char *digest; /* "sha256:..." looked for, or NULL */
    int found;
    int64_t at_ns; /* resolve: last entry with time_ns <= at_ns */
    json_t *last;  /* the last entry seen (or the resolved one) */
} history_walk;

/** Walks the history of @p model / @p stage into @p w (w->last owned by the caller). */
int mlreg_promotions__walk_history(history_walk *w, mlreg_meta_txn *txn, const char *model,
                                   const char *stage);

/** The time (ns) of the last promotion (history action "promote"; rollbacks are not
 *  promotions) of @p model into @p stage into *out, 0 when there was none. */
int mlreg_promotions__last_promotion_ns(int64_t *out, mlreg_meta_txn *txn, const char *model,
                                        const char *stage);

/** Moves @p model / @p stage to release @p cand and appends its history entry,
 *  with the members of @p extra (borrowed, may be NULL: a break-glass move's
 *  "override", "override_reason", "override_approvers") added to it. */
int mlreg_promotions__move_pointer(mlreg_meta_txn *txn, const char *model, const char *stage,
                                   const char *action, const json_t *cand, const json_t *from,
                                   const char *reason, const char *actor, int64_t now,
                                   uint64_t pseq, const json_t *extra);

/** The stage pointer of @p model / @p stage, or *out = NULL when the stage is empty. */
int mlreg_promotions__pointer_get(json_t **out, mlreg_meta_txn *txn, const char *model,
                                  const char *stage);

/** Called with a stage's name and one of its records (both borrowed); 0 goes on. */
typedef int (*mlreg_promotions__stage_cb)(const char *stage, const json_t *rec, void *payload);

/**
 * Calls @p cb for every stage pointer of @p model (@p history 0: each
 * stage's {"version","digest","since_ns",...}) or every stage history entry
 * (@p history 1: {"time_ns","action","version","digest",...}, each stage's
 * entries in the order they were made), stage by stage in name order, for
 * every stage the tables hold, configured now or not. Stops at the first
 * error of @p cb, which it returns.
 */
int mlreg_promotions__stages_foreach(mlreg_meta_txn *txn, const char *model, int history,
                                     mlreg_promotions__stage_cb cb, void *payload);

/** {"<field>": [view(record)...]} of the records under @p prefix (*out owned by the caller). */
int mlreg_promotions__list_prefix(json_t **out, mlreg_meta_txn *txn, mlreg_db db,
                                  const char *prefix, size_t plen, const char *field,
                                  json_t *(*view)(const json_t *));

/** A page of the seq-keyed records under @p prefix from @p since (*out owned by the caller). */
int mlreg_promotions__list_page(json_t **out, mlreg_meta_txn *txn, mlreg_db db, const char *prefix,
                                size_t plen, uint64_t since, size_t limit, const char *field,
                                json_t *(*view)(const json_t *, uint64_t), const char *what);

/**
 * The digest hex of release @p model@@p version, read in a read transaction
 * left open in *txn_out for the caller's listing (which aborts it).
 */
int mlreg_promotions__release_hex_read(char hex[MLREG_DIGEST_HEXLEN + 1], mlreg_meta_txn **txn_out,
                                       mlreg_registry *reg, const char *model, const char *version);

/* ---- images (images.c) ------------------------------------------------------------ */

/** "REPO:TAG[@sha256:...]" of the latest binding of release @p digest, or JSON null (*out owned):
 * of every binding when @p at_ns < 0, else of those recorded at or before @p at_ns (the binding
 * in force then). */
int mlreg_promotions__image_of(json_t **out, mlreg_meta_txn *txn, const char *digest,
                               int64_t at_ns);

/* ---- statements and entries of moves (attestations.c) ---------------------------- */

/* What a promotion or rollback records: its audit entry and, when it moves
 * the pointer, its statement. Everything borrowed. */
typedef struct {
    const char *action; /* MLREG_AUDIT_PROMOTE or MLREG_AUDIT_ROLLBACK */
    const char *result; /* MLREG_AUDIT_OK or MLREG_AUDIT_REFUSED */
    const char *model;
    const json_t *cand; /* the release record moved in (or refused) */
    const char *stage;
    const char *from_stage;  /* promote: the stage it came from, or NULL */
    const json_t *base;      /* the release record it replaces, or NULL */
    const json_t *gates;     /* the gate table, or NULL */
    const json_t *approvers; /* the approvers that counted, or NULL */
    const char *reason;
    const char *request_reason; /* the caller's reason, when a refusal replaces it */
    const char *envelope;       /* "sha256:..." of the statement's envelope, when moved */
    const char *actor;
    int64_t now;
    /* break-glass: moved despite failing rules (override 1), or an override
     * asked for and refused (override_requested 1) */
    int override;
    int override_requested;
    const json_t *override_approvers; /* the approvers of the override, when moved */
    /* refused because rules hold (none failed): no comparable baseline numbers */
    int held;
} promo_event;

/** {"version","digest"} of a release record, or JSON null (new reference). */
json_t *mlreg_promotions__version_digest(const json_t *rec);

/** Records the audit entry of promotion or rollback @p pe; *seq_out (may be NULL) its seq. */
int mlreg_promotions__audit(uint64_t *seq_out, registry_mutation *mut, const promo_event *pe);

/**
 * Records a move inside @p txn: its signed statement (on a replay, the
 * envelope its entry names), the envelope and referrer blobs, the referrer
 * manifest and the attestation record, then its audit entry with that seq.
 */
int mlreg_promotions__record_move(mlreg_registry *reg, registry_mutation *mut, mlreg_meta_txn *txn,
                                  const promo_event *pe);

/* ---- withdrawn releases (withdraw.c) ---------------------------------------------- */

/** Room for mlreg_promotions__withdrawn_note(): names, actor, time and a whole reason. */
#define MLREG_WITHDRAWN_NOTE_MAX (MLREG_REASON_MAX + 1024)

/**
 * "MODEL@VERSION was withdrawn by ACTOR at TIME: REASON" of release record
 * @p rec (which has a "withdrawn" object) into @p buf; the text follows the
 * text rule when the record's strings do, and is never cut inside a
 * character when @p cap is MLREG_WITHDRAWN_NOTE_MAX.
 */
void mlreg_promotions__withdrawn_note(char *buf, size_t cap, const json_t *rec);

/**
 * 0 when release record @p rec is not withdrawn; else MLREG_EDENIED with
 * the message "PREFIX: <the note of mlreg_promotions__withdrawn_note()>".
 */
int mlreg_promotions__refuse_withdrawn(const json_t *rec, const char *prefix);

/**
 * The pusher of release record @p rec ("pushed_by", or the local actor for a
 * release recorded without one): whose approval the `approvals` gate does
 * not count and mlreg_approve() refuses. Borrowed from @p rec.
 */
const char *mlreg_promotions__pusher_of(const json_t *rec);

/**
 * Rolls @p stage of @p model back to its previous release inside the
 * caller's change (@p mut, @p txn), exactly as mlreg_rollback() would,
 * recording the rollback's own entry and statement. *out =
 * {"stage","from_version","to_version","seq"} (owned), seq the rollback's
 * entry. MLREG_EDENIED when the stage cannot roll back (no earlier
 * release, a withdrawn one, or its signatures no longer count), with
 * nothing recorded for the refusal: the caller abandons its change.
 */
int mlreg_promotions__rollback_txn(json_t **out, registry_mutation *mut, mlreg_meta_txn *txn,
                                   mlreg_registry *reg, const mlreg_policy *policy,
                                   const char *model, const char *stage, const char *reason,
                                   const char *actor);

/* ---- replay of approvals and bindings ------------------------------------------- */

/** Replays an approve entry (approvals.c); errors as mlreg_registry__mutate_replay(). */
int mlreg_promotions__replay_approve(mlreg_registry *reg, const json_t *entry, const char *text,
                                     size_t len);

/** Replays an image.bind entry (images.c); errors as mlreg_registry__mutate_replay(). */
int mlreg_promotions__replay_bind(mlreg_registry *reg, const json_t *entry, const char *text,
                                  size_t len);

/**
 * Calls @p cb on every approval record (JSON) of the release whose digest
 * is @p hex for stage @p stage, in approver (byte) order; approvals.c owns
 * the approvals table's layout. Returns as mlreg_meta_iter().
 */
int mlreg_promotions__approvals_foreach(mlreg_meta_txn *txn, const char *hex, const char *stage,
                                        mlreg_meta_iter_cb cb, void *payload);

/**
 * 1 when approval record @p rec is an approval of an override that counts
 * at @p now for a stage that last moved at @p since_ns (0: never): recorded
 * after that move and at most MLREG_OVERRIDE_APPROVAL_TTL_S before @p now
 * (approvals.c). No message set.
 */
int mlreg_promotions__override_live(const json_t *rec, int64_t since_ns, int64_t now);

/** The since_ns of the stage pointer of @p model / @p stage into *out, 0 when empty. */
int mlreg_promotions__stage_since(int64_t *out, mlreg_meta_txn *txn, const char *model,
                                  const char *stage);

#endif
