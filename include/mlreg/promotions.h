/**
 * @file promotions.h
 * @brief Stages, promotions, rollback, approvals, image bindings and stage
 *        resolution at a point in time, over the registry's LMDB metadata.
 *
 * The wire contract is docs/promotions-api.md. A promotion evaluates the
 * target stage's gates (gates.h), moves the stage pointer, appends to the
 * stage history and records the attempt, all in ONE LMDB write transaction:
 * LMDB has a single writer, so concurrent promotions to one stage serialise
 * and each is evaluated against the baseline its move replaces. Refused
 * attempts (gate failures) are recorded too; nothing else changes.
 *
 * LMDB layout (be64 = 8-byte big-endian sequence number from the counters
 * "promotion_seq", "stage_history_seq" and "image_seq" in `meta`; NUL
 * separates parts):
 *
 *   stages         model \0 stage -> {"version","digest","since","since_ns","by","seq"}
 *   stage_history  model \0 stage \0 be64 -> {"time","time_ns","action":"promote"|"rollback",
 *                    "version","digest","previous_version","previous_digest","actor",
 *                    "reason","promotion_seq"}
 *   promotions     model \0 be64 -> {"seq","time","time_ns","actor","action","version",
 *                    "digest","to","from_version","passed","reason","rules","baseline"}
 *   approvals      digest-hex \0 stage \0 approver -> {"model","version","digest","stage",
 *                    "approver","time","time_ns","comment"}
 *   approvals      digest-hex \0 stage \0 approver \0 "override" -> the same with
 *                    "override":true and "reason": an approval of a break-glass promotion
 *                    (mlreg_approve_override()), which the `approvals` gate never counts;
 *                    the promotions and stage_history records of a move it allowed
 *                    add "override":true, "override_reason", "override_approvers"
 *   images         digest-hex \0 be64 -> {"model","version","image","digest","time",
 *                    "time_ns","actor"}
 *   attestations   digest-hex (64 bytes, no NUL) ‖ be64 audit seq -> {"seq","stage",
 *                    "action":"promote"|"rollback","envelope":"<DSSE envelope text>"}
 *
 * Every change appends its audit entry (audit.h, docs/audit-api.md) in its
 * own transaction: a promotion (passed or refused, never a dry run), a
 * rollback (done or refused), a new approval, a new image binding or a
 * re-bind that makes an earlier binding current again. A
 * promotion that moves a pointer (a passed promote, a rollback) also signs
 * an in-toto statement with the audit log key (a DSSE envelope, dsse.h),
 * stores the envelope as a blob and as an OCI referrer of the release
 * (artifactType MLREG_ARTIFACT_ATTESTATION, one MLREG_MT_DSSE_ENVELOPE
 * layer, annotations MLREG_ANN_AUDIT_SEQ and MLREG_ANN_STAGE) and records it
 * in `attestations`, all in the transaction that moves the pointer; the
 * statement's predicate.audit.seq is the seq of that transaction's entry.
 *
 * Times are taken inside the write transaction, so time order and commit
 * order agree (mlreg_time_now_ns() never repeats) and a resolution at a
 * past time reads the history exactly. All functions are safe to call from
 * several threads at once; every *out is owned by the caller.
 */
#ifndef MLREG_PROMOTIONS_H
#define MLREG_PROMOTIONS_H

#include <jansson.h>
#include <stdint.h>

#include "mlreg/auth.h"
#include "mlreg/digest.h"
#include "mlreg/gates.h"
#include "mlreg/registry.h"

/** artifactType of a promotion attestation referrer (an in-toto statement). */
#define MLREG_ARTIFACT_ATTESTATION "application/vnd.in-toto+json"
/** Media type of the one layer of an attestation referrer: the DSSE envelope. */
#define MLREG_MT_DSSE_ENVELOPE "application/vnd.dsse.envelope.v1+json"
/** Annotation of an attestation referrer: the audit seq (decimal) it belongs to. */
#define MLREG_ANN_AUDIT_SEQ "org.mlreg.audit.seq"
/** Annotation of an attestation referrer: the stage the promotion moved. */
#define MLREG_ANN_STAGE "org.mlreg.stage"
/** in-toto statement type and the predicate type of a promotion statement. */
#define MLREG_INTOTO_STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define MLREG_PROMOTION_PREDICATE   "urn:mlreg:promotion:v1"

