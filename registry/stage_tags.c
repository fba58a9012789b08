/* stage_tags.c: stage names as OCI tags in the tag listing
 * (include/mlreg/promotions.h, mlreg_stage_tags_list()). A stage that holds a
 * release answers GET /v2/<name>/manifests/<stage>, so tags/list names it
 * too: the stage pointers of the model (stages.c's table) and its tags
 * (registry.c's) are read in one read transaction and merged by
 * manifests_list.c, which pages the merged list.
 */
#include "mlreg/promotions.h"

#include <stdlib.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/oci.h"
#include "promotions_internal.h"
#include "registry_internal.h"

/* The names of the stages that hold a release now and that the policy in
 * force has; the walk gives them in key order, which is name order. */
typedef struct {
    const mlreg_policy *policy;
    char **names;
    size_t count, cap;
} held_stages;

static int held_cb(const char *stage, const json_t *rec, void *payload)
{
    held_stages *h = payload;
    char **grown, *copy;

    (void)rec;
    if (mlreg_policy_stage_index(h->policy, stage) < 0) return 0;
    if (h->count == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 8;
        if ((grown = realloc(h->names, cap * sizeof(*grown))) == NULL)
            return mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");
        h->names = grown;
        h->cap = cap;
    }
    if ((copy = strdup(stage)) == NULL)
        return mlreg_error_set(MLREG_ENOMEM, "out of memory listing stages");
    h->names[h->count++] = copy;
    return 0;
}

static int name_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int mlreg_stage_tags_list(json_t **out, int *more_out, mlreg_registry *reg,
                          const mlreg_policy *policy, const char *model, int n, const char *last)
{
    int error = 0;
    mlreg_meta_txn *txn = NULL;
    held_stages h;

    memset(&h, 0, sizeof(h));
    h.policy = policy;
    if ((error = mlreg_name_validate(model)) < 0) goto done;
    if (last != NULL && (error = mlreg_tag_validate(last)) < 0) goto done;
    if ((error = mlreg_meta_txn_begin(&txn, mlreg_registry_meta(reg), 0)) < 0) goto done;
    if ((error = mlreg_registry__repo_require(txn, model)) < 0) goto done;
    if ((error = mlreg_promotions__stages_foreach(txn, model, 0, held_cb, &h)) < 0) goto done;
    /* key order is byte order of "stage\0...", the same as strcmp's; sorting
     * again costs nothing and does not depend on the key layout */
    if (h.count > 1) qsort(h.names, h.count, sizeof(*h.names), name_order);
    error = mlreg_registry__tags_page(out, more_out, txn, model, n, last,
                                      (const char *const *)h.names, h.count);

done:
    mlreg_meta_txn_abort(txn);
    for (size_t i = 0; i < h.count; i++)
        free(h.names[i]);
    free(h.names);
    return error;
}
