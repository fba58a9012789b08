/* imagetag.c: the image reference REPO:VERSION-GITSHA7 of a release
 * (imagetag.h).
 *
 * The repository is split like docker's reference parser does: the part
 * before the first '/' is a registry host only when it looks like one (a
 * '.', a ':' or "localhost"); everything after it is an OCI repository path
 * checked by mlreg_name_validate(). Hosts and paths are lowercase only (the
 * registry stores references that way), so "Team/app" is refused rather
 * than silently lowered: a deploy must use the exact name the build pushed.
 */
#include "mlreg/imagetag.h"

#include <stdio.h>
#include <string.h>

#include "mlreg/common.h"
#include "mlreg/registry.h"

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]([a-z0-9-]*[a-z0-9])? over s[0..len): lowercase only, as the
 * registry stores image references (docs/promotions-api.md). */
static int label_valid(const char *s, size_t len)
{
    if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1])) return 0;
    for (size_t i = 1; i + 1 < len; i++)
        if (!is_alnum(s[i]) && s[i] != '-') return 0;
    return 1;
}

/* host[:port] over s[0..len): labels separated by '.', then an optional port. */
static int host_valid(const char *repo, const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    size_t hlen = colon ? (size_t)(colon - s) : len, start = 0;

    for (size_t i = 0; i <= hlen; i++) {
        if (i < hlen && s[i] != '.') continue;
        if (!label_valid(s + start, i - start))
            return mlreg_error_set(MLREG_EINVALID,
                                   "image repository '%s': registry host '%.*s' is not a valid "
                                   "lowercase host name",
                                   repo, (int)hlen, s);
        start = i + 1;
    }
    if (colon) {
        const char *p = colon + 1;
        size_t plen = len - hlen - 1;
        unsigned long port = 0;

        if (plen == 0 || plen > 5)
            return mlreg_error_set(MLREG_EINVALID, "image repository '%s': bad port", repo);
        for (size_t i = 0; i < plen; i++) {
            if (p[i] < '0' || p[i] > '9')
                return mlreg_error_set(MLREG_EINVALID, "image repository '%s': bad port", repo);
            port = port * 10 + (unsigned long)(p[i] - '0');
        }
        if (port == 0 || port > 65535)
            return mlreg_error_set(MLREG_EINVALID, "image repository '%s': port %lu out of range",
                                   repo, port);
    }
    return 0;
}

int mlreg_image_repo_validate(const char *repo)
{
    const char *slash, *path = repo;
    size_t first;
    int error;

    if (!repo || !*repo) return mlreg_error_set(MLREG_EINVALID, "image repository is empty");
    if (strlen(repo) > MLREG_IMAGE_REPO_MAX)
        return mlreg_error_set(MLREG_EINVALID, "image repository is longer than %d bytes",
                               MLREG_IMAGE_REPO_MAX);
    slash = strchr(repo, '/');
    first = slash ? (size_t)(slash - repo) : strlen(repo);
    if (slash && (memchr(repo, '.', first) || memchr(repo, ':', first) ||
                  (first == 9 && !strncmp(repo, "localhost", 9)))) {
        if ((error = host_valid(repo, repo, first)) < 0) return error;
        path = slash + 1;
    } else if (memchr(repo, ':', first)) {
        return mlreg_error_set(MLREG_EINVALID,
                               "image repository '%s': give REPO without a tag (a host:port "
                               "needs a path after it)",
                               repo);
    }
    if (mlreg_name_validate(path) < 0)
        return mlreg_error_set(MLREG_EINVALID,
                               "image repository '%s': '%s' must match the OCI repository name "
                               "grammar (lowercase [a-z0-9], separators . _ __ -, '/' between "
                               "parts)",
                               repo, path);
    return 0;
}

static int hex_lower(const char *s, size_t *len_out)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return 0;
    *len_out = n;
    return 1;
}

int mlreg_image_tag_derive(char *out, size_t outlen, const char *version, const char *git_sha)
{
    size_t n = 0;
    int w;

    if (outlen) out[0] = '\0';
    if (!git_sha || !hex_lower(git_sha, &n) || n < 7 || n > 64)
        return mlreg_error_set(MLREG_EINVALID, "git sha must be 7 to 64 lowercase hex digits");
    if (!version || mlreg_tag_validate(version) < 0)
        return mlreg_error_set(MLREG_EINVALID, "version '%s' is not a valid tag",
                               version ? version : "");
    if (strlen(version) + 8 > MLREG_IMAGE_TAG_MAX)
        return mlreg_error_set(MLREG_EINVALID,
                               "image tag '%s-%.7s' would be %zu characters; the OCI tag grammar "
                               "allows %d",
                               version, git_sha, strlen(version) + 8, MLREG_IMAGE_TAG_MAX);
    w = snprintf(out, outlen, "%s-%.7s", version, git_sha);
    if (w < 0 || (size_t)w >= outlen) {
        if (outlen) out[0] = '\0';
        return mlreg_error_set(MLREG_EINVALID, "image tag buffer too small");
    }
    return 0;
}

int mlreg_image_ref_derive(char *out, size_t outlen, const char *repo, const char *version,
                           const char *git_sha)
{
    char tag[MLREG_IMAGE_TAG_MAX + 1];
    int error, w;

    if (outlen) out[0] = '\0';
    if ((error = mlreg_image_repo_validate(repo)) < 0 ||
        (error = mlreg_image_tag_derive(tag, sizeof(tag), version, git_sha)) < 0)
        return error;
    w = snprintf(out, outlen, "%s:%s", repo, tag);
    if (w < 0 || (size_t)w >= outlen) {
        if (outlen) out[0] = '\0';
        return mlreg_error_set(MLREG_EINVALID, "image reference buffer too small");
    }
    return 0;
}