/** Longest promotion / rollback reason and approval comment, in bytes. Both
 *  follow text.h's rule (UTF-8 without C0, DEL or C1 controls, so no tab or
 *  newline either): MLREG_EINVALID naming the field otherwise. */
#define MLREG_REASON_MAX 1024
/** Longest image reference "REPO:TAG", in bytes. */
#define MLREG_IMAGE_REF_MAX 512

/** A promotion request. Everything borrowed. */
typedef struct {
    const char *model;
    const char *version;
    const char *stage;  /**< the target stage */
    const char *reason; /**< NULL or at most MLREG_REASON_MAX bytes */
    int dry_run;        /**< evaluate only: nothing moves, nothing is recorded */
    const char *actor;  /**< the authenticated identity */
} mlreg_promote_req;

/** How long an approval of an override counts after it was recorded, in
 *  seconds (it also stops counting once the stage moves). */
#define MLREG_OVERRIDE_APPROVAL_TTL_S 86400

/**
 * Promotes @p req->model@version to @p req->stage under the gates of
 * @p policy. *out receives the promotion body of the contract
 * ({"model","version","digest","to","dry_run","passed","moved","baseline",
 * "rules","promotion"}) on success AND on MLREG_EGATE.
 * @return 0 (every rule passed; moved unless dry run); MLREG_EGATE (a rule
 *         failed: nothing moved, the refusal recorded unless dry run);
 *         MLREG_EINVALID (bad name/version/reason, unknown stage: message
 *         "unknown stage 'x'"); MLREG_ENOTFOUND (no such release);
 *         MLREG_EDENIED (the release already holds that stage);
 *         MLREG_ENOSPACE, MLREG_EIO, MLREG_ENOMEM.
 */
int mlreg_promote(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                  const mlreg_promote_req *req);

/**
 * mlreg_promote() as a break-glass promotion (the caller has checked the
 * role override:<stage>): @p req->reason is required (as a withdrawal's). The
 * gates are evaluated as usual; when every rule passes the promotion is an
 * ordinary one ("override": false, with a "note"). When rules fail it moves
 * anyway ("passed": true, "override": true, "override_reason",
 * "override_approvers") provided that (1) no failing rule is `signed`
 * (signatures are never overridden), (2) the release is not withdrawn and
 * (3) at least one approval of the override (mlreg_approve_override()) for
 * this release and stage counts: by an identity other than @p req->actor
 * and the pusher, recorded after the stage last moved and at most
 * MLREG_OVERRIDE_APPROVAL_TTL_S ago. Otherwise it is a recorded refusal
 * (MLREG_EGATE) whose reason says which of these it lacked. The move, its
 * audit entry (details "override", "override_approvers"), its statement
 * (predicate "override") and its promotions-log and stage-history records
 * carry the flag. A dry run evaluates all of this and records nothing.
 * @return as mlreg_promote().
 */
int mlreg_promote_override(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                           const mlreg_promote_req *req);

/**
 * Rolls @p stage of @p model back to the release that held it before the
 * current one, or to @p to_version (NULL for the previous one), which must
 * have held the stage before. Gates are not re-run, but when the stage's
 * rules include `signed` its count is re-checked against the keyring now.
 * *out = {"model","stage","version","digest","previous_version","promotion"}.
 * @return 0; MLREG_ENOTFOUND (the stage is empty); MLREG_EDENIED (no
 *         earlier holder, or @p to_version is not a release, never held
 *         the stage or holds it now); MLREG_EGATE (signatures no longer count: the refusal is
 *         recorded, nothing moves); MLREG_EINVALID; storage errors.
 */
int mlreg_rollback(json_t **out, mlreg_registry *reg, const mlreg_policy *policy, const char *model,
                   const char *stage, const char *to_version, const char *reason,
                   const char *actor);

/**
 * Records @p actor's approval of release @p model@@p version for @p stage,
 * bound to the release digest. *out = {"model","version","digest","stage",
 * "approver","time"}; *created_out 0 when this approver had approved that
 * digest for that stage already (the earlier record is returned).
 * @return 0, MLREG_EINVALID (unknown stage, bad comment), MLREG_ENOTFOUND.
 */
int mlreg_approve(json_t **out, int *created_out, mlreg_registry *reg, const mlreg_policy *policy,
                  const char *model, const char *version, const char *stage, const char *comment,
                  const char *actor);

/**
 * Records @p actor's approval of an override (a break-glass promotion) of
 * release @p model@@p version into @p stage, with its required @p reason
 * (text of at most MLREG_REASON_MAX bytes). The caller has checked the
 * role override:<stage>. The pusher of the release may not approve its
 * override. An approval that still counts (recorded after the stage last
 * moved, less than MLREG_OVERRIDE_APPROVAL_TTL_S ago) is returned as it is
 * (*created_out 0); a stale one is replaced by a new record. *out as
 * mlreg_approve()'s, with "override": true and "reason".
 * @return 0, MLREG_EINVALID (unknown stage, missing or bad reason),
 *         MLREG_ENOTFOUND, MLREG_EDENIED (the pusher; a withdrawn release).
 */
int mlreg_approve_override(json_t **out, int *created_out, mlreg_registry *reg,
                           const mlreg_policy *policy, const char *model, const char *version,
                           const char *stage, const char *reason, const char *actor);

/**
 * Withdraws (yanks) release @p model@@p version on behalf of @p who (its
 * name is the actor): the release record gains "withdrawn":
 * {"reason","by","time","seq"} (seq: the release.withdraw audit entry).
 * A withdrawn release stays stored and verifiable, but is never promoted
 * (a recorded refusal), approved, or rolled back to; pull refuses it
 * unless asked.
 *
 * What @p who needs is decided in the change's transaction: promote:S for
 * every stage S that holds the release now; for a release no stage holds,
 * promote:S for some stage of the model. admin implies both. A release
 * that stages hold is refused unless @p rollback, in which case each of
 * those stages is first rolled back to its previous release (as
 * mlreg_rollback() does, each with its own rollback entry), all in the one
 * transaction of the withdrawal: a stage that cannot roll back refuses the
 * whole change and nothing moves.
 *
 * @p reason is required: text (text.h) of at most MLREG_REASON_MAX bytes.
 * *out = {"model","version","digest","withdrawn":{...},
 * "rolled_back":[{"stage","from_version","to_version","seq"}]} (owned).
 * @return 0; MLREG_EINVALID (bad name, missing or bad reason);
 *         MLREG_ENOTFOUND; MLREG_EFORBIDDEN (message naming the stages and
 *         roles); MLREG_EDENIED (withdrawn already; held by stages without
 *         @p rollback, naming them; a stage that cannot roll back, naming
 *         it); storage errors.
 */
int mlreg_release_withdraw(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                           const mlreg_identity *who, const char *model, const char *version,
                           const char *reason, int rollback);

/**
 * Purges release @p model@@p version on behalf of @p who (admin), for a
 * takedown or by retention: one release.purge change takes its manifest out
 * of the index (GET of the release or of its manifest then answers
 * MLREG_EGONE naming the entry; the version is never taken again) and marks
 * the record "purged": {"reason","by","time","seq"}; then the files no
 * other manifest references are deleted at once (gc.collect and gc.done
 * changes, as garbage collection makes them, without its grace period).
 * The manifest's own bytes, the eval report, signatures and attestations
 * stay: the audit log's entries are proved and replayed from them.
 *
 * @p reason is required as for mlreg_release_withdraw(). *out = {"model",
 * "version","digest","purged":{...},"seq","unreferenced":[{digest,size,
 * title}],"deleted":[{digest,size}],"deleted_blobs","bytes_reclaimed",
 * "not_deleted":[{digest,error}],"entries":[seqs of gc.collect, gc.done]}
 * and "deferred": true when called inside a garbage collection on this
 * thread, which then collects the files itself (owned).
 * @return 0; MLREG_EINVALID (bad name, missing or bad reason);
 *         MLREG_ENOTFOUND; MLREG_EFORBIDDEN (not admin); MLREG_EDENIED (a
 *         stage holds it, naming the stages); MLREG_EGONE (purged
 *         already); storage errors (after the purge was recorded: the
 *         files are left to the next garbage collection).
 */
int mlreg_release_purge(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                        const mlreg_identity *who, const char *model, const char *version,
                        const char *reason);

/**
 * Takes back the withdrawal of @p model@@p version (admin only; @p reason
 * required as for mlreg_release_withdraw()): "withdrawn" leaves the record,
 * and the release may be promoted again. Stages rolled back by the
 * withdrawal stay where they are. *out as mlreg_release_withdraw()'s, with
 * "withdrawn": null.
 * @return 0; MLREG_EINVALID; MLREG_ENOTFOUND; MLREG_EFORBIDDEN;
 *         MLREG_EDENIED (not withdrawn); storage errors.
 */
int mlreg_release_unwithdraw(json_t **out, mlreg_registry *reg, const mlreg_identity *who,
                             const char *model, const char *version, const char *reason);

/** {"approvals":[...]} of a release, by stage then approver. 0 or MLREG_ENOTFOUND. */
int mlreg_approvals_list(json_t **out, mlreg_registry *reg, const char *model, const char *version);

/**
 * Binds image reference @p image ("REPO:TAG": REPO lowercase
 * [a-z0-9._/:-], TAG in the OCI tag grammar, at most MLREG_IMAGE_REF_MAX
 * bytes) and optionally its digest @p digest ("sha256:...", NULL allowed) to
 * release @p model@@p version on behalf of @p who (borrowed; its name is the
 * actor). The binding becomes the release's current image: the `image` that
 * the stages holding the release answer.
 *
 * Because of that, what @p who needs depends on the release, and is decided
 * in the write transaction that binds: a release that a stage holds now or
 * has held (stage pointers and stage history) needs promote:S for every such
 * stage S (admin implies them); any other release needs push. Binding a
 * reference that was bound before but is no longer the current one is a
 * re-bind: it is recorded again and made current, with its own audit entry
 * (details {"rebind":true}). Binding the reference that is current already
 * changes nothing.
 *
 * *out = {"image","digest","time","actor"} (owned by the caller);
 * *created_out 0 when the binding was current already (returned as it was).
 * @return 0; MLREG_EFORBIDDEN (message naming the stages and the roles
 *         needed: "token 'ci' may not bind an image to m@1.0: the release
 *         holds or has held stage production, so binding needs role
 *         promote:production (or admin)"; also for a release that does not
 *         exist when @p who lacks push); MLREG_EINVALID; MLREG_ENOTFOUND;
 *         storage errors.
 */
int mlreg_image_bind(json_t **out, int *created_out, mlreg_registry *reg, const mlreg_identity *who,
                     const char *model, const char *version, const char *image, const char *digest);

/** {"images":[...]} of a release, oldest first. 0 or MLREG_ENOTFOUND. */
int mlreg_images_list(json_t **out, mlreg_registry *reg, const char *model, const char *version);

/**
 * {"model","stages":[{"stage","version","digest","since","by","image","withdrawn"}]}
 * in config order, nulls for an empty stage ("withdrawn" is the release
 * record's, see mlreg_release_withdraw(), or null). 0 or MLREG_EINVALID.
 */
int mlreg_stages_list(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                      const char *model);

/**
 * What @p stage of @p model holds now (@p at_ns < 0) or held at @p at_ns
 * (nanoseconds since the epoch, from the stage history):
 * {"model","stage","version","digest","since","by","image","withdrawn"}.
 * @return 0; MLREG_ENOTFOUND (the stage held nothing then: "stage ... is
 *         empty"); MLREG_EINVALID (unknown stage).
 */
int mlreg_stage_get(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                    const char *model, const char *stage, int64_t at_ns);

/**
 * What @p stage of @p model holds now, the answer of mlreg_stage_get() as
 * compact JSON text (*text_out malloc'd, *len_out its length): the body of
 * GET .../stages/<stage>, which every resolve and every `pull M:STAGE`
 * asks for. The rendered answer is kept while the metadata stays at the
 * generation it was read at (mlreg_meta_generation(): any commit, by any
 * process, moves it on), so a repeated resolve costs a lookup and a copy.
 * Errors as mlreg_stage_get()'s.
 */
int mlreg_stage_get_text(char **text_out, size_t *len_out, mlreg_registry *reg,
                         const mlreg_policy *policy, const char *model, const char *stage);

/**
 * The OCI tag listing of @p model as GET /v2/<name>/tags/list answers it:
 * its tags and the stages of @p policy that hold a release now (stage names
 * answer as tags on /v2/), merged in lexical order, each name once, read in
 * one transaction and paged over the merged list as
 * mlreg_registry_tags_list() pages tags (@p n < 0: all; names strictly after
 * @p last; *more_out = 1 when names remain). Stage pointers of stages the
 * policy no longer has are not listed. *out owned by the caller.
 * @return 0; MLREG_EINVALID (bad name or @p last); MLREG_ENOTFOUND (no such
 *         repository); MLREG_EIO (a corrupt stage record); MLREG_ENOMEM.
 */
int mlreg_stage_tags_list(json_t **out, int *more_out, mlreg_registry *reg,
                          const mlreg_policy *policy, const char *model, int n, const char *last);

/** The digest @p stage of @p model holds now: 0, MLREG_ENOTFOUND (empty), MLREG_EINVALID. */
int mlreg_stage_digest(mlreg_digest *out, mlreg_registry *reg, const mlreg_policy *policy,
                       const char *model, const char *stage);

/**
 * A page of the history of @p stage of @p model, oldest first:
 * {"history":[{"seq","time","action","version","digest","previous_version","actor","reason"}],
 *  "next":N|null}. It holds the entries whose "seq" is at least @p since,
 * at most @p limit of them (0: MLREG_PAGE_LIMIT_DEFAULT; more than
 * MLREG_PAGE_LIMIT_MAX is clamped), and ends early once the stored entries
 * reach MLREG_PAGE_BYTES (it always holds one). "next" is the @p since of
 * the next page, null after the last entry. Seqs only grow, so a walk that
 * follows "next" sees every entry exactly once even while promotions go on.
 * @return 0; MLREG_EINVALID (bad name, unknown stage, @p since above
 *         INT64_MAX); MLREG_EIO (a corrupt entry); MLREG_ENOMEM.
 */
int mlreg_stage_history(json_t **out, mlreg_registry *reg, const mlreg_policy *policy,
                        const char *model, const char *stage, uint64_t since, size_t limit);

/**
 * A page of the promotions log of @p model, oldest first:
 * {"promotions":[{seq,time,actor,action,version,digest,to,from_version,passed,reason,rules}],
 *  "next":N|null}, paged by "seq" exactly as mlreg_stage_history() pages
 * (the seqs of one model are increasing, not consecutive: the counter is
 * shared by all models). Errors as mlreg_stage_history().
 */
int mlreg_promotions_list(json_t **out, mlreg_registry *reg, const char *model, uint64_t since,
                          size_t limit);

/**
 * The promotion attestations of release @p model@@p version, oldest first:
 * {"attestations":[{"seq","stage","action","envelope":{...DSSE...}}]}, where
 * "seq" is the audit entry the statement names. *out is owned by the caller.
 * @return 0; MLREG_EINVALID (bad name or version); MLREG_ENOTFOUND (no such
 *         release: "release m@v not found"); MLREG_EIO (corrupt record);
 *         MLREG_ENOMEM.
 */
int mlreg_attestations_list(json_t **out, mlreg_registry *reg, const char *model,
                            const char *version);

#endif
